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


def signals_of(callback: Callback[Payload]) -> list[NamedSignal]:
    """The signals a callback is sent on: its type's signal (if known), then callback_received."""
    own = _TYPE_SIGNALS.get(callback.type)
    return [own, callback_received] if own is not None else [callback_received]


def dispatch(app: Flask, callback: Callback[Payload]) -> list[str]:
    """Call every receiver of the callback's signals; return one line per receiver that raised.

    Unlike ``Signal.send``, one receiver raising does not stop the others. Failures are logged
    with their traceback. A callback that no receiver takes is logged as a warning: it is still
    marked handled, so a receiver that was never connected must not go unnoticed.
    """
    signals = signals_of(callback)
    if not any(signal.has_receivers_for(app) for signal in signals):
        logger.warning(
            "callback %s type=%s has no receiver: connect one to its signal or to"
            " callback_received; it is marked handled",
            callback.callback_id,
            printable(callback.type),
        )
    return [error for signal in signals for error in send(signal, app, callback=callback)]


def send(signal: NamedSignal, app: Flask, **kwargs: Any) -> list[str]:
    """Call each receiver of ``signal`` for ``app``; log and return one line per receiver that
    raised."""
    errors: list[str] = []
    for receiver in signal.receivers_for(app):
        try:
            app.ensure_sync(receiver)(app, **kwargs)
        except Exception as error:
            name = _name(receiver)
            logger.exception("receiver %s of %s failed", name, signal.name)
            errors.append(f"{name}: {type(error).__name__}: {error}")
    return errors


def _name(receiver: Any) -> str:
    module = getattr(receiver, "__module__", None) or "?"
    return f"{module}.{getattr(receiver, '__qualname__', repr(receiver))}"
