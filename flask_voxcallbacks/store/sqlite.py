"""``sqlite:///path/to/file.db``: a file shared by the worker processes of one host (WAL mode)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

from .base import BUSY, CLAIMED, DONE, MISMATCH, QUEUED, Claim, FailedCallback, Store

# One row per key. ``digest`` pins the body of the first claim; the row lives until
# ``expires_at`` (or the end of its lease), then the key is new again. ``done_until`` is set
# once the callback is handled; ``error``, ``item`` and ``failed_at`` while its last attempt
# failed, or while it waits for its job in queue mode (``queued`` = 1, ``error`` empty).
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
    digest TEXT NOT NULL DEFAULT '',
    expires_at REAL NOT NULL DEFAULT 0,
    queued INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, callback_id)
);
CREATE INDEX IF NOT EXISTS voxcallbacks_failed_at ON voxcallbacks (failed_at);
CREATE INDEX IF NOT EXISTS voxcallbacks_expires_at ON voxcallbacks (expires_at);
"""

# Files written by version 0.1.0 lack the pin and the expiry: rows keep no pin (the next claim
# sets it) and live as long as their done marker, lease or failure did.
_UPGRADE = """
ALTER TABLE voxcallbacks ADD COLUMN digest TEXT NOT NULL DEFAULT '';
ALTER TABLE voxcallbacks ADD COLUMN expires_at REAL NOT NULL DEFAULT 0;
UPDATE voxcallbacks SET expires_at = MAX(
    done_until, lease_until, CASE WHEN error IS NULL THEN 0 ELSE failed_at + 30 * 86400 END);
"""
# Files written before queue mode lack the queued flag.
_ADD_QUEUED = "ALTER TABLE voxcallbacks ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;"

# One statement, so the claim is atomic. A new key is inserted. An existing row is taken over
# when its lease is over and either it has expired (it starts afresh) or it is pinned to this
# body (or to none yet), not done, and not queued (unless :take_queued). Any other row is left
# alone.
_CLAIM = """
INSERT INTO voxcallbacks (account_id, callback_id, digest, expires_at, token, lease_until)
VALUES (:account_id, :callback_id, :digest, :expires_at, :token, :lease_until)
ON CONFLICT (account_id, callback_id) DO UPDATE SET
    token = excluded.token,
    lease_until = excluded.lease_until,
    digest = excluded.digest,
    expires_at = CASE WHEN expires_at > :now THEN MAX(expires_at, excluded.lease_until)
                      ELSE excluded.expires_at END,
    done_until = CASE WHEN expires_at > :now THEN done_until ELSE 0 END,
    type = CASE WHEN expires_at > :now THEN type END,
    error = CASE WHEN expires_at > :now THEN error END,
    item = CASE WHEN expires_at > :now THEN item END,
    failed_at = CASE WHEN expires_at > :now THEN failed_at END,
    attempts = CASE WHEN expires_at > :now THEN attempts ELSE 0 END,
    queued = CASE WHEN expires_at > :now THEN queued ELSE 0 END
WHERE lease_until <= :now
  AND (expires_at <= :now OR (done_until = 0 AND digest IN ('', excluded.digest)
                              AND (queued = 0 OR :take_queued)))
"""

