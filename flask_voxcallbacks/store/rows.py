"""The rows of the SQL stores (SQLite, PostgreSQL, the database of Flask-SQLAlchemy), which share
one table layout (see store/sqlite.py), read back into the store's types."""

from __future__ import annotations

import json
from typing import Any

from .base import KeptCallback, KeptState


def kept_from_row(row: tuple[Any, ...]) -> KeptCallback:
    """A kept callback from its row: account_id, callback_id, type, error, failed_at,
    attempts, item, queued, receivers, trace."""
    a, c, t, e, f, n, i, q, r, trace = row
    state = KeptState.QUEUED if q else KeptState.FAILED
    return KeptCallback(
        a, c, t or "", e, f, n, json.loads(i), state, receiver_names(r), trace or ""
    )


def receiver_names(receivers: str | None) -> tuple[str, ...]:
    """The receivers that succeeded, from their column (a JSON list, or NULL)."""
    return tuple(json.loads(receivers)) if receivers else ()
