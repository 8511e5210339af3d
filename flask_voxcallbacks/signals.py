"""Blinker signals sent for received callbacks.

Every signal is sent with the Flask application as the sender. Per-type signals and
``callback_received`` carry ``callback=`` (a :class:`~flask_voxcallbacks.callbacks.Callback`).
Each per-type signal is named after its wire ``type``:
``min_balance_reached.name == "min_balance"``.

Unlike blinker's default, these signals hold their receivers strongly: a function connected
inside an application factory keeps receiving after the factory returns and the garbage
collector runs. Pass ``weak=True`` to ``connect`` for the weak reference blinker uses elsewhere.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Generic, Mapping, Protocol, TypeVar

from blinker import ANY, NamedSignal
from flask import Flask

from .callbacks import Callback
from .registry import Payload

__all__ = [
    "CallbackSignal",
    "Receiver",
    "VoxSignal",
    "callback_completed",
    "callback_duplicate",
    "callback_failed",
    "callback_in_progress",
    "callback_queued",
    "callback_received",
    "callback_rejected",
    "job_started",
    "signal_for",
    "type_signal",
    "type_signals",
]

F = TypeVar("F", bound=Callable[..., Any])
P = TypeVar("P", bound=Payload)
P_contra = TypeVar("P_contra", bound=Payload, contravariant=True)


class VoxSignal(NamedSignal):
    """A named blinker signal whose ``connect`` holds the receiver strongly by default.

    A weakly held receiver vanishes once nothing else refers to it, and the callbacks meant for it
    would then be answered 200 and marked handled without any handler having run.
    """

    def connect(self, receiver: F, sender: Any = ANY, weak: bool = False) -> F:
        return super().connect(receiver, sender, weak)


class Receiver(Protocol[P_contra]):
    """What a receiver of a callback signal is: ``(sender, *, callback, **extra)``.

    ``def on_low_balance(sender: Flask, callback: Callback[MinBalance], **extra: Any) -> None``
    is a ``Receiver[MinBalance]``. It may be a coroutine function.
    """

    def __call__(self, sender: Flask, /, *, callback: Callback[P_contra]) -> Any: ...


class CallbackSignal(VoxSignal, Generic[P]):
    """A signal that sends ``callback=`` a ``Callback[P]``; its ``connect`` and ``connect_via``
    accept only receivers of that payload class (or of a base class, such as ``Payload``)."""

    def connect(  # type: ignore[override]
        self, receiver: Receiver[P], sender: Any = ANY, weak: bool = False
    ) -> Receiver[P]:
        return super().connect(receiver, sender, weak)

    def connect_via(  # type: ignore[override]
        self, sender: Any, weak: bool = False
    ) -> Callable[[Receiver[P]], Receiver[P]]:
        return super().connect_via(sender, weak)


_by_type: dict[str, CallbackSignal[Payload]] = {}


def _signal(name: str) -> VoxSignal:
    return VoxSignal(name)


def type_signal(payload: type[P]) -> CallbackSignal[P]:
    """The signal of a registered payload class, named after its wire type; declared in
    ``payloads.py`` right after the class (``min_balance_reached = type_signal(MinBalance)``)."""
    signal: CallbackSignal[P] = CallbackSignal(payload.wire_type)
    _by_type[payload.wire_type] = signal  # type: ignore[assignment]
    return signal


#: Every authentic callback, known type or not. Keywords: ``callback``.
callback_received: CallbackSignal[Payload] = CallbackSignal("callback_received")
#: Every inauthentic item. Keywords: ``callback`` (a ``RejectedCallback``), ``reason``.
callback_rejected = _signal("callback_rejected")
#: An authentic callback already handled before; not dispatched again. Keywords: ``callback``,
#: as received this time: the hash does not cover the body, so do not trust its payload.
callback_duplicate: CallbackSignal[Payload] = CallbackSignal("callback_duplicate")


# Lifecycle signals: what became of a callback after its receivers, for metrics, traces and host
# code. A receiver of these that raises is logged and changes no outcome.

#: A callback whose receivers all succeeded (inline, in a job or in a replay). Keywords:
#: ``callback``, ``duration`` (seconds its building and receivers took).
callback_completed: CallbackSignal[Payload] = CallbackSignal("callback_completed")
#: A callback that failed and is kept for redelivery or replay. Keywords: ``account_id``,
#: ``callback_id``, ``type`` (as sent, ``""`` when absent), ``errors`` (one line per receiver that
#: raised, or why the callback could not be built; secrets redacted), ``duration`` (seconds).
callback_failed = _signal("callback_failed")
#: Queue mode: a callback kept as queued and its job sent. Keywords: ``account_id``,
#: ``callback_id``, ``type``.
callback_queued = _signal("callback_queued")
#: A callback another worker is running now (answered 503 so that the sender retries). Keywords:
#: ``account_id``, ``callback_id``, ``type``.
callback_in_progress = _signal("callback_in_progress")
#: A job or a replay starts running a kept callback. Keywords: ``account_id``, ``callback_id``,
#: ``type``, ``replay`` (True for ``flask voxcallbacks replay``), ``kept_at`` (when it was queued
#: or failed, in seconds since the epoch).
job_started = _signal("job_started")


def signal_for(type_name: str) -> CallbackSignal[Payload]:
    """The signal of a wire type, e.g. ``signal_for("sms_inbound") is sms_received``.

    Raises ``KeyError`` naming the type when it is not one of the known types; unknown types are
    delivered through ``callback_received`` only.
    """
    try:
        return _by_type[type_name]
    except KeyError:
        raise KeyError(f"no signal for unknown callback type {type_name!r}") from None


def type_signals() -> Mapping[str, CallbackSignal[Payload]]:
    """Every per-type signal by wire type (a read-only view, complete once ``payloads`` is
    imported, as it is with the package)."""
    return MappingProxyType(_by_type)
