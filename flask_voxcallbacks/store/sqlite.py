"""``sqlite:///path/to/file.db``: a file shared by the worker processes of one host (WAL mode)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from .base import BUSY, CLAIMED, DONE, Claim, FailedCallback, Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS voxcallbacks (
    account_id INTEGER NOT NULL,
    callback_id INTEGER NOT NULL,
    token TEXT NOT NULL DEFAULT '',
    lease_until REAL NOT NULL DEFAULT 0,
    done_until REAL NOT NULL DEFAULT 0,
    type TEXT,
    error TEXT,
    item TEXT,
    failed_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, callback_id)
);
CREATE INDEX IF NOT EXISTS voxcallbacks_failed_at ON voxcallbacks (failed_at);
CREATE INDEX IF NOT EXISTS voxcallbacks_done_until ON voxcallbacks (done_until);
"""

# One statement, so the claim is atomic: it inserts a new key or takes over a key that is
# neither done (within its TTL) nor leased; any other existing row is left alone.
_CLAIM = """
INSERT INTO voxcallbacks (account_id, callback_id, token, lease_until) VALUES (?, ?, ?, ?)
ON CONFLICT (account_id, callback_id) DO UPDATE
SET token = excluded.token, lease_until = excluded.lease_until
WHERE done_until <= ? AND lease_until <= ?
"""

_SWEEP_EVERY = 1000


class SQLiteStore(Store):
    """Claims and failures in one SQLite table; one connection per thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._claims = 0
        connection = self._connection()
        connection.executescript(_SCHEMA)

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        path = urlsplit(url).path
        if url.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
        elif url.startswith("sqlite:///"):
            path = path[1:]
        if not path:
            raise ValueError(
                "VOXCALLBACKS_STORE sqlite URL needs a file: sqlite:///path/to/file.db"
            )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            # A connection must not cross a fork (gunicorn --preload): each process opens its own.
            self._local.pid = os.getpid()
        return connection

    def claim(self, account_id: int, callback_id: int, lease_seconds: int) -> Claim:
        db = self._connection()
        now = self.now()
        token = self.new_token()
        cursor = db.execute(_CLAIM, (account_id, callback_id, token, now + lease_seconds, now, now))
        if cursor.rowcount == 1:
            self._maybe_sweep(db, now)
            return Claim(CLAIMED, token)
        row = db.execute(
            "SELECT done_until FROM voxcallbacks WHERE account_id = ? AND callback_id = ?",
            (account_id, callback_id),
        ).fetchone()
        return Claim(DONE if row is not None and row[0] > now else BUSY)

    def complete(self, account_id: int, callback_id: int, token: str, ttl: int) -> None:
        self._connection().execute(
            """UPDATE voxcallbacks
               SET done_until = ?, error = NULL, item = NULL, failed_at = NULL,
                   lease_until = CASE WHEN token = ? THEN 0 ELSE lease_until END
               WHERE account_id = ? AND callback_id = ?""",
            (self.now() + ttl, token, account_id, callback_id),
        )

    def fail(
        self,
        account_id: int,
        callback_id: int,
        token: str,
        error: str,
        item: Mapping[str, Any],
    ) -> None:
        self._connection().execute(
            """UPDATE voxcallbacks
               SET type = ?, error = ?, item = ?, failed_at = ?, attempts = attempts + 1,
                   lease_until = CASE WHEN token = ? THEN 0 ELSE lease_until END
               WHERE account_id = ? AND callback_id = ?""",
            (
                str(item.get("type", "")),
                error,
                json.dumps(item),
                self.now(),
                token,
                account_id,
                callback_id,
            ),
        )

    def failed(self) -> list[FailedCallback]:
        rows = self._connection().execute(
            """SELECT account_id, callback_id, type, error, failed_at, attempts, item
               FROM voxcallbacks WHERE error IS NOT NULL ORDER BY failed_at"""
        )
        return [
            FailedCallback(a, c, t or "", e, f, n, json.loads(i)) for a, c, t, e, f, n, i in rows
        ]

    def prune(self, older_than: float) -> int:
        db = self._connection()
        now = self.now()
        cursor = db.execute(
            "DELETE FROM voxcallbacks WHERE error IS NOT NULL AND failed_at < ?",
            (now - older_than,),
        )
        removed = cursor.rowcount
        self._sweep(db, now)
        return removed

    def _maybe_sweep(self, db: sqlite3.Connection, now: float) -> None:
        self._claims += 1
        if self._claims % _SWEEP_EVERY == 0:
            self._sweep(db, now)

    @staticmethod
    def _sweep(db: sqlite3.Connection, now: float) -> None:
        """Forget handled callbacks past their TTL, so the table stays bounded."""
        db.execute(
            """DELETE FROM voxcallbacks
               WHERE error IS NULL AND done_until > 0 AND done_until <= ? AND lease_until <= ?""",
            (now, now),
        )

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
