"""``postgresql://user@host:port/dbname``: one table in a PostgreSQL database, shared by every
worker on every host (needs the ``postgres`` extra: psycopg 3).

The table is never created behind the user's back: ``flask voxcallbacks init-db`` creates it, or a
migration does (:func:`create_table_statements`). Every operation is one statement in its own
transaction; the claims of a batch are one statement, and so are its completions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import threading
from functools import partial
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

import psycopg
import psycopg.errors
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from ..safe_text import printable
from .base import (
    BUSY,
    CLAIMED,
    DONE,
    INIT_DB,
    MISMATCH,
    QUEUED,
    Claim,
    KeptCallback,
    Store,
    ToClaim,
    ToComplete,
    ToQueue,
    table_name,
)
from .base import TableMissingError as TableMissingError
from .rows import kept_from_row, receiver_names

# The same columns as the SQLite store's (see store/sqlite.py for what each holds); times are
# seconds since the epoch, as the hosts' clocks give them. The second index finds the failed and
# queued callbacks. Half of each page is left free, and no index covers the columns a completion
# changes, so that the completion of a claim rewrites its row in the same page without touching
# an index (a HOT update: 0.40 ms of server time per batch of 10 claimed and completed, against
# 0.53 ms with an index on ``expires_at`` and full pages).
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS {table} (
    account_id bigint NOT NULL,
    callback_id bigint NOT NULL,
    token text NOT NULL DEFAULT '',
    lease_until double precision NOT NULL DEFAULT 0,
    done_until double precision NOT NULL DEFAULT 0,
    type text,
    error text,
    item text,
    failed_at double precision,
    attempts integer NOT NULL DEFAULT 0,
    digest text NOT NULL DEFAULT '',
    expires_at double precision NOT NULL DEFAULT 0,
    queued boolean NOT NULL DEFAULT false,
    receivers text,
    trace text,
    PRIMARY KEY (account_id, callback_id)
) WITH (fillfactor = 50)""",
    "CREATE INDEX IF NOT EXISTS {table}_kept ON {table} (failed_at) WHERE error IS NOT NULL",
)

# One statement claims every key of a batch (each key once: see claim_many). A new key is
# inserted; an existing row is taken over on the same conditions as in the SQLite store. The
# keys are inserted in key order, so that two batches sharing keys never wait for each other in a
# cycle. It answers with the keys claimed, and the receivers that succeeded for them before.
# Its parameters, as text: the accounts, callback ids, digests and tokens (arrays), the time the
# record ends, the time the lease ends, now, and whether queued callbacks are taken.
_CLAIM = """
INSERT INTO {table} AS r (account_id, callback_id, digest, expires_at, token, lease_until)
SELECT account_id, callback_id, digest, $5::float8, token, $6::float8
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[])
     AS i(account_id, callback_id, digest, token)
ORDER BY account_id, callback_id
ON CONFLICT (account_id, callback_id) DO UPDATE SET
    token = excluded.token,
    lease_until = excluded.lease_until,
    digest = excluded.digest,
    expires_at = CASE WHEN r.expires_at > $7::float8
                      THEN GREATEST(r.expires_at, excluded.lease_until)
                      ELSE excluded.expires_at END,
    done_until = CASE WHEN r.expires_at > $7::float8 THEN r.done_until ELSE 0 END,
    type = CASE WHEN r.expires_at > $7::float8 THEN r.type END,
    error = CASE WHEN r.expires_at > $7::float8 THEN r.error END,
    item = CASE WHEN r.expires_at > $7::float8 THEN r.item END,
    failed_at = CASE WHEN r.expires_at > $7::float8 THEN r.failed_at END,
    attempts = CASE WHEN r.expires_at > $7::float8 THEN r.attempts ELSE 0 END,
    queued = r.expires_at > $7::float8 AND r.queued,
    receivers = CASE WHEN r.expires_at > $7::float8 THEN r.receivers END,
    trace = CASE WHEN r.expires_at > $7::float8 THEN r.trace END
WHERE r.lease_until <= $7::float8
  AND (r.expires_at <= $7::float8
       OR (r.done_until = 0 AND r.digest IN ('', excluded.digest)
           AND (NOT r.queued OR $8::boolean)))
RETURNING r.account_id, r.callback_id, r.receivers
"""
# Why the keys a claim did not take were left: what each is pinned to, whether it is done or
# queued, and when its record and lease end (a second round trip, for redeliveries only).
_UNCLAIMED = """
SELECT t.account_id, t.callback_id, t.digest, t.done_until, t.queued, t.expires_at,
       t.lease_until
FROM unnest(%(accounts)s::bigint[], %(callbacks)s::bigint[]) AS i(account_id, callback_id)
JOIN {table} t ON t.account_id = i.account_id AND t.callback_id = i.callback_id
"""

