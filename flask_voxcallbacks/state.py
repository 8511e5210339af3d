"""Per-application state, kept in ``app.extensions["voxcallbacks"]``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from flask import Flask

from .config import Settings
from .store import Store

if TYPE_CHECKING:
    from .queue import Queue

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


def use_memory_store(app: Flask) -> None:
    """Give ``app`` a fresh memory store in place of the one it was configured with, and handle
    callbacks inline even when it sets a queue: its workers could not see this store (tests)."""
    from .store.memory import MemoryStore

    state = get_state(app)
    state.store.close()
    settings = replace(state.settings, store_url="memory://")
    app.extensions[EXTENSION_NAME] = VoxState(settings, MemoryStore())
