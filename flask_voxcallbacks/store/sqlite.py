"""``sqlite:///path/to/file.db``: a file shared by the worker processes of one host (WAL mode)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any, Collection, Iterator, Mapping, Sequence

try:
    from fcntl import LOCK_EX as _LOCK_EX
    from fcntl import LOCK_UN as _LOCK_UN
    from fcntl import flock as _flock
except ImportError:  # Windows: SQLite's busy handler alone orders the writers.
    _flock = None  # type: ignore[assignment]

from .base import (
    BUSY,
    CLAIMED,
    DONE,
    MISMATCH,
    QUEUED,
    Claim,
    KeptCallback,
    Store,
    ToClaim,
    ToComplete,
    ToQueue,
)
from .rows import kept_from_row, receiver_names

# One row per key. ``digest`` pins the body of the first claim; the row lives until
# ``expires_at`` (or the end of its lease), then the key is new again. ``done_until`` is set
# once the callback is handled; ``error``, ``item`` and ``failed_at`` while its last attempt
# failed, or while it waits for its job in queue mode (``queued`` = 1, ``error`` empty);
# ``receivers`` (a JSON list) names the receivers that have succeeded for a failed callback;
# ``trace`` is the trace context of the request that queued it.
# ``{table}`` is ``voxcallbacks``, or ``voxcallbacks_<namespace>`` (VOXCALLBACKS_NAMESPACE).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
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
    receivers TEXT,
    trace TEXT,
    PRIMARY KEY (account_id, callback_id)
);
CREATE INDEX IF NOT EXISTS {table}_failed ON {table} (failed_at) WHERE error IS NOT NULL;
"""
_COLUMNS = frozenset(
    [
        "account_id",
        "callback_id",
        "token",
        "lease_until",
        "done_until",
        "type",
        "error",
        "item",
        "failed_at",
        "attempts",
        "digest",
        "expires_at",
        "queued",
        "receivers",
        "trace",
    ]
)

# One statement, so the claim is atomic. A new key is inserted. An existing row is taken over
# when its lease is over and either it has expired (it starts afresh) or it is pinned to this
# body (or to none yet), not done, and not queued (unless :take_queued). Any other row is left
# alone.
_CLAIM = """
INSERT INTO {table} (account_id, callback_id, digest, expires_at, token, lease_until)
{rows}
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
    queued = CASE WHEN expires_at > :now THEN queued ELSE 0 END,
    receivers = CASE WHEN expires_at > :now THEN receivers END,
    trace = CASE WHEN expires_at > :now THEN trace END
WHERE lease_until <= :now
  AND (expires_at <= :now OR (done_until = 0 AND digest IN ('', excluded.digest)
                              AND (queued = 0 OR :take_queued)))
"""
#: SQLite 3.35 and later return the receivers of a claimed row with the claim itself.
_RETURNING = sqlite3.sqlite_version_info >= (3, 35)
#: SQLite 3.38 and later (where the JSON functions are always built in) claim the keys of a
#: batch in one statement, reading them from a JSON array: for a batch of 10, 190 us of the
#: worker's CPU against 340 for ten statements (time.process_time, 2,000 batches).
_ONE_STATEMENT = sqlite3.sqlite_version_info >= (3, 38)
#: The row _CLAIM inserts for one callback.
_ONE_ROW = "VALUES (:account_id, :callback_id, :digest, :expires_at, :token, :lease_until)"
#: The rows _CLAIM inserts, one per ``[account_id, callback_id, digest, token]`` of :keys.
_CLAIM_ROWS = """
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       :expires_at, json_extract(value, '$[3]'), :lease_until
FROM json_each(:keys) WHERE true
"""
_CLAIMED_RECEIVERS = (
    "SELECT receivers FROM {table} WHERE account_id = :account_id AND callback_id = :callback_id"
)

# Failed and queued rows (``error`` is set until the callback is handled), oldest first; of
# every key, or of one.
_FAILED_ROWS = """
SELECT account_id, callback_id, type, error, failed_at, attempts, item, queued, receivers, trace
FROM {table} WHERE error IS NOT NULL AND expires_at > ?
"""

#: Forgets the rows whose record and lease have both ended.
_DELETE_EXPIRED = "DELETE FROM {table} WHERE expires_at <= :now AND lease_until <= :now"