# Sent through libpq directly, without waiting for its answer (see complete_many): its
# parameters are the time until which the callbacks are remembered and three arrays, as text.
_COMPLETE = """
UPDATE {table} AS r
SET done_until = $1::float8, expires_at = $1::float8, queued = false, receivers = NULL,
    trace = NULL, type = NULL, error = NULL, item = NULL, failed_at = NULL,
    lease_until = CASE WHEN r.token = i.token THEN 0 ELSE r.lease_until END
FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS i(account_id, callback_id, token)
WHERE r.account_id = i.account_id AND r.callback_id = i.callback_id
"""

_FAIL = """
UPDATE {table}
SET type = %(type)s, error = %(error)s, item = %(item)s, failed_at = %(now)s,
    receivers = %(receivers)s, attempts = attempts + 1, expires_at = %(expires_at)s,
    queued = false, trace = NULL,
    lease_until = CASE WHEN token = %(token)s THEN 0 ELSE lease_until END
WHERE account_id = %(account_id)s AND callback_id = %(callback_id)s AND done_until = 0
"""

_QUEUE = """
UPDATE {table} AS r
SET type = i.type, error = '', item = i.item, failed_at = %(now)s, queued = true,
    trace = %(trace)s, expires_at = GREATEST(r.expires_at, %(expires_at)s),
    lease_until = CASE WHEN r.token = i.token THEN 0 ELSE r.lease_until END
FROM unnest(%(accounts)s::bigint[], %(callbacks)s::bigint[], %(tokens)s::text[],
            %(types)s::text[], %(items)s::text[]) AS i(account_id, callback_id, token, type, item)
WHERE r.account_id = i.account_id AND r.callback_id = i.callback_id AND r.done_until = 0
"""

_UNQUEUE = """
UPDATE {table} AS r
SET queued = false, type = NULL, error = NULL, item = NULL, failed_at = NULL, trace = NULL
FROM unnest(%(accounts)s::bigint[], %(callbacks)s::bigint[]) AS i(account_id, callback_id)
WHERE r.account_id = i.account_id AND r.callback_id = i.callback_id AND r.queued
"""

_KEPT_ROWS = """
SELECT account_id, callback_id, type, error, failed_at, attempts, item, queued, receivers, trace
FROM {table} WHERE error IS NOT NULL AND expires_at > %(now)s
"""

_PRUNE = """
UPDATE {table}
SET type = NULL, error = NULL, item = NULL, failed_at = NULL, queued = false, attempts = 0,
    receivers = NULL, trace = NULL
WHERE error IS NOT NULL AND failed_at < %(cutoff)s AND expires_at > %(now)s
"""

_DELETE_EXPIRED = "DELETE FROM {table} WHERE expires_at <= %(now)s AND lease_until <= %(now)s"

# The rows whose record and lease have ended among those of the pages from ``first`` to
# ``last`` (a range of the table read directly); rows another process holds are skipped. It
# answers with the number of pages the table has.
_SWEEP = """
WITH gone AS (
    DELETE FROM {table} WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM {table}
        WHERE ctid >= %(first)s::tid AND ctid < %(last)s::tid
          AND expires_at <= %(now)s AND lease_until <= %(now)s
        FOR UPDATE SKIP LOCKED))
)
SELECT pg_relation_size('{table}') / current_setting('block_size')::bigint
"""

