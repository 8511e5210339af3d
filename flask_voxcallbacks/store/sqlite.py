"""``sqlite:///path/to/file.db``: a file shared by the worker processes of one host (WAL mode)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any, Mapping

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
    """Claims and failures in one SQLite table.

    Each process has one connection, shared by its threads under a lock (every operation is one
    short statement or two); a process forked from another opens its own.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._finalizer: weakref.finalize[[], SQLiteStore] | None = None
        self._pid = 0
        self._claims = 0
        with self._lock:
            self._connection().executescript(_SCHEMA)

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        prefix = "sqlite:///"
        path = url[len(prefix) :] if url.startswith(prefix) else ""
        if not path:
            raise ValueError(
                "VOXCALLBACKS_STORE sqlite URL needs a file: sqlite:///path/to/file.db"
            )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def _connection(self) -> sqlite3.Connection:
        """This process's connection; call with the lock held."""
        if self._db is None or self._pid != os.getpid():
            if self._finalizer is not None:
                # Inherited through a fork: the parent still uses it, so leave it unclosed.
                self._finalizer.detach()
            db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # Closed with the store, or when it is garbage-collected, or at exit.
            self._finalizer = weakref.finalize(self, db.close)
            self._db, self._pid = db, os.getpid()
        return self._db

    def claim(self, account_id: int, callback_id: int, lease_seconds: int) -> Claim:
        now = self.now()
        token = self.new_token()
        with self._lock:
            db = self._connection()
            cursor = db.execute(
                _CLAIM, (account_id, callback_id, token, now + lease_seconds, now, now)
            )
            if cursor.rowcount == 1:
                self._maybe_sweep(db, now)
                return Claim(CLAIMED, token)
            row = db.execute(
                "SELECT done_until FROM voxcallbacks WHERE account_id = ? AND callback_id = ?",
                (account_id, callback_id),
            ).fetchone()
        return Claim(DONE if row is not None and row[0] > now else BUSY)

    def complete(self, account_id: int, callback_id: int, token: str, ttl: int) -> None:
        self._execute(
            """UPDATE voxcallbacks
               SET done_until = ?, error = NULL, item = NULL, failed_at = NULL,
                   lease_until = CASE WHEN token = ? THEN 0 ELSE lease_until END
               WHERE account_id = ? AND callback_id = ?""",
            (self.now() + ttl, token, account_id, callback_id),
        )

    def _execute(self, sql: str, parameters: tuple[Any, ...]) -> None:
        with self._lock:
            self._connection().execute(sql, parameters)

    def fail(
        self,
        account_id: int,
        callback_id: int,
        token: str,
        error: str,
        item: Mapping[str, Any],
    ) -> None:
        self._execute(
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
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    """SELECT account_id, callback_id, type, error, failed_at, attempts, item
                   FROM voxcallbacks WHERE error IS NOT NULL ORDER BY failed_at"""
                )
                .fetchall()
            )
        return [
            FailedCallback(a, c, t or "", e, f, n, json.loads(i)) for a, c, t, e, f, n, i in rows
        ]

    def prune(self, older_than: float) -> int:
        now = self.now()
        with self._lock:
            db = self._connection()
            cursor = db.execute(
                "DELETE FROM voxcallbacks WHERE error IS NOT NULL AND failed_at < ?",
                (now - older_than,),
            )
            self._sweep(db, now)
            return cursor.rowcount

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
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._db = self._finalizer = None
