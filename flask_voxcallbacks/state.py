"""Per-application state, kept in ``app.extensions["voxcallbacks"]``."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from flask import Flask

from .config import Settings
from .queue.base import Queue
from .store.base import Store

EXTENSION_NAME = "voxcallbacks"


class CallbackSpan(Protocol):
    """The span of one callback while its receivers run."""

    def failed(self, reason: str) -> None:
        """Mark the span as failed, with the first error (secrets redacted)."""


class Tracing(Protocol):
    """Tracing of callbacks (``VOXCALLBACKS_TRACING``): a span around each callback's receivers,
    and the trace context a queued callback's job links its span to."""

    def span(
        self, account_id: int, callback_id: int, type_name: str, link: str
    ) -> AbstractContextManager[CallbackSpan]:
        """The span of a callback, linked to the trace context ``link`` when it is not empty."""

    def context(self) -> str:
        """The current trace context (a W3C ``traceparent``), or ``""``."""


@dataclass(frozen=True)
class VoxState:
    """What ``init_app`` built for one application."""

    settings: Settings
    store: Store
    #: Where jobs go in queue mode; None when the handlers run in the request.
    queue: Queue | None = None
    #: Spans around the callbacks; None without ``VOXCALLBACKS_TRACING``.
    tracing: Tracing | None = None


class _PrivateStores:
    """Whether ``init_app`` gives each application a private memory store and inline handling in
    place of the store and queue it is configured with. The pytest plugin switches it on while
    the tests of a project run, so that they never reach its real store or queue."""

    on = False


def use_private_stores(on: bool) -> bool:
    """Switch private stores on or off for the applications set up from now on; return the
    previous setting."""
    previous, _PrivateStores.on = _PrivateStores.on, on
    return previous


def private_stores() -> bool:
    """Whether applications set up now get a private memory store (see ``use_private_stores``)."""
    return _PrivateStores.on


def get_state(app: Flask) -> VoxState:
    """The state of ``app``; raise a clear error when ``init_app`` was never called on it."""
    state = app.extensions.get(EXTENSION_NAME)
    if not isinstance(state, VoxState):
        raise RuntimeError(
            "flask_voxcallbacks is not set up on this application; "
            "call VoxCallbacks(app) or vox.init_app(app) first."
        )
    return state
