"""Stores for claims and failed callbacks, chosen by ``VOXCALLBACKS_STORE``."""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import BUSY, CLAIMED, DONE, MISMATCH, Claim, FailedCallback, Store

__all__ = ["BUSY", "CLAIMED", "DONE", "MISMATCH", "Claim", "FailedCallback", "Store", "open_store"]


class StoreURLError(ValueError):
    """``VOXCALLBACKS_STORE`` names an unknown scheme or cannot be opened."""


def open_store(url: str) -> Store:
    """Open the store a ``VOXCALLBACKS_STORE`` URL names."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisStore

        return RedisStore.from_url(url)
    raise StoreURLError(
        f"VOXCALLBACKS_STORE has an unknown scheme {scheme!r}; "
        "use memory://, sqlite:///path/to/file.db or redis://host:port/db."
    )
