"""Per-application state, kept in ``app.extensions["voxcallbacks"]``."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from .config import Settings
from .queue.base import Queue
from .store.base import Store

EXTENSION_NAME = "voxcallbacks"


@dataclass(frozen=True)
class VoxState:
    """What ``init_app`` built for one application."""

    settings: Settings
    store: Store
    #: Where jobs go in queue mode; None when the handlers run in the request.
    queue: Queue | None = None


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