_SQL = {
    "unclaimed": _UNCLAIMED,
    "fail": _FAIL,
    "queue": _QUEUE,
    "unqueue": _UNQUEUE,
    "kept": _KEPT_ROWS + "ORDER BY failed_at",
    "find_kept": _KEPT_ROWS + "AND account_id = %(account_id)s AND callback_id = %(callback_id)s",
    "prune": _PRUNE,
    "prune_accounts": _PRUNE + "AND account_id = ANY(%(accounts)s::bigint[])",
    "delete_expired": _DELETE_EXPIRED,
    "sweep": _SWEEP,
    "knows": (
        "SELECT 1 FROM {table} WHERE account_id = %(account_id)s"
        " AND callback_id = %(callback_id)s AND (expires_at > %(now)s OR lease_until > %(now)s)"
    ),
}

#: The writes that keep a callback's item (a failure, a queued callback) return once the server has
#: flushed them to its disk: they are what a redelivery or a job needs, and the sender has been
#: answered. Claims and completions do not wait for the flush (``synchronous_commit`` off): a
#: server crash can forget the last fraction of a second of them, which at worst runs a callback
#: of that fraction of a second again, as a crashed worker does; it never loses one.
_DURABLE = frozenset(["fail", "queue"])

#: The status of a completion's answer when it succeeded.
_DONE = pq.ExecStatus.COMMAND_OK

#: The names of the claim and the completion prepared on each connection.
_CLAIM_NAME, _COMPLETE_NAME = b"vox_claim", b"vox_complete"

#: The settings of the store's connections: claims and completions return without waiting for
#: the log to reach the disk (see _DURABLE for the writes that wait), and every join of a key
#: list with the table looks each key up in the primary key. The completion is planned once per
#: connection (see complete_many), while the table may still be small, when a hash join over the
#: whole table looks cheaper; kept as the table grows, that plan cost 4 to 12 ms of server time
#: per batch of 10 at 30,000 rows. (No other statement's plan changes: each reads an index, or
#: scans the table because no index serves it.)
_PLANNER = ("enable_hashjoin", "enable_mergejoin", "enable_seqscan")
_SETTINGS = "-c synchronous_commit=off " + " ".join(f"-c {name}=off" for name in _PLANNER)

#: Every _SWEEP_EVERY claims, a process looks at the next _SWEEP_PAGES pages of the table (going
#: round) and forgets the records there whose time is over: the sweep costs the same whatever the
#: size of the table, and reaches every row while the table grows by at most a fifth of its rows
#: (a page holds about a dozen).
_SWEEP_EVERY = 1000
_SWEEP_PAGES = 500

#: Connections inherited through a fork: the parent still uses them, so the child keeps them
#: (unused) instead of letting the garbage collector close them under the parent.
_inherited: list[psycopg.Connection[Any]] = []

logger = logging.getLogger("flask_voxcallbacks")


def create_table_statements(namespace: str = "") -> list[str]:
    """The statements that create the table of ``namespace`` and its indexes, for a migration
    (``op.execute`` in Alembic). Each one does nothing when its object exists."""
    return [statement.format(table=table_name(namespace)) for statement in _SCHEMA]


