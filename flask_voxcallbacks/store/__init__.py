"""Stores for claims and failed callbacks, chosen by ``VOXCALLBACKS_STORE``."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import ConfigurationError, redact_url
from .base import (
    BUSY,
    CLAIMED,
    DONE,
    MISMATCH,
    QUEUED,
    Claim,
    ClaimStatus,
    KeptCallback,
    KeptState,
    Key,
    Store,
    deprecated_name,
)

__all__ = [
    "BUSY",
    "CLAIMED",
    "DONE",
    "MISMATCH",
    "QUEUED",
    "Claim",
    "ClaimStatus",
    "KeptCallback",
    "KeptState",
    "Key",
    "Store",
    "StoreURLError",
    "open_store",
]

KEY = "VOXCALLBACKS_STORE"


def __getattr__(name: str) -> Any:
    return deprecated_name(__name__, name)


class StoreURLError(ConfigurationError):
    """``VOXCALLBACKS_STORE`` names an unknown scheme or a store that cannot be opened."""


def open_store(url: str, base_dir: str | None = None, namespace: str = "") -> Store:
    """Open the store a ``VOXCALLBACKS_STORE`` URL names, keeping the callbacks of
    ``namespace`` apart (VOXCALLBACKS_NAMESPACE); a relative SQLite path is taken relative to
    ``base_dir`` (the application's instance folder) when one is given."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        return _open_sqlite(url, base_dir, namespace)
    if scheme in ("redis", "rediss", "unix"):
        return _open_redis(url, namespace)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return _open_postgres(url, namespace)
    raise StoreURLError(
        f"{KEY} has an unknown scheme {scheme!r}; use memory://, sqlite:///path/to/file.db,"
        " redis://host:port/db or postgresql://user@host:port/dbname."
    )


def _open_sqlite(url: str, base_dir: str | None, namespace: str) -> Store:
    from .sqlite import SQLiteStore, create_private

    prefix = "sqlite:///"
    path = url[len(prefix) :] if url.startswith(prefix) else ""
    if not path:
        raise StoreURLError(
            f"{KEY} needs a file: sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    if base_dir is not None and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    try:
        create_private(Path(path))
        return SQLiteStore(path, namespace)
    except (OSError, sqlite3.OperationalError) as error:
        raise StoreURLError(
            f"{KEY}: cannot open the SQLite file {path} ({error}); make sure its directory can be"
            " created and written by this process"
        ) from None
    except sqlite3.Error as error:
        # The file opened: it is not a SQLite database, or its table is of another layout.
        raise StoreURLError(f"{KEY}: cannot use the SQLite file {path} ({error})") from None


def _open_redis(url: str, namespace: str) -> Store:
    try:
        from .redis import RedisStore
    except ImportError:
        raise StoreURLError(
            f"{KEY}={redact_url(url)} needs the redis package:"
            " pip install 'flask-voxcallbacks[redis]'"
        ) from None
    try:
        return RedisStore.from_url(url, namespace)
    except ValueError as error:
        raise StoreURLError(f"{KEY}={redact_url(url)} is not a valid Redis URL: {error}") from None


def _open_postgres(url: str, namespace: str) -> Store:
    try:
        from .postgres import PostgresStore
    except ImportError:
        raise StoreURLError(
            f"{KEY}={redact_url(url)} needs psycopg 3: pip install 'flask-voxcallbacks[postgres]'"
        ) from None
    import psycopg

    try:
        return PostgresStore.from_url(url, namespace)
    except psycopg.ProgrammingError as error:
        raise StoreURLError(
            f"{KEY}={redact_url(url)} is not a valid PostgreSQL URL: {error}"
        ) from None