_SQL = {
    "schema": _SCHEMA,
    "claimed_receivers": _CLAIMED_RECEIVERS,
    "claimed": (
        "SELECT digest, done_until, queued FROM {table}"
        " WHERE account_id = :account_id AND callback_id = :callback_id"
    ),
    "complete": """UPDATE {table}
        SET done_until = :until, expires_at = :until, queued = 0, receivers = NULL, trace = NULL,
            type = NULL, error = NULL, item = NULL, failed_at = NULL,
            lease_until = CASE WHEN token = :token THEN 0 ELSE lease_until END
        WHERE account_id = :account_id AND callback_id = :callback_id""",
    "fail": """UPDATE {table}
        SET type = :type, error = :error, item = :item, failed_at = :now, receivers = :receivers,
            attempts = attempts + 1, expires_at = :expires_at, queued = 0, trace = NULL,
            lease_until = CASE WHEN token = :token THEN 0 ELSE lease_until END
        WHERE account_id = :account_id AND callback_id = :callback_id AND done_until = 0""",
    "queue": """UPDATE {table}
        SET type = :type, error = '', item = :item, failed_at = :now, queued = 1, trace = :trace,
            expires_at = MAX(expires_at, :expires_at),
            lease_until = CASE WHEN token = :token THEN 0 ELSE lease_until END
        WHERE account_id = :account_id AND callback_id = :callback_id AND done_until = 0""",
    "unqueue": """UPDATE {table}
        SET queued = 0, type = NULL, error = NULL, item = NULL, failed_at = NULL, trace = NULL
        WHERE account_id = ? AND callback_id = ? AND queued = 1""",
    "failed": _FAILED_ROWS + "ORDER BY failed_at",
    "pending": _FAILED_ROWS + "AND account_id = ? AND callback_id = ?",
    "prune": """UPDATE {table}
        SET type = NULL, error = NULL, item = NULL, failed_at = NULL, queued = 0, attempts = 0,
            receivers = NULL, trace = NULL
        WHERE error IS NOT NULL AND failed_at < ? AND expires_at > ?""",
    "delete_expired": _DELETE_EXPIRED,
    "knows": (
        "SELECT 1 FROM {table} WHERE account_id = :account_id AND callback_id = :callback_id"
        " AND (expires_at > :now OR lease_until > :now)"
    ),
    "sweep_end": "SELECT rowid FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1 OFFSET ?",
}

#: Every _SWEEP_EVERY claims, a process looks at the next _SWEEP_ROWS rows of the table (in rowid
#: order, going round) and forgets those expired: the sweep costs the same whatever the size of
#: the table, and reaches every row while the table grows by at most a fifth of its rows.
_SWEEP_EVERY = 1000
_SWEEP_ROWS = 5 * _SWEEP_EVERY
_MAX_ROWID = 2**63 - 1


