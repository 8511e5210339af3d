"""``VOXCALLBACKS_STORE = "sqlalchemy"``: the store in the application's own database, through
Flask-SQLAlchemy's session, so that each callback's claim, its receivers' writes and its done
marker commit in one transaction (needs the ``sqlalchemy`` extra).

PostgreSQL for any number of processes, SQLite for one. The table is created by
``flask voxcallbacks init-db`` or by a migration (:func:`voxcallbacks_table`).

What a receiver may do in this mode: write through ``db.session`` (add, update, delete, flush,
query) and nothing else to the transaction. The extension commits once the receivers of a
callback have all succeeded, and rolls back when one fails. A receiver that calls
``db.session.commit()`` fails with :class:`ReceiverCommitError`; one that calls
``db.session.rollback()`` makes its callback fail: either would separate its writes from the done
marker. Effects outside the database (an e-mail, an HTTP call) are not undone by a rollback.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Collection, Mapping, Sequence

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.orm import Session

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
    TableMissingError,
    ToClaim,
    ToComplete,
    ToQueue,
    table_name,
)
from .rows import kept_from_row, receiver_names


def voxcallbacks_table(metadata: sa.MetaData, namespace: str = "") -> sa.Table:
    """The store's table for ``namespace``, defined on ``metadata``: pass ``db.metadata`` for
    Alembic (Flask-Migrate) to create it in a migration. The same table as ``init-db`` creates,
    for this store and for ``postgresql://`` stores."""
    name = table_name(namespace)
    table = sa.Table(
        name,
        metadata,
        sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("callback_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("token", sa.Text, nullable=False, server_default=""),
        sa.Column("lease_until", sa.Double, nullable=False, server_default="0"),
        sa.Column("done_until", sa.Double, nullable=False, server_default="0"),
        sa.Column("type", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("item", sa.Text),
        sa.Column("failed_at", sa.Double),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("digest", sa.Text, nullable=False, server_default=""),
        sa.Column("expires_at", sa.Double, nullable=False, server_default="0"),
        sa.Column("queued", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("receivers", sa.Text),
        sa.Column("trace", sa.Text),
        sa.Index(
            f"{name}_kept",
            "failed_at",
            postgresql_where=sa.text("error IS NOT NULL"),
            sqlite_where=sa.text("error IS NOT NULL"),
        ),
    )
    # Half-empty pages in PostgreSQL, as store/postgres.py explains (SQLAlchemy 2.0 has no table
    # option for it).
    event.listen(table, "after_create", _half_empty_pages)
    return table


def _half_empty_pages(table: sa.Table, connection: sa.Connection, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"ALTER TABLE {table.name} SET (fillfactor = 50)"))


# The statements, in the SQL that PostgreSQL and SQLite share. A claim takes a key as the SQLite
# store's does (see store/sqlite.py), and, in PostgreSQL, locks its row until the callback's
# transaction ends: a concurrent claim of the same key waits for it (up to _LOCK_TIMEOUT).
_CLAIM = """
INSERT INTO {t} (account_id, callback_id, digest, expires_at, token, lease_until)
VALUES (:account_id, :callback_id, :digest, :expires_at, :token, :lease_until)
ON CONFLICT (account_id, callback_id) DO UPDATE SET
    token = excluded.token,
    lease_until = excluded.lease_until,
    digest = excluded.digest,
    expires_at = CASE WHEN {t}.expires_at <= :now THEN excluded.expires_at
                      WHEN {t}.expires_at > excluded.lease_until THEN {t}.expires_at
                      ELSE excluded.lease_until END,
    done_until = CASE WHEN {t}.expires_at > :now THEN {t}.done_until ELSE 0 END,
    type = CASE WHEN {t}.expires_at > :now THEN {t}.type END,
    error = CASE WHEN {t}.expires_at > :now THEN {t}.error END,
    item = CASE WHEN {t}.expires_at > :now THEN {t}.item END,
    failed_at = CASE WHEN {t}.expires_at > :now THEN {t}.failed_at END,
    attempts = CASE WHEN {t}.expires_at > :now THEN {t}.attempts ELSE 0 END,
    queued = CASE WHEN {t}.expires_at > :now THEN {t}.queued ELSE :no END,
    receivers = CASE WHEN {t}.expires_at > :now THEN {t}.receivers END,
    trace = CASE WHEN {t}.expires_at > :now THEN {t}.trace END
WHERE {t}.lease_until <= :now
  AND ({t}.expires_at <= :now OR ({t}.done_until = 0 AND {t}.digest IN ('', excluded.digest)
                                  AND ({t}.queued = :no OR :take_queued)))
RETURNING receivers
"""
_CLAIMED = (
    "SELECT digest, done_until, queued FROM {t}"
    " WHERE account_id = :account_id AND callback_id = :callback_id"
)
_COMPLETE = """
UPDATE {t} SET done_until = :until, expires_at = :until, queued = :no, receivers = NULL,
    trace = NULL, type = NULL, error = NULL, item = NULL, failed_at = NULL, lease_until = 0
WHERE account_id = :account_id AND callback_id = :callback_id
"""
# After the rollback of the callback's transaction, which took its claim with it: the failure
# is kept whether the key had a row before or not. Every receiver runs again on the next attempt
# (the rollback undid the writes of those that had succeeded).
_FAIL = """
INSERT INTO {t} (account_id, callback_id, digest, type, error, item, failed_at, attempts,
                 expires_at)
VALUES (:account_id, :callback_id, :digest, :type, :error, :item, :now, 1, :expires_at)
ON CONFLICT (account_id, callback_id) DO UPDATE SET
    type = excluded.type, error = excluded.error, item = excluded.item,
    failed_at = excluded.failed_at, attempts = {t}.attempts + 1,
    expires_at = excluded.expires_at, queued = :no, trace = NULL, receivers = NULL,
    lease_until = 0, token = ''
WHERE {t}.done_until = 0
"""
_QUEUE = """
UPDATE {t} SET type = :type, error = '', item = :item, failed_at = :now, queued = :yes,
    trace = :trace, lease_until = 0,
    expires_at = CASE WHEN expires_at > :expires_at THEN expires_at ELSE :expires_at END
WHERE account_id = :account_id AND callback_id = :callback_id AND done_until = 0
"""
_UNQUEUE = """
UPDATE {t} SET queued = :no, type = NULL, error = NULL, item = NULL, failed_at = NULL,
    trace = NULL
WHERE account_id = :account_id AND callback_id = :callback_id AND queued = :yes
"""
_KEPT_ROWS = """
SELECT account_id, callback_id, type, error, failed_at, attempts, item, queued, receivers, trace
FROM {t} WHERE error IS NOT NULL AND expires_at > :now
"""
_PRUNE = """
UPDATE {t} SET type = NULL, error = NULL, item = NULL, failed_at = NULL, queued = :no,
    attempts = 0, receivers = NULL, trace = NULL
WHERE error IS NOT NULL AND failed_at < :cutoff AND expires_at > :now
"""
_SQL = {
    "claim": _CLAIM,
    "claimed": _CLAIMED,
    "complete": _COMPLETE,
    "fail": _FAIL,
    "queue": _QUEUE,
    "unqueue": _UNQUEUE,
    "kept": _KEPT_ROWS + "ORDER BY failed_at",
    "find_kept": _KEPT_ROWS + "AND account_id = :account_id AND callback_id = :callback_id",
    "prune": _PRUNE,
    "prune_account": _PRUNE + "AND account_id = :account_id",
    "delete_expired": "DELETE FROM {t} WHERE expires_at <= :now AND lease_until <= :now",
    "knows": (
        "SELECT 1 FROM {t} WHERE account_id = :account_id AND callback_id = :callback_id"
        " AND (expires_at > :now OR lease_until > :now)"
    ),
}
#: How long a claim waits for another transaction holding the same callback (PostgreSQL) before
#: the callback is answered as in progress (503), for a redelivery to try again.
_LOCK_TIMEOUT = "5s"
# The records whose time is over in one range of the table (pages in PostgreSQL, rowids in
# SQLite), and the end of the table in the same unit.
_SWEEP = {
    "postgresql": (
        "DELETE FROM {t} WHERE ctid >= CAST(:first AS tid) AND ctid < CAST(:last AS tid)"
        " AND expires_at <= :now AND lease_until <= :now",
        "SELECT pg_relation_size('{t}') / current_setting('block_size')::bigint",
    ),
    "sqlite": (
        "DELETE FROM {t} WHERE rowid >= :first AND rowid < :last"
        " AND expires_at <= :now AND lease_until <= :now",
        "SELECT coalesce(max(rowid), 0) + 1 FROM {t}",
    ),
}
#: Every _SWEEP_EVERY claims, a process looks at the next range of the table (_SWEEP_PAGES pages,
#: or five times as many rowids), going round: the same cost whatever the size of the table.
_SWEEP_EVERY = 1000
_SWEEP_PAGES = 500


class ReceiverCommitError(RuntimeError):
    """A receiver committed ``db.session`` while the extension's transaction was open."""


@dataclass
class _Unit:
    """The open transaction of the callbacks a session has claimed."""

    session: Session
    #: The tokens of the callbacks claimed in it.
    tokens: list[str] = field(default_factory=list)
    #: Set while the extension itself commits or rolls back.
    own: bool = False
    #: Why the transaction can no longer commit the callback (a receiver rolled it back).
    broken: str = ""


_unit: ContextVar[_Unit | None] = ContextVar("voxcallbacks_unit", default=None)


def _before_commit(session: Session) -> None:
    unit = _unit.get()
    if unit is not None and unit.session is session and not unit.own:
        raise ReceiverCommitError(
            "a receiver committed db.session, with VOXCALLBACKS_STORE = 'sqlalchemy': the"
            " extension commits the receivers' writes with the callback's done marker; write"
            " through the session and leave the commit to it"
        )


def _after_soft_rollback(session: Session, previous: Any) -> None:
    unit = _unit.get()
    if unit is not None and unit.session is session and not unit.own:
        unit.broken = (
            "a receiver rolled back db.session, with VOXCALLBACKS_STORE = 'sqlalchemy': the"
            " callback's claim went with it; raise an exception instead, and the extension"
            " rolls back and keeps the callback as failed"
        )


_listening: set[type[Session]] = set()


class SQLAlchemyStore(Store):
    """The store in the table of an application's Flask-SQLAlchemy database (see the module).

    Its claims, completions, failures and queued callbacks go through ``db.session``; the
    handling runs each callback in its own transaction (``transactional``). Listings and
    maintenance use connections of their own.
    """

    transactional = True

    def __init__(self, db: SQLAlchemy, namespace: str = "") -> None:
        self.db = db
        self.namespace = namespace
        self.table_name = table_name(namespace)
        self._sql = {name: sa.text(text.format(t=self.table_name)) for name, text in _SQL.items()}
        self._claims = 0
        self._swept = 0
        #: The digest each claimed callback is pinned to, by token, until its transaction ends
        #: with its completion, or its failure is kept with it (the rollback took the claim).
        self._digests: dict[str, str] = {}
        session_class = db.session.session_factory.class_  # Flask-SQLAlchemy's sessions' class
        if session_class not in _listening:
            event.listen(session_class, "before_commit", _before_commit)
            event.listen(session_class, "after_soft_rollback", _after_soft_rollback)
            _listening.add(session_class)

    @property
    def dialect(self) -> str:
        return str(self.db.engine.dialect.name)

    def _session(self) -> Session:
        return self.db.session()

    def _end(self, unit: _Unit | None, commit: bool) -> None:
        """Commit or roll back the open transaction of this session's claims, as the
        extension's own."""
        session = self._session()
        if unit is not None:
            unit.own = True
        try:
            if commit:
                session.commit()
            else:
                session.rollback()
        finally:
            _unit.set(None)

    def _execute(self, name: str, parameters: Mapping[str, Any]) -> sa.Result[Any]:
        try:
            return self._session().execute(
                self._sql[name], {"no": False, "yes": True, **parameters}
            )
        except sa.exc.ProgrammingError as error:
            self._missing_table(error)
            raise
        except sa.exc.OperationalError as error:
            self._missing_table(error)
            raise

    def _missing_table(self, error: sa.exc.DBAPIError) -> None:
        """Raise TableMissingError when ``error`` says that a table does not exist (PostgreSQL's
        undefined_table, SQLite's "no such table"), not for another missing name."""
        undefined = getattr(error.orig, "sqlstate", None) == "42P01"
        if undefined or str(error.orig).startswith("no such table"):
            raise TableMissingError(
                f"the table {self.table_name} does not exist in the application's database:"
                f" create it with `{INIT_DB}` (or a migration, see the Stores page)"
            ) from None

    def claim_many(
        self,
        keys: Sequence[ToClaim],
        lease_seconds: int,
        ttl: int,
        take_queued: bool = False,
    ) -> list[Claim]:
        if not keys:
            return []
        session = self._session()
        unit = _unit.get()
        if unit is None or unit.session is not session:
            unit = _Unit(session)
            _unit.set(unit)
        now = self.now()
        if self.dialect == "postgresql" and not unit.tokens:
            session.execute(sa.text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
        claims = []
        try:
            for account_id, callback_id, digest in keys:
                claims.append(
                    self._claim(
                        unit, account_id, callback_id, digest, now, lease_seconds, ttl, take_queued
                    )
                )
        except sa.exc.OperationalError as error:
            self._undo(unit)
            if not _waited_too_long(error):
                raise
            # Another transaction holds a callback of these: it is in progress.
            return [Claim(BUSY)] * len(keys)
        except BaseException:
            self._undo(unit)
            raise
        if not unit.tokens:
            # Nothing claimed: no transaction to keep open.
            self._end(unit, commit=False)
        else:
            self._claims += sum(claim.status == CLAIMED for claim in claims)
        return claims

    def _undo(self, unit: _Unit) -> None:
        """Roll back a transaction whose claims are given up (none of them ran)."""
        for token in unit.tokens:
            self._digests.pop(token, None)
        self._end(unit, commit=False)

    def _claim(
        self,
        unit: _Unit,
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
        row = self._execute(
            "claim",
            {
                **key,
                "digest": digest,
                "expires_at": now + ttl,
                "token": token,
                "lease_until": now + lease_seconds,
                "now": now,
                "take_queued": take_queued,
            },
        ).first()
        if row is not None:
            unit.tokens.append(token)
            self._digests[token] = digest
            return Claim(CLAIMED, token, receiver_names(row[0]))
        record = self._execute("claimed", key).first()
        if record is None:
            return Claim(BUSY)
        pinned, done_until, queued = tuple(record)
        if pinned not in ("", digest):
            return Claim(MISMATCH)
        if done_until > 0:
            return Claim(DONE)
        return Claim(QUEUED if queued and not take_queued else BUSY)

    def complete_many(self, claimed: Sequence[ToComplete], ttl: int) -> None:
        """Mark the callbacks done and commit the transaction, receivers' writes included."""
        unit = _unit.get()
        if unit is not None and unit.broken:
            broken = unit.broken
            self._end(unit, commit=False)
            raise RuntimeError(broken)
        until = self.now() + ttl
        try:
            for account_id, callback_id, _token in claimed:
                self._execute(
                    "complete",
                    {"until": until, "account_id": account_id, "callback_id": callback_id},
                )
        except BaseException:
            # The handling keeps each of these as failed next (fail() finds its pin).
            self._end(unit, commit=False)
            raise
        self._end(unit, commit=True)
        for _account_id, _callback_id, token in claimed:
            self._digests.pop(token, None)
        if self._claims >= _SWEEP_EVERY:
            self._claims = 0
            self._sweep()

    def _sweep(self) -> None:
        """Forget the records whose time is over in the next range of the table, in a
        transaction of the session's own (on SQLite, another connection would wait for it)."""
        delete, end = (sa.text(text.format(t=self.table_name)) for text in _SWEEP[self.dialect])
        size = _SWEEP_PAGES if self.dialect == "postgresql" else 5 * _SWEEP_PAGES
        first, last = self._swept, self._swept + size
        session = self._session()
        if self.dialect == "postgresql":
            bounds: dict[str, Any] = {"first": f"({first},0)", "last": f"({last},0)"}
        else:
            bounds = {"first": first, "last": last}
        try:
            session.execute(delete, {"now": self.now(), **bounds})
            ends = session.execute(end).scalar_one()
        except BaseException:
            session.rollback()
            raise
        session.commit()
        self._swept = 0 if last >= ends else last

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
        """Roll back the callback's transaction (its receivers' writes and its claim), then keep
        it as failed in a transaction of its own."""
        unit = _unit.get()
        digest = self._digests.pop(token, "")
        self._end(unit, commit=False)
        now = self.now()
        try:
            self._execute(
                "fail",
                {
                    "account_id": account_id,
                    "callback_id": callback_id,
                    "digest": digest,
                    "type": str(item.get("type", "")),
                    "error": error,
                    "item": json.dumps(item),
                    "now": now,
                    "expires_at": now + retention,
                },
            )
        except BaseException:
            self._end(None, commit=False)
            raise
        self._end(None, commit=True)

    def queue_many(self, queued: Sequence[ToQueue], retention: int, trace: str = "") -> None:
        unit = _unit.get()
        now = self.now()
        for _account_id, _callback_id, token, _item in queued:
            self._digests.pop(token, None)
        try:
            for account_id, callback_id, _token, item in queued:
                self._execute(
                    "queue",
                    {
                        "type": str(item.get("type", "")),
                        "item": json.dumps(item),
                        "now": now,
                        "trace": trace,
                        "expires_at": now + retention,
                        "account_id": account_id,
                        "callback_id": callback_id,
                    },
                )
        except BaseException:
            self._end(unit, commit=False)
            raise
        self._end(unit, commit=True)

    # Listings and maintenance: connections of their own, outside any callback's transaction.

    def _run(self, name: str, parameters: Mapping[str, Any]) -> list[sa.Row[Any]]:
        try:
            with self.db.engine.begin() as connection:
                result = connection.execute(
                    self._sql[name], {"no": False, "yes": True, **parameters}
                )
                self._rowcount = result.rowcount
                return list(result) if result.returns_rows else []
        except (sa.exc.ProgrammingError, sa.exc.OperationalError) as error:
            self._missing_table(error)
            raise

    def unqueue_many(self, keys: Sequence[tuple[int, int]]) -> None:
        for account_id, callback_id in keys:
            self._run("unqueue", {"account_id": account_id, "callback_id": callback_id})

    def find_kept(self, account_id: int, callback_id: int) -> KeptCallback | None:
        parameters = {"now": self.now(), "account_id": account_id, "callback_id": callback_id}
        rows = self._run("find_kept", parameters)
        return kept_from_row(tuple(rows[0])) if rows else None

    def kept(self) -> list[KeptCallback]:
        return [kept_from_row(tuple(row)) for row in self._run("kept", {"now": self.now()})]

    def knows(self, account_id: int, callback_id: int) -> bool:
        parameters = {"account_id": account_id, "callback_id": callback_id, "now": self.now()}
        return bool(self._run("knows", parameters))

    def prune(self, older_than: float, accounts: Collection[int] | None = None) -> int:
        now = self.now()
        cutoff = now - older_than
        pruned = 0
        # Failures whose retention has ended are gone already: not counted.
        if accounts is None:
            self._run("prune", {"cutoff": cutoff, "now": now})
            pruned = self._rowcount
        else:
            for account_id in accounts:
                parameters = {"cutoff": cutoff, "now": now, "account_id": account_id}
                self._run("prune_account", parameters)
                pruned += self._rowcount
        self._run("delete_expired", {"now": now})
        return pruned

    def create_tables(self) -> list[str]:
        table = voxcallbacks_table(sa.MetaData(), self.namespace)
        table.create(self.db.engine, checkfirst=True)
        return [self.table_name]

    @property
    def identity(self) -> str:
        url = self.db.engine.url
        where = f"{url.get_backend_name()}://{url.host or ''}/{url.database}"
        return f"sqlalchemy:{where}#{self.table_name}"


def _waited_too_long(error: sa.exc.OperationalError) -> bool:
    """Whether the claim gave up waiting for another transaction (PostgreSQL's lock_timeout,
    SQLite's busy timeout)."""
    code = getattr(error.orig, "sqlstate", None)
    return code == "55P03" or "database is locked" in str(error.orig)