def connection_url(url: str) -> str:
    """``url`` as libpq reads it: SQLAlchemy's ``postgresql+psycopg://`` is accepted too."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


class PostgresStore(Store):
    """Claims and kept callbacks in one PostgreSQL table (one per namespace).

    Each process has one connection, shared by its threads under a lock, opened on first use
    (so a process forked from another opens its own) and opened again after it breaks.
    Leases and retention are measured with the hosts' clocks: hosts sharing a store keep them in
    step (NTP); ``flask voxcallbacks check`` warns when this host's clock and the server's differ
    by more than a second.
    """

    def __init__(self, url: str, namespace: str = "") -> None:
        self.url = connection_url(url)
        self.table = table_name(namespace)
        self.namespace = namespace
        self._sql = {name: text.format(table=self.table) for name, text in _SQL.items()}
        self._complete = _COMPLETE.format(table=self.table).encode()
        self._claim = _CLAIM.format(table=self.table).encode()
        #: The statements prepared on the current connection.
        self._prepared: set[bytes] = set()
        #: Whether the current connection runs with the planner settings of _SETTINGS (a pooler
        #: may drop them): if not, the completion is planned each time. None until the first
        #: claim on the connection, which prepares the completion as well.
        self._planned_once: bool | None = None
        #: The parameters of the completion sent whose answer has not been read yet (libpq
        #: sends nothing else on the connection until it is read).
        self._unanswered: list[bytes] | None = None
        self._lock = threading.Lock()
        self._db: psycopg.Connection[Any] | None = None
        self._pid = 0
        self._claims = 0
        #: The first page the next sweep of this process looks at.
        self._swept = 0
        #: How many rows the last statement changed.
        self._rowcount = 0

    @classmethod
    def from_url(cls, url: str, namespace: str = "") -> PostgresStore:
        conninfo_to_dict(connection_url(url))  # raises ProgrammingError for a malformed URL
        return cls(url, namespace)

    def _connection(self) -> psycopg.Connection[Any]:
        """This process's connection; call with the lock held."""
        db = self._db
        if db is not None and self._pid == os.getpid() and not db.closed:
            return db
        if db is not None and self._pid != os.getpid():
            _inherited.append(db)
        self._db = None
        # The connection's own settings go in its start-up packet, after the URL's options, so
        # that nothing is left behind on a server connection that a pooler (PgBouncer) hands to
        # others. Only the claim and the completion are prepared on the server (see _run_claim
        # and complete_many): the other statements are planned for their own arrays each time.
        options = str(conninfo_to_dict(self.url).get("options") or "")
        db = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=10,
            application_name="flask-voxcallbacks",
            options=f"{options} {_SETTINGS}".strip(),
            prepare_threshold=None,
        )
        self._db, self._pid, self._prepared, self._planned_once = db, os.getpid(), set(), None
        return db

    def _run(self, name: str, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; its rows, if it returns any."""
        with self._lock:
            db = self._ready()
            try:
                if name in _DURABLE:
                    with db.transaction():
                        db.execute("SET LOCAL synchronous_commit TO on")
                        cursor = db.execute(self._sql[name], parameters)
                else:
                    cursor = db.execute(self._sql[name], parameters)
            except psycopg.errors.UndefinedTable:
                raise self._missing(db) from None
            except psycopg.OperationalError:
                # The connection broke (a restarted server, a network cut): the next operation
                # opens a new one. This one failed, and the caller treats it as any store error.
                self._drop()
                raise
            rows = cursor.fetchall() if cursor.description is not None else []
            self._rowcount = cursor.rowcount
            return rows

    def _ready(self) -> psycopg.Connection[Any]:
        """This process's connection, once the answers of the completions sent on it are read;
        a connection found broken then is replaced. Call with the lock held."""
        db = self._connection()
        if self._unanswered is not None:
            self._read_answer(db)
            if self._db is None:
                db = self._connection()
        return db

    def _prepare(self, db: psycopg.Connection[Any], name: bytes, statement: bytes) -> None:
        """Prepare ``statement`` as ``name`` on this connection, unless it is already. Call
        with the lock held."""
        if name not in self._prepared:
            self._check(db, _wait(db.pgconn, partial(db.pgconn.send_prepare, name, statement)))
            self._prepared.add(name)

    def _run_prepared(
        self, db: psycopg.Connection[Any], name: bytes, statement: bytes, parameters: list[bytes]
    ) -> list[pq.abc.PGresult]:
        """Run ``statement`` prepared as ``name`` and wait for its results; prepare it again
        when the server has no such statement (a pooler gave this client another server
        connection). Call with the lock held."""
        for _attempt in range(2):
            self._prepare(db, name, statement)
            send = partial(db.pgconn.send_query_prepared, name, parameters)
            results = _wait(db.pgconn, send)
            if not _unknown_statement(results):
                break
            self._prepared.discard(name)
        return results

    def _run_claim(self, parameters: list[bytes]) -> dict[tuple[int, int], str | None]:
        """Run the claim statement through libpq itself: the claims taken, with the receivers
        that succeeded for them before. (Without psycopg's conversions of the arrays and rows:
        0.07 ms less of the web worker's CPU time per request of 10 callbacks, 0.71 ms against
        0.78.) It is prepared once per connection (planned once: 0.40 ms of server time per
        batch of 10 claimed and completed, against 0.58 ms planned each time)."""
        with self._lock:
            db = self._ready()
            try:
                if self._planned_once is None:  # a new connection (or a missing table before)
                    planned = _plans_by_key(db)
                    if planned:
                        self._prepare(db, _COMPLETE_NAME, self._complete)
                    self._planned_once = planned
                results = self._run_prepared(db, _CLAIM_NAME, self._claim, parameters)
                result = self._check(db, results)
            except psycopg.OperationalError:
                self._drop()
                raise
        won: dict[tuple[int, int], str | None] = {}
        for row in range(result.ntuples):
            receivers = result.get_value(row, 2)
            key = (int(result.get_value(row, 0) or 0), int(result.get_value(row, 1) or 0))
            won[key] = receivers.decode() if receivers is not None else None
        return won

    def _check(
        self, db: psycopg.Connection[Any], results: list[pq.abc.PGresult]
    ) -> pq.abc.PGresult:
        """The result of a statement sent through libpq; raise its error as psycopg would (a
        missing table as TableMissingError)."""
        for result in results:
            if result.status in (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.BAD_RESPONSE):
                error = psycopg.errors.error_from_result(result)
                if isinstance(error, psycopg.errors.UndefinedTable):
                    raise self._missing(db) from None
                raise error
        return results[-1]

    def _missing(self, db: psycopg.Connection[Any]) -> TableMissingError:
        return TableMissingError(
            f"the table {self.table} does not exist in the database {db.info.dbname!r}:"
            f" create it with `{INIT_DB}` (or a migration, see the Stores page)"
        )

    def _read_answer(self, db: psycopg.Connection[Any]) -> None:
        """Read the answer of the completion sent since the last statement; log it if it
        failed (its callbacks stay claimed until their lease ends, as when a completion
        raises), and drop the connection if it broke. A completion the server had no prepared
        statement for is prepared and run again. Call with the lock held."""
        pgconn = db.pgconn
        parameters, self._unanswered = self._unanswered, None
        results = []
        while True:
            result = pgconn.get_result()
            if result is None:
                break
            results.append(result)
        error = next((r.error_message or b"" for r in results if r.status != _DONE), None)
        if parameters is not None and _unknown_statement(results):
            self._prepared.discard(_COMPLETE_NAME)  # known lost: prepared before it runs again
            try:
                results = self._run_prepared(db, _COMPLETE_NAME, self._complete, parameters)
                error = next((r.error_message or b"" for r in results if r.status != _DONE), None)
            except psycopg.OperationalError as broken:
                error = str(broken).encode()
        if error is not None:
            logger.error(
                "store error while recording handled callbacks as done (%s); they stay"
                " claimed until their lease ends",
                printable(error.decode("utf-8", "replace").strip(), limit=300),
            )
        if pgconn.status != pq.ConnStatus.OK:
            self._drop()

    def _drop(self) -> None:
        self._unanswered = None
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None

    def create_tables(self) -> list[str]:
        """Create the table and its indexes in one transaction; existing ones are left as they
        are."""
        with self._lock:
            db = self._ready()
            with db.transaction():
                for statement in create_table_statements(self.namespace):
                    db.execute(statement)
        return [self.table]

    def claim_many(
        self,
        keys: Sequence[ToClaim],
        lease_seconds: int,
        ttl: int,
        take_queued: bool = False,
    ) -> list[Claim]:
        # A statement cannot change one row twice: a key repeated in the batch is claimed, in
        # order, by the next statement (batches hardly ever repeat a key, so most are one).
        claims: list[Claim | None] = [None] * len(keys)
        pending = list(range(len(keys)))
        while pending:
            seen: set[tuple[int, int]] = set()
            now_round: list[int] = []
            later: list[int] = []
            for index in pending:
                account_id, callback_id, _ = keys[index]
                if (account_id, callback_id) in seen:
                    later.append(index)
                else:
                    seen.add((account_id, callback_id))
                    now_round.append(index)
            self._claim_round(keys, now_round, claims, lease_seconds, ttl, take_queued)
            pending = later
        return [claim for claim in claims if claim is not None]

    def _claim_round(
        self,
        keys: Sequence[ToClaim],
        indexes: list[int],
        claims: list[Claim | None],
        lease_seconds: int,
        ttl: int,
        take_queued: bool,
    ) -> None:
        now = self.now()
        tokens = {index: self.new_token() for index in indexes}
        won = self._run_claim(
            [
                _array(str(keys[i][0]) for i in indexes),
                _array(str(keys[i][1]) for i in indexes),
                # Digests and tokens are hexadecimal digits: no quoting needed.
                _array(keys[i][2] for i in indexes),
                _array(tokens[i] for i in indexes),
                repr(now + ttl).encode(),
                repr(now + lease_seconds).encode(),
                repr(now).encode(),
                b"t" if take_queued else b"f",
            ]
        )
        left = [index for index in indexes if (keys[index][0], keys[index][1]) not in won]
        before: dict[tuple[int, int], tuple[Any, ...]] = {}
        if left:
            unclaimed = self._run(
                "unclaimed",
                {"accounts": [keys[i][0] for i in left], "callbacks": [keys[i][1] for i in left]},
            )
            before = {(row[0], row[1]): row[2:] for row in unclaimed}
        claimed = 0
        for index in indexes:
            account_id, callback_id, digest = keys[index]
            key = (account_id, callback_id)
            if key in won:
                claimed += 1
                claims[index] = Claim(CLAIMED, tokens[index], receiver_names(won[key]))
                continue
            record = before.get(key)
            if record is None:
                # Forgotten since (expired and swept): another claim will find it new.
                claims[index] = Claim(BUSY)
                continue
            pinned, done_until, queued, expires_at, lease_until = record
            if expires_at <= now and lease_until <= now:
                claims[index] = Claim(BUSY)  # claimed by another process since
            elif pinned not in ("", digest):
                claims[index] = Claim(MISMATCH)
            elif done_until > 0:
                claims[index] = Claim(DONE)
            else:
                # Queued, even while a job runs it: the item is kept until a job handles it.
                claims[index] = Claim(QUEUED if queued and not take_queued else BUSY)
        if claimed:
            self._maybe_sweep(now, claimed)

    def complete_many(self, claimed: Sequence[ToComplete], ttl: int) -> None:
        """Send the completions in one statement, and read its answer with the next
        statement's: the request is answered meanwhile (without the wait, 46% of the guide
        route's callbacks per second over HTTP at batch 10, against 30% with it). The server
        runs it in the order it was sent, before any later statement of this process. The first
        claim on a connection prepares it, where the connection runs with the planner settings
        of _SETTINGS (0.33 ms of server time per batch of 10 claimed and completed, against 0.50
        ms planned each time)."""
        if not claimed:
            return
        parameters = [
            repr(self.now() + ttl).encode(),
            ("{" + ",".join(str(a) for a, _, _ in claimed) + "}").encode(),
            ("{" + ",".join(str(c) for _, c, _ in claimed) + "}").encode(),
            # Tokens are hexadecimal digits: no quoting needed.
            ("{" + ",".join(t for _, _, t in claimed) + "}").encode(),
        ]
        with self._lock:
            db = self._ready()
            try:
                if _COMPLETE_NAME in self._prepared:
                    db.pgconn.send_query_prepared(_COMPLETE_NAME, parameters)
                else:
                    db.pgconn.send_query_params(self._complete, parameters)
                _flush(db.pgconn)
            except psycopg.OperationalError:
                self._drop()
                raise
            self._unanswered = parameters

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
        self._run(
            "fail",
            {
                "type": str(item.get("type", "")),
                "error": error,
                "item": json.dumps(item),
                "now": now,
                "receivers": json.dumps(list(succeeded)) if succeeded else None,
                "expires_at": now + retention,
                "token": token,
                "account_id": account_id,
                "callback_id": callback_id,
            },
        )

    def queue_many(self, queued: Sequence[ToQueue], retention: int, trace: str = "") -> None:
        if not queued:
            return
        now = self.now()
        self._run(
            "queue",
            {
                "now": now,
                "trace": trace,
                "expires_at": now + retention,
                "accounts": [q[0] for q in queued],
                "callbacks": [q[1] for q in queued],
                "tokens": [q[2] for q in queued],
                "types": [str(q[3].get("type", "")) for q in queued],
                "items": [json.dumps(q[3]) for q in queued],
            },
        )

    def unqueue_many(self, keys: Sequence[tuple[int, int]]) -> None:
        if not keys:
            return
        self._run(
            "unqueue",
            {"accounts": [a for a, _ in keys], "callbacks": [c for _, c in keys]},
        )

    def find_kept(self, account_id: int, callback_id: int) -> KeptCallback | None:
        rows = self._run(
            "find_kept", {"now": self.now(), "account_id": account_id, "callback_id": callback_id}
        )
        return kept_from_row(rows[0]) if rows else None

    def kept(self) -> list[KeptCallback]:
        return [kept_from_row(row) for row in self._run("kept", {"now": self.now()})]

    def knows(self, account_id: int, callback_id: int) -> bool:
        parameters = {"account_id": account_id, "callback_id": callback_id, "now": self.now()}
        return bool(self._run("knows", parameters))

    def prune(self, older_than: float, accounts: Collection[int] | None = None) -> int:
        now = self.now()
        cutoff = now - older_than
        # Failures whose retention has ended are gone already: not counted.
        if accounts is None:
            self._run("prune", {"cutoff": cutoff, "now": now})
        else:
            self._run("prune_accounts", {"cutoff": cutoff, "now": now, "accounts": list(accounts)})
        pruned = self._rowcount
        self._run("delete_expired", {"now": now})
        return pruned

    def _maybe_sweep(self, now: float, claimed: int) -> None:
        self._claims += claimed
        if self._claims >= _SWEEP_EVERY:
            self._claims = 0
            first, last = self._swept, self._swept + _SWEEP_PAGES
            parameters = {"now": now, "first": f"({first},0)", "last": f"({last},0)"}
            ((pages,),) = self._run("sweep", parameters)
            self._swept = 0 if last >= pages else last

    @property
    def identity(self) -> str:
        info = conninfo_to_dict(self.url)
        host, port, dbname = (str(info.get(name) or "") for name in ("host", "port", "dbname"))
        return f"postgresql://{host}{':' if port else ''}{port}/{dbname}#{self.table}"

    def warnings(self) -> list[str]:
        with self._lock:
            db = self._ready()
            before = self.now()
            row = db.execute("SELECT extract(epoch from clock_timestamp())::float8").fetchone()
            after = self.now()
        assert row is not None  # a SELECT of one value answers one row
        skew = float(row[0]) - (before + after) / 2
        if abs(skew) > 1:
            return [
                f"this host's clock and the PostgreSQL server's differ by {abs(skew):.1f} s:"
                " leases and retention are measured with each host's clock, so keep the hosts"
                " in step (NTP)"
            ]
        return []

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid != os.getpid():
                _inherited.append(self._db)
                self._db = None
            if self._db is not None and not self._db.closed:
                # Read what the last completion answered, so that its failure is logged; a
                # connection that broke is closed all the same.
                with contextlib.suppress(psycopg.Error):
                    self._read_answer(self._db)
            self._drop()


def _array(values: Iterable[str]) -> bytes:
    """A PostgreSQL array literal of values that need no quoting (numbers, hex digits)."""
    return ("{" + ",".join(values) + "}").encode()


def _plans_by_key(db: psycopg.Connection[Any]) -> bool:
    """Whether the server runs this connection with the planner settings of _SETTINGS."""
    names = ", ".join(f"current_setting('{name}')" for name in _PLANNER)
    row = db.execute(f"SELECT {names}").fetchone()
    return row is not None and set(row) == {"off"}


def _unknown_statement(results: list[pq.abc.PGresult]) -> bool:
    """Whether the server did not know the prepared statement it was asked to run."""
    return any(result.error_field(pq.DiagnosticField.SQLSTATE) == b"26000" for result in results)


def _flush(pgconn: pq.abc.PGconn) -> None:
    """Send what libpq holds for the server (the connection does not block on writes)."""
    while pgconn.flush():
        select.select([], [pgconn.socket], [])


def _wait(pgconn: pq.abc.PGconn, send: Callable[[], None]) -> list[pq.abc.PGresult]:
    """Send one statement through libpq and wait for its results."""
    send()
    _flush(pgconn)
    results: list[pq.abc.PGresult] = []
    while True:
        while pgconn.is_busy():
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            return results
        results.append(result)
