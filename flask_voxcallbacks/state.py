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


def get_state(app: Flask) -> VoxState:
    """The state of ``app``; raise a clear error when ``init_app`` was never called on it."""
    state = app.extensions.get(EXTENSION_NAME)
    if not isinstance(state, VoxState):
        raise RuntimeError(
            "flask_voxcallbacks is not set up on this application; "
            "call VoxCallbacks(app) or vox.init_app(app) first."
        )
    return state
