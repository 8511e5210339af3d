"""Sending a callback to its receivers, each isolated from the others' failures."""

from __future__ import annotations

import logging
from typing import Any

from blinker import NamedSignal
from flask import Flask

from .callbacks import Callback
from .payloads import Payload
from .safe_text import printable
from .signals import callback_received, type_signals

logger = logging.getLogger("flask_voxcallbacks")
_TYPE_SIGNALS = type_signals()


def dispatch(app: Flask, callback: Callback[Payload]) -> list[str]:
    """Call every receiver of the callback's signals (its type's signal, if the type is known,
    then ``callback_received``); return one line per receiver that raised.

    Unlike ``Signal.send``, one receiver raising does not stop the others. Failures are logged
    with their traceback. A callback that no receiver takes is logged as a warning: it is still
    marked handled, so a receiver that was never connected must not go unnoticed.
    """
    errors: list[str] = []
    called = 0
    own = _TYPE_SIGNALS.get(callback.type)
    if own is not None and own.receivers:
        called += _call(own, list(own.receivers_for(app)), app, errors, callback=callback)
    if callback_received.receivers:
        receivers = list(callback_received.receivers_for(app))
        called += _call(callback_received, receivers, app, errors, callback=callback)
    if not called:
        logger.warning(
            "callback %s type=%s has no receiver: connect one to its signal or to"
            " callback_received; it is marked handled",
            callback.callback_id,
            printable(callback.type),
        )
    return errors


def send(signal: NamedSignal, app: Flask, **kwargs: Any) -> list[str]:
    """Call each receiver of ``signal`` for ``app``; log and return one line per receiver that
    raised."""
    errors: list[str] = []
    if signal.receivers:
        _call(signal, list(signal.receivers_for(app)), app, errors, **kwargs)
    return errors


def _call(
    signal: NamedSignal, receivers: list[Any], app: Flask, errors: list[str], **kwargs: Any
) -> int:
    """Call ``receivers`` one by one, adding a line to ``errors`` for each that raised; return
    how many were called."""
    for receiver in receivers:
        try:
            app.ensure_sync(receiver)(app, **kwargs)
        except Exception as error:
            name = _name(receiver)
            logger.exception("receiver %s of %s failed", name, signal.name)
            errors.append(f"{name}: {type(error).__name__}: {error}")
    return len(receivers)


def _name(receiver: Any) -> str:
    module = getattr(receiver, "__module__", None) or "?"
    return f"{module}.{getattr(receiver, '__qualname__', repr(receiver))}"