class SQLiteStore(Store):
    """Claims and failures in one SQLite table (one per namespace).

    Each process has one connection, shared by its threads under a lock (every operation is one
    short statement or two); a process forked from another opens its own.
    """

    def __init__(self, path: str, namespace: str = "") -> None:
        self.path = path
        self.table = f"voxcallbacks_{namespace}" if namespace else "voxcallbacks"
        sql = {name: text.format(table=self.table) for name, text in _SQL.items()}
        self._sql = sql
        one = _CLAIM.format(table=self.table, rows=_ONE_ROW)
        self._claim_sql = one + (" RETURNING receivers" if _RETURNING else "")
        batch = _CLAIM.format(table=self.table, rows=_CLAIM_ROWS)
        self._claim_all_sql = batch + " RETURNING token, receivers"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._writers = -1
        self._finalizer: weakref.finalize[[sqlite3.Connection, int], SQLiteStore] | None = None
        self._pid = 0
        self._claims = 0
        #: The last rowid the sweep looked at in this process.
        self._swept = 0
        with self._lock:
            db = self._connection()
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({self.table})")}
            if columns and not columns >= _COLUMNS:
                missing = ", ".join(sorted(_COLUMNS - columns))
                raise sqlite3.DatabaseError(
                    f"the table {self.table} lacks the columns {missing} (written by a development"
                    " version); move the file aside to start a new one"
                )
            db.executescript(sql["schema"])

    def _connection(self) -> sqlite3.Connection:
        """This process's connection; call with the lock held."""
        if self._db is None or self._pid != os.getpid():
            if self._finalizer is not None:
                # Inherited through a fork: the parent still uses it, so leave it unclosed.
                self._finalizer.detach()
            db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                writers = os.open(f"{self.path}-lock", os.O_RDWR | os.O_CREAT, 0o600)
            except BaseException:
                db.close()  # not a database, or a lock file that cannot be made
                raise
            # Closed with the store, or when it is garbage-collected, or at exit.
            self._finalizer = weakref.finalize(self, _close, db, writers)
            self._db, self._writers, self._pid = db, writers, os.getpid()
        return self._db

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed when the block ends (rolled back if it raises).

        The processes sharing the file take turns through an exclusive lock on ``<path>-lock``
        first: the kernel wakes the next writer as soon as the lock is released, where SQLite's
        own busy handler would sleep a millisecond or more between tries.
        """
        with self._lock:
            db = self._connection()
            if _flock is not None:
                _flock(self._writers, _LOCK_EX)
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                if _flock is not None:
                    _flock(self._writers, _LOCK_UN)

    def claim_many(
        self,
        keys: Sequence[ToClaim],
        lease_seconds: int,
        ttl: int,
        take_queued: bool = False,
    ) -> list[Claim]:
        now = self.now()
        with self._writing() as db:
            if _ONE_STATEMENT:
                claims = self._claim_all(db, keys, now, lease_seconds, ttl, take_queued)
            else:
                claims = [
                    self._claim(
                        db, account_id, callback_id, digest, now, lease_seconds, ttl, take_queued
                    )
                    for account_id, callback_id, digest in keys
                ]
            claimed = sum(claim.status == CLAIMED for claim in claims)
            if claimed:
                self._maybe_sweep(db, now, claimed)
        return claims

    def _claim_all(
        self,
        db: sqlite3.Connection,
        keys: Sequence[ToClaim],
        now: float,
        lease_seconds: int,
        ttl: int,
        take_queued: bool,
    ) -> list[Claim]:
        """Claim every key in one statement; a key it did not take is then read on its own, to
        tell why. Each key has its own token, so a key sent twice is claimed once, for the
        first: the second finds the first's lease, as it would in a statement of its own."""
        tokens = [self.new_token() for _ in keys]
        rows = [[a, c, digest, token] for (a, c, digest), token in zip(keys, tokens)]
        cursor = db.execute(
            self._claim_all_sql,
            {
                "keys": json.dumps(rows),
                "expires_at": now + ttl,
                "lease_until": now + lease_seconds,
                "now": now,
                "take_queued": int(take_queued),
            },
        )
        # Read to the end, so that the statement is finished before the transaction commits.
        claimed = dict(cursor.fetchall())
        claims = []
        for (account_id, callback_id, digest), token in zip(keys, tokens):
            if token in claimed:
                claims.append(Claim(CLAIMED, token, receiver_names(claimed[token])))
            else:
                claims.append(self._not_claimed(db, account_id, callback_id, digest, take_queued))
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
            self._claim_sql,
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
        if _RETURNING:
            # Read to the end, so that the statement is finished before the transaction commits.
            rows = cursor.fetchall()
            claimed = rows[0] if rows else None
        elif cursor.rowcount == 1:
            claimed = db.execute(self._sql["claimed_receivers"], key).fetchone()
        else:
            claimed = None
        if claimed is not None:
            return Claim(CLAIMED, token, receiver_names(claimed[0]))
        return self._not_claimed(db, account_id, callback_id, digest, take_queued)

    def _not_claimed(
        self,
        db: sqlite3.Connection,
        account_id: int,
        callback_id: int,
        digest: str,
        take_queued: bool,
    ) -> Claim:
        """Why a claim did not take its key: the answer its row gives."""
        key = {"account_id": account_id, "callback_id": callback_id}
        row = db.execute(self._sql["claimed"], key).fetchone()
        if row is None:
            return Claim(BUSY)
        digest_pinned, done_until, queued = row
        if digest_pinned not in ("", digest):
            return Claim(MISMATCH)
        if done_until > 0:
            return Claim(DONE)
        # Queued, even while a job runs it: the item is kept until a job handles it.
        return Claim(QUEUED if queued and not take_queued else BUSY)

    def complete_many(self, claimed: Sequence[ToComplete], ttl: int) -> None:
        until = self.now() + ttl
        with self._writing() as db:
            db.executemany(
                self._sql["complete"],
                [
                    {"until": until, "token": t, "account_id": a, "callback_id": c}
                    for a, c, t in claimed
                ],
            )

    def fail(
        self,
        account_id: int,
        callback_id: int,
        token: str,
        error: str,
        item: Mapping[str, Any],
        retention: int,
        succeeded: Sequence[str] = (),
    ) -> None:
        now = self.now()
        with self._writing() as db:
            db.execute(
                self._sql["fail"],
                {
                    **_record(account_id, callback_id, token, item, now, retention),
                    "error": error,
                    "receivers": json.dumps(list(succeeded)) if succeeded else None,
                },
            )

    def queue_many(self, queued: Sequence[ToQueue], retention: int, trace: str = "") -> None:
        now = self.now()
        with self._writing() as db:
            db.executemany(
                self._sql["queue"],
                [
                    {
                        **_record(account_id, callback_id, token, item, now, retention),
                        "trace": trace,
                    }
                    for account_id, callback_id, token, item in queued
                ],
            )

    def unqueue_many(self, keys: Sequence[tuple[int, int]]) -> None:
        with self._writing() as db:
            db.executemany(
                self._sql["unqueue"],
                list(keys),
            )

    def find_kept(self, account_id: int, callback_id: int) -> KeptCallback | None:
        rows = self._failed_rows(self._sql["pending"], (self.now(), account_id, callback_id))
        return kept_from_row(rows[0]) if rows else None

    def knows(self, account_id: int, callback_id: int) -> bool:
        parameters = {"account_id": account_id, "callback_id": callback_id, "now": self.now()}
        with self._lock:
            row = self._connection().execute(self._sql["knows"], parameters).fetchone()
        return row is not None

    @property
    def identity(self) -> str:
        return f"sqlite:///{os.path.realpath(self.path)}#{self.table}"

    def kept(self) -> list[KeptCallback]:
        return [kept_from_row(row) for row in self._failed_rows(self._sql["failed"], (self.now(),))]

    def _failed_rows(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connection().execute(sql, parameters).fetchall()

    def prune(self, older_than: float, accounts: Collection[int] | None = None) -> int:
        now = self.now()
        with self._writing() as db:
            cutoff = now - older_than
            # Failures whose retention has ended are gone already: not counted.
            if accounts is None:
                cursor = db.execute(self._sql["prune"], (cutoff, now))
            else:
                cursor = db.executemany(
                    self._sql["prune"] + " AND account_id = ?",
                    [(cutoff, now, account_id) for account_id in accounts],
                )
            db.execute(self._sql["delete_expired"], {"now": now})
            return cursor.rowcount

    def _maybe_sweep(self, db: sqlite3.Connection, now: float, claimed: int) -> None:
        self._claims += claimed
        if self._claims >= _SWEEP_EVERY:
            self._claims = 0
            end = db.execute(
                self._sql["sweep_end"],
                (self._swept, _SWEEP_ROWS - 1),
            ).fetchone()
            last = _MAX_ROWID if end is None else end[0]
            db.execute(
                self._sql["delete_expired"] + " AND rowid > :first AND rowid <= :last",
                {"now": now, "first": self._swept, "last": last},
            )
            self._swept = 0 if end is None else last

    def warnings(self) -> list[str]:
        found = []
        for path in (self.path, f"{self.path}-wal", f"{self.path}-shm"):
            try:
                status = os.stat(path)
            except FileNotFoundError:
                continue
            mode = status.st_mode & 0o777
            if hasattr(os, "getuid") and status.st_uid != os.getuid():
                found.append(
                    f"{path} belongs to another user (uid {status.st_uid}, this process runs as"
                    f" uid {os.getuid()}): the workers of each user must be able to write it;"
                    f" chown it to the user the application runs as"
                )
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


def _record(
    account_id: int,
    callback_id: int,
    token: str,
    item: Mapping[str, Any],
    now: float,
    retention: int,
) -> dict[str, Any]:
    """The parameters that keep a callback's item, failed or queued, for ``retention`` s and
    release its claim if ``token`` holds it."""
    return {
        "type": str(item.get("type", "")),
        "item": json.dumps(item),
        "now": now,
        "expires_at": now + retention,
        "token": token,
        "account_id": account_id,
        "callback_id": callback_id,
    }


def _close(db: sqlite3.Connection, writers: int) -> None:
    db.close()
    os.close(writers)


def create_private(path: Path) -> None:
    """Create the database file (0600) and its missing directories (0700), readable by the owner
    only: the file holds personal data from the callbacks. Existing ones are left as they are."""
    missing = [parent for parent in path.parents if not parent.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
