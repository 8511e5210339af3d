"""Receive Voximplant HTTP callbacks in Flask: authenticated, typed, dispatched as signals."""

from __future__ import annotations

from . import payloads, signals
from .auth import sign
from .callbacks import Callback, RejectedCallback
from .config import ConfigurationError
from .extension import VoxCallbacks
from .payloads import *  # noqa: F403 - the payload classes are part of the public surface
from .signals import *  # noqa: F403 - every signal is part of the public surface
from .signals import Receiver

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "ConfigurationError",
    "Receiver",
    "RejectedCallback",
    "VoxCallbacks",
    "sign",
]
__all__ += payloads.__all__
__all__ += signals.__all__
