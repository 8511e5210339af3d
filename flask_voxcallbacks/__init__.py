"""Receive Voximplant HTTP callbacks in Flask: authenticated, typed, dispatched as signals."""

from __future__ import annotations

from . import signals
from .auth import sign
from .callbacks import Callback, RejectedCallback
from .config import ConfigurationError
from .extension import VoxCallbacks
from .payloads import CALLBACK_TYPES, Payload, UnknownPayload
from .signals import *  # noqa: F403 - every signal is part of the public surface

__version__ = "0.1.0"

__all__ = [
    "CALLBACK_TYPES",
    "Callback",
    "ConfigurationError",
    "Payload",
    "RejectedCallback",
    "UnknownPayload",
    "VoxCallbacks",
    "sign",
]
__all__ += signals.__all__
