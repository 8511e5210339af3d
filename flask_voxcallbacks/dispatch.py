"""Sending a callback to its receivers, each isolated from the others' failures, and each run
once: a receiver that succeeded for a callback is skipped when the callback runs again."""

from __future__ import annotations

import logging
from typing import Any, Collection, NamedTuple

from blinker import NamedSignal
from flask import Flask

from .callbacks import Callback
from .registry import Payload
from .safe_text import printable, redact
from .signals import callback_received, type_signals

logger = logging.getLogger("flask_voxcallbacks")
_TYPE_SIGNALS = type_signals()


class Dispatched(NamedTuple):
    """What the receivers of one callback did."""

    #: One line per receiver that raised: ``identity: ExceptionType: message``.
    errors: list[str]
    #: The identities of the receivers that have succeeded for this callback: those that returned
    #: now and those skipped because an earlier attempt recorded them. Filled only when a
    #: receiver raised (it is what a failure record keeps).
    succeeded: tuple[str, ...]


def dispatch(app: Flask, callback: Callback[Payload], skip: Collection[str] = ()) -> Dispatched:
    """Call every receiver of the callback's signals (its type's signal, if the type is known,
    then ``callback_received``) except those whose identity is in ``skip``; report which raised
    and which have succeeded.

    Unlike ``Signal.send``, one receiver raising does not stop the others. Failures are logged
    with their traceback. A callback that no receiver takes is logged as a warning: it is still
    marked handled, so a receiver that was never connected must not go unnoticed.
    """
    errors: list[str] = []
    ran: list[tuple[NamedSignal, list[Any], int]] = []
    called = 0
    signals: tuple[NamedSignal | None, ...] = (_TYPE_SIGNALS.get(callback.type), callback_received)
    for signal in signals:
        if signal is None or not signal.receivers:
            continue
        receivers = list(signal.receivers_for(app))
        called += len(receivers)
        # Identities are worked out only when an earlier attempt left some to skip.
        names = receiver_ids(signal, receivers) if skip else None
        for index, receiver in enumerate(receivers):
            if names is not None and names[index] in skip:
                continue
            if _call_one(signal, receiver, app, errors, callback=callback):
                ran.append((signal, receivers, index))
    if not called:
        logger.warning(
            "callback %s type=%s has no receiver: connect one to its signal or to"
            " callback_received; it is marked handled",
            callback.callback_id,
            printable(callback.type),
        )
    if not errors:
        return Dispatched(errors, ())
    succeeded = set(skip)
    for signal, receivers, index in ran:
        succeeded.add(receiver_ids(signal, receivers)[index])
    return Dispatched(errors, tuple(sorted(succeeded)))


def send(signal: NamedSignal, app: Flask, /, **kwargs: Any) -> list[str]:
    """Call each receiver of ``signal`` for ``app``; log and return one line per receiver that
    raised."""
    errors: list[str] = []
    if signal.receivers:
        for receiver in list(signal.receivers_for(app)):
            _call_one(signal, receiver, app, errors, **kwargs)
    return errors


def _call_one(
    signal: NamedSignal, receiver: Any, app: Flask, errors: list[str], /, **kwargs: Any
) -> bool:
    """Call one receiver; on an exception log it, add a line to ``errors`` and return False."""
    try:
        app.ensure_sync(receiver)(app, **kwargs)
    except Exception as error:
        name = receiver_name(receiver)
        logger.exception("receiver %s of %s failed", name, signal.name)
        errors.append(redact(f"{signal.name}:{name}: {type(error).__name__}: {error}"))
        return False
    return True


def receiver_name(receiver: Any) -> str:
    """``module.qualified_name`` of a receiver (a function, a method or a callable object; a
    bound method gives its function's)."""
    module = getattr(receiver, "__module__", None) or "?"
    qualname = getattr(receiver, "__qualname__", None) or type(receiver).__qualname__
    return f"{module}.{qualname}"


def receiver_ids(signal: NamedSignal, receivers: list[Any]) -> list[str]:
    """The identity of each receiver of ``signal``, in the order given (connection order):
    ``signal:module.qualified_name``, followed by ``#2``, ``#3``, ... for the second and later
    receivers of the signal that share that name (lambdas, closures made in a loop)."""
    seen: dict[str, int] = {}
    ids = []
    for receiver in receivers:
        base = f"{signal.name}:{receiver_name(receiver)}"
        count = seen[base] = seen.get(base, 0) + 1
        ids.append(base if count == 1 else f"{base}#{count}")
    return ids