# Failed and queued rows (``error`` is set until the callback is handled), oldest first; of
# every key, or of one.
_FAILED_ROWS = """
SELECT account_id, callback_id, type, error, failed_at, attempts, item, queued
FROM voxcallbacks WHERE error IS NOT NULL AND expires_at > ?
"""
_FAILED = _FAILED_ROWS + "ORDER BY failed_at"
_PENDING = _FAILED_ROWS + "AND account_id = ? AND callback_id = ?"

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
            db = self._connection()
            columns = {row[1] for row in db.execute("PRAGMA table_info(voxcallbacks)")}
            if columns and "digest" not in columns:
                db.executescript(_UPGRADE)
            if columns and "queued" not in columns:
                db.executescript(_ADD_QUEUED)
            db.executescript(_SCHEMA)

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

    def claim_many(
        self,
        keys: Sequence[tuple[int, int, str]],
        lease_seconds: int,
        ttl: int,
        take_queued: bool = False,
    ) -> list[Claim]:
        now = self.now()
        claims = []
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                for account_id, callback_id, digest in keys:
                    claims.append(
                        self._claim(
                            db,
                            account_id,
                            callback_id,
                            digest,
                            now,
                            lease_seconds,
                            ttl,
                            take_queued,
                        )
                    )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            if any(claim.status == CLAIMED for claim in claims):
                self._maybe_sweep(db, now)
        return claims

    def _claim(
        self,
        db: sqlite3.Connection,
        account_id: int,
        callback_id: int,
        digest: str,
        now: float,
        lease_seconds: int,
        ttl: int,
        take_queued: bool,
    ) -> Claim:
        token = self.new_token()
        key = {"account_id": account_id, "callback_id": callback_id}
        cursor = db.execute(
            _CLAIM,
            {
                **key,
                "digest": digest,
                "expires_at": now + ttl,
                "token": token,
                "lease_until": now + lease_seconds,
                "now": now,
                "take_queued": int(take_queued),
            },
        )
        if cursor.rowcount == 1:
            return Claim(CLAIMED, token)
        row = db.execute(
            """SELECT digest, done_until, queued FROM voxcallbacks
               WHERE account_id = :account_id AND callback_id = :callback_id""",
            key,
        ).fetchone()
        if row is None:
            return Claim(BUSY)
        digest_pinned, done_until, queued = row
        if digest_pinned not in ("", digest):
            return Claim(MISMATCH)
        if done_until > 0:
            return Claim(DONE)
        # Queued, even while a job runs it: the item is kept until a job handles it.
        return Claim(QUEUED if queued and not take_queued else BUSY)

    def complete_many(self, claimed: Sequence[tuple[int, int, str]], ttl: int) -> None:
        until = self.now() + ttl
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    """UPDATE voxcallbacks
                       SET done_until = :until, expires_at = :until, queued = 0,
                           type = NULL, error = NULL, item = NULL, failed_at = NULL,
                           lease_until = CASE WHEN token = :token THEN 0 ELSE lease_until END
                       WHERE account_id = :account_id AND callback_id = :callback_id""",
                    [
                        {"until": until, "token": t, "account_id": a, "callback_id": c}
                        for a, c, t in claimed
                    ],
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _execute(self, sql: str, parameters: Mapping[str, Any]) -> int:
        with self._lock:
            return self._connection().execute(sql, parameters).rowcount

    def fail(
        self,
        account_id: int,
        callback_id: int,
        token: str,
        error: str,
        item: Mapping[str, Any],
        retention: int,
    ) -> None:
        now = self.now()
        self._execute(
            """UPDATE voxcallbacks
               SET type = :type, error = :error, item = :item, failed_at = :now,
                   attempts = attempts + 1, expires_at = :expires_at, queued = 0,
                   lease_until = CASE WHEN token = :token THEN 0 ELSE lease_until END
               WHERE account_id = :account_id AND callback_id = :callback_id
                 AND done_until = 0""",
            {
                "type": str(item.get("type", "")),
                "error": error,
                "item": json.dumps(item),
                "now": now,
                "expires_at": now + retention,
                "token": token,
                "account_id": account_id,
                "callback_id": callback_id,
            },
        )

    def queue_many(
        self, queued: Sequence[tuple[int, int, str, Mapping[str, Any]]], retention: int
    ) -> None:
        now = self.now()
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    """UPDATE voxcallbacks
                       SET type = :type, error = '', item = :item, failed_at = :now, queued = 1,
                           expires_at = MAX(expires_at, :expires_at),
                           lease_until = CASE WHEN token = :token THEN 0 ELSE lease_until END
                       WHERE account_id = :account_id AND callback_id = :callback_id
                         AND done_until = 0""",
                    [
                        {
                            "type": str(item.get("type", "")),
                            "item": json.dumps(item),
                            "now": now,
                            "expires_at": now + retention,
                            "token": token,
                            "account_id": account_id,
                            "callback_id": callback_id,
                        }
                        for account_id, callback_id, token, item in queued
                    ],
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def unqueue_many(self, keys: Sequence[tuple[int, int]]) -> None:
        with self._lock:
            self._connection().executemany(
                """UPDATE voxcallbacks
                   SET queued = 0, type = NULL, error = NULL, item = NULL, failed_at = NULL
                   WHERE account_id = ? AND callback_id = ? AND queued = 1""",
                list(keys),
            )

    def pending(self, account_id: int, callback_id: int) -> FailedCallback | None:
        rows = self._failed_rows(_PENDING, (self.now(), account_id, callback_id))
        return _failed(rows[0]) if rows else None

    def failed(self) -> list[FailedCallback]:
        return [_failed(row) for row in self._failed_rows(_FAILED, (self.now(),))]

    def _failed_rows(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connection().execute(sql, parameters).fetchall()

    def prune(self, older_than: float) -> int:
        now = self.now()
        with self._lock:
            db = self._connection()
            cursor = db.execute(
                """UPDATE voxcallbacks
                   SET type = NULL, error = NULL, item = NULL, failed_at = NULL, queued = 0
                   WHERE error IS NOT NULL AND failed_at < ?""",
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
        """Forget expired rows, so the table stays bounded."""
        db.execute(
            "DELETE FROM voxcallbacks WHERE expires_at <= ? AND lease_until <= ?", (now, now)
        )

    def warnings(self) -> list[str]:
        found = []
        for path in (self.path, f"{self.path}-wal", f"{self.path}-shm"):
            try:
                mode = os.stat(path).st_mode & 0o777
            except FileNotFoundError:
                continue
            if mode & 0o077:
                found.append(
                    f"{path} can be read by other users (mode {mode:o}); it holds personal data"
                    f" from the callbacks: chmod 600 {path}"
                )
        return found

    def close(self) -> None:
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._db = self._finalizer = None


def _failed(row: tuple[Any, ...]) -> FailedCallback:
    a, c, t, e, f, n, i, q = row
    return FailedCallback(a, c, t or "", e, f, n, json.loads(i), bool(q))


def create_private(path: Path) -> None:
    """Create the database file (0600) and its missing directories (0700), readable by the owner
    only: the file holds personal data from the callbacks. Existing ones are left as they are."""
    missing = [parent for parent in path.parents if not parent.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
