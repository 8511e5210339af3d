"""The PostgreSQL store's own behaviour (the contract every store keeps is in test_store.py):
its table and the command that creates it, round trips, reconnection, forks, expiry sweeps."""

from __future__ import annotations

import contextlib
import os
import select
import time
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from helpers import BODY, DAY, ITEM, OTHER, Clock, lost_completion

from flask_voxcallbacks.store import (
    BUSY,
    CLAIMED,
    DONE,
    MISMATCH,
    QUEUED,
    StoreURLError,
    open_store,
)
from flask_voxcallbacks.store.postgres import (
    PostgresStore,
    TableMissingError,
    create_table_statements,
)


def rows(url: str, table: str = "voxcallbacks") -> int:
    with psycopg.connect(url) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def test_a_missing_table_is_an_error_naming_the_command(postgres_url: str) -> None:
    store = open_store(postgres_url, namespace="nowhere")  # opening does not touch the database
    with pytest.raises(TableMissingError) as info:
        store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    assert str(info.value) == (
        "the table voxcallbacks_nowhere does not exist in the database 'postgres': create it"
        " with `flask voxcallbacks init-db` (or a migration, see the Stores page)"
    )
    store.create_tables()
    store.create_tables()  # a second time changes nothing
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    with store._lock:  # type: ignore[attr-defined]
        prepared = store._ready().execute("SELECT name FROM pg_prepared_statements ORDER BY 1")  # type: ignore[attr-defined]
        assert prepared.fetchall() == [("vox_claim",), ("vox_complete",)], "once the table exists"
    # Dropped after the claim was prepared: the same error.
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("DROP TABLE voxcallbacks_nowhere")
    with pytest.raises(TableMissingError, match="voxcallbacks_nowhere does not exist"):
        store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
    store.close()


def test_the_table_statements_create_what_init_db_creates(postgres_server: Any) -> None:
    postgres_server.execute(
        "DROP TABLE IF EXISTS voxcallbacks_migrated",
        *create_table_statements("migrated"),
    )
    with psycopg.connect(postgres_server.url) as db:
        indexes = db.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'voxcallbacks_migrated'"
            " ORDER BY indexname"
        ).fetchall()
    assert [name for (name,) in indexes] == [
        "voxcallbacks_migrated_kept",
        "voxcallbacks_migrated_pkey",
    ]
    store = open_store(postgres_server.url, namespace="migrated")
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    store.close()


class Trace:
    """Counts the round trips of a connection: libpq writes each message it sends to a file;
    each request of the extended protocol ends with one Sync, each of the simple protocol is
    one Query."""

    def __init__(self, store: PostgresStore, path: Path) -> None:
        self.path = path
        self.file = path.open("w")
        with store._lock:
            self.pgconn = store._connection().pgconn
        self.pgconn.trace(self.file.fileno())

    def sent(self) -> list[str]:
        """The lines of the messages sent to the server."""
        self.pgconn.untrace()
        self.file.close()
        return [line for line in self.path.read_text().splitlines() if "\tF\t" in line]

    def round_trips(self) -> int:
        return sum(1 for line in self.sent() if "\tSync" in line or "\tQuery\t" in line)


def test_a_batch_costs_one_round_trip_to_claim_and_one_to_complete(
    postgres_url: str, tmp_path: Path
) -> None:
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    first = Trace(store, tmp_path / "first.txt")  # connects
    store.claim(9, 9, BODY, lease_seconds=60, ttl=DAY)
    assert first.round_trips() == 4, (
        "a new connection reads its planner settings, prepares the completion and the claim"
    )
    trace = Trace(store, tmp_path / "trace.txt")
    claims = store.claim_many([(1, i, BODY) for i in range(10)], lease_seconds=60, ttl=DAY)
    store.complete_many([(1, i, claim.token) for i, claim in enumerate(claims)], ttl=DAY)
    assert trace.round_trips() == 2
    assert {claim.status for claim in claims} == {CLAIMED}
    again = store.claim_many([(1, i, BODY) for i in range(10)], lease_seconds=60, ttl=DAY)
    assert {claim.status for claim in again} == {DONE}
    store.close()


def test_a_store_reconnects_after_the_server_restarts(
    postgres_url: str, postgres_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(postgres_url)
    first = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    postgres_server.restart("fast")
    # The completion goes out on the broken connection, unanswered: the next statement finds
    # the connection broken, logs the completion as lost, and runs on a new connection.
    store.complete(1, 1, first.token, ttl=DAY)
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    lost_completion(caplog.records)
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == BUSY, "still leased"
    store.complete(1, 1, first.token, ttl=DAY)
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == DONE
    # While the server is down, each call fails; once it is back, the store connects again.
    postgres_server._pg_ctl("stop")
    try:
        for _ in range(2):
            with pytest.raises(psycopg.OperationalError):
                store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY)
    finally:
        postgres_server._pg_ctl("start")
    assert store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    store.close()


def test_a_store_made_without_a_namespace_uses_the_plain_table(postgres_url: str) -> None:
    assert PostgresStore(postgres_url).table == "voxcallbacks"
    assert PostgresStore.from_url(postgres_url).table == "voxcallbacks"
    assert PostgresStore.from_url(postgres_url, "billing").table == "voxcallbacks_billing"


def test_a_completion_is_answered_with_the_next_statement(postgres_url: str) -> None:
    store = open_store(postgres_url)
    claims = store.claim_many([(1, i, BODY) for i in range(3)], lease_seconds=60, ttl=DAY)
    store.complete_many([(1, i, c.token) for i, c in enumerate(claims)], ttl=DAY)
    other = open_store(postgres_url)  # another process's view
    # The server runs it as soon as it arrives, before this process sends anything else.
    deadline = time.monotonic() + 5
    while other.claim(1, 0, BODY, lease_seconds=60, ttl=DAY).status != DONE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert [store.claim(1, i, BODY, lease_seconds=60, ttl=DAY).status for i in range(3)] == [
        DONE
    ] * 3
    store.close()
    other.close()


def test_a_forked_process_opens_its_own_connection(postgres_url: str) -> None:
    store = open_store(postgres_url)
    store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: claims, closes its store, exits without running the parent's code
        import gc

        status = store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status
        gc.collect()  # the parent's connection, unused here, is kept: freed, it would end it
        store.close()
        gc.collect()
        os.write(writer, str(status).encode())
        os._exit(0)
    os.close(writer)
    _, code = os.waitpid(pid, 0)
    assert os.read(reader, 100) == b"claimed" and code == 0
    # The parent's connection survived the child's use and close of its own.
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    assert store.claim(1, 1, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH
    pid = os.fork()
    if pid == 0:  # a child that closes the store it inherited without using it
        store.close()
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED, "left open"
    store.close()


def test_the_table_statements_name_the_plain_table_by_default() -> None:
    from flask_voxcallbacks.store.base import table_name
    from flask_voxcallbacks.store.postgres import create_table_statements

    assert (table_name(), table_name("billing")) == ("voxcallbacks", "voxcallbacks_billing")
    plain, billing = create_table_statements(), create_table_statements("billing")
    assert plain[0].startswith("CREATE TABLE IF NOT EXISTS voxcallbacks (")
    assert billing[0].startswith("CREATE TABLE IF NOT EXISTS voxcallbacks_billing (")
    assert not any("voxcallbacks_" in statement for statement in plain[:1])


def test_the_periodic_sweep_forgets_expired_keys_only(postgres_url: str) -> None:
    store = open_store(postgres_url)
    clock = Clock(store)
    store.claim(1, 1, BODY, lease_seconds=10 * DAY, ttl=1)
    done = store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 2, done.token, ttl=DAY)
    failed = store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 3, failed.token, "boom", ITEM, retention=DAY)
    short = store.claim_many([(2, i, BODY) for i in range(100, 600)], lease_seconds=1, ttl=1)
    store.complete_many([(2, 100 + i, c.token) for i, c in enumerate(short)], ttl=1)
    clock.advance(2)
    assert rows(postgres_url) == 503
    # Past the sweep that runs every 1,000 claims.
    store.claim_many([(3, i, BODY) for i in range(1000, 1600)], lease_seconds=60, ttl=DAY)
    assert rows(postgres_url) == 603, "the 500 expired keys were forgotten, nothing else"
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert [f.callback_id for f in store.kept()] == [3]
    store.close()


def test_prune_also_forgets_expired_keys(postgres_url: str) -> None:
    store = open_store(postgres_url)
    clock = Clock(store)
    store.claim(1, 1, BODY, lease_seconds=1, ttl=1)
    store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
    clock.advance(2)
    assert store.prune(older_than=DAY) == 0
    assert rows(postgres_url) == 1
    store.close()


def test_the_urls_it_accepts_and_the_identity_without_the_password(
    postgres_url: str, postgres_server: Any
) -> None:
    port = postgres_server.port
    store = open_store(f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{port}/postgres")
    assert store.identity == f"postgresql://127.0.0.1:{port}/postgres#voxcallbacks"
    assert open_store(postgres_url, namespace="billing").identity.endswith("#voxcallbacks_billing")
    short = open_store(f"postgres://postgres@127.0.0.1:{port}/postgres")  # libpq's other scheme
    assert short.identity == f"postgresql://127.0.0.1:{port}/postgres#voxcallbacks"
    assert short.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    short.close()
    with pytest.raises(StoreURLError) as info:
        open_store("postgresql://host/db?sslmode")
    assert str(info.value).startswith(
        "VOXCALLBACKS_STORE=postgresql://host/db?sslmode is not a valid PostgreSQL URL:"
    )


def test_check_warns_when_this_hosts_clock_and_the_servers_differ(postgres_url: str) -> None:
    store = open_store(postgres_url)
    assert store.warnings() == []
    clock = Clock(store)
    clock.advance(1.5)
    assert store.warnings() == [
        "this host's clock and the PostgreSQL server's differ by 1.5 s: leases and retention are"
        " measured with each host's clock, so keep the hosts in step (NTP)"
    ]
    clock.advance(-3)
    (warning,) = store.warnings()
    assert warning.startswith("this host's clock and the PostgreSQL server's differ by 1.5 s:")
    clock.advance(1.2)
    assert store.warnings() == [], "0.3 s apart: the time a request takes"
    store.close()


def test_the_connection_carries_its_settings_and_leaves_nothing_on_the_server(
    postgres_url: str,
) -> None:
    """Its settings come in the start-up packet, with the URL's own options: a pooler handing the
    server connection to others passes no setting on. Only the claim and the completion are
    prepared, and each claim and completion runs its prepared statement."""
    store = open_store(f"{postgres_url}?options=-c%20statement_timeout%3D4321")
    assert isinstance(store, PostgresStore)
    for callback_id in range(20):
        claim = store.claim(1, callback_id, BODY, lease_seconds=60, ttl=DAY)
        store.complete(1, callback_id, claim.token, ttl=DAY)
        store.find_kept(1, callback_id)  # the same statement, again and again
    with store._lock:
        db = store._ready()
        settings = db.execute(
            "SELECT current_setting('synchronous_commit'), current_setting('statement_timeout'),"
            " current_setting('application_name'),"
            " (SELECT array_agg(name ORDER BY name) FROM pg_prepared_statements),"
            " current_setting('enable_hashjoin'), current_setting('enable_mergejoin'),"
            " current_setting('enable_seqscan'),"
            " (SELECT array_agg(generic_plans + custom_plans ORDER BY name)"
            "  FROM pg_prepared_statements)"
        ).fetchone()
        parameters = db.info.get_parameters()
    assert settings == (
        *("off", "4321ms", "flask-voxcallbacks", ["vox_claim", "vox_complete"]),
        *("off", "off", "off", [20, 20]),
    )
    assert parameters["connect_timeout"] == "10"
    store.close()


def test_a_claim_prepares_its_statement_again_where_the_server_lacks_it(
    postgres_url: str,
) -> None:
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    with store._lock:
        store._ready().execute("DEALLOCATE vox_claim")  # as on another server connection
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    store.close()


def test_a_completion_prepares_its_statement_again_where_the_server_lacks_it(
    postgres_url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    first = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    with store._lock:
        store._ready().execute("DEALLOCATE vox_complete")  # as on another server connection
    trace = Trace(store, tmp_path / "trace.txt")
    store.complete(1, 1, first.token, ttl=DAY)
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert trace.round_trips() == 5, (
        "the completion, prepared again and run again; the claim, and the read of why it was not"
        " taken"
    )
    second = store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 2, second.token, ttl=DAY)
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    store.close()


def test_the_completion_is_planned_each_time_where_the_planner_settings_are_lost(
    postgres_url: str,
) -> None:
    """Behind a pooler that drops the start-up options, the server plans with its own settings:
    a completion planned once would then be a hash join over the whole table for as long as
    the plan lasts, so it is not prepared."""
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    with store._lock:
        store._connection().execute("SET enable_hashjoin = on")  # the server's default
    claim = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 1, claim.token, ttl=DAY)
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == DONE
    with store._lock:
        (prepared,) = store._ready().execute("SELECT name FROM pg_prepared_statements")
    assert prepared == ("vox_claim",)
    store.close()


def test_the_completion_planned_on_an_empty_table_finds_each_key_by_the_primary_key(
    postgres_url: str,
) -> None:
    """The plan made once, while the table is nearly empty, is kept as the table grows: it must
    still look each key up instead of reading the whole table."""
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    claim = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    with store._lock:
        # The plan the server settles on after a few completions, made now, on one row.
        store._ready().execute("SET plan_cache_mode = force_generic_plan")
    store.complete(1, 1, claim.token, ttl=DAY)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(
            "INSERT INTO voxcallbacks (account_id, callback_id, expires_at)"
            " SELECT 2, g, 1e12 FROM generate_series(1, 20000) AS g"
        )
    with store._lock:
        db = store._ready()
        plan = db.execute("EXPLAIN EXECUTE vox_complete('1e12', '{2}', '{7}', '{ab}')")
        lines = [line for (line,) in plan.fetchall()]
        db.execute("RESET plan_cache_mode")
    text = "\n".join(lines)
    assert "Index Scan using voxcallbacks_pkey" in text, text
    assert "Seq Scan" not in text and "Hash" not in text, text
    store.close()


def test_failures_and_queued_callbacks_wait_for_the_disk_claims_and_completions_do_not(
    postgres_url: str, tmp_path: Path
) -> None:
    """What a redelivery cannot bring back (a failure, a queued callback) is committed with
    synchronous_commit on; claims and completions, which a redelivery repeats, are not."""
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    store.claim(9, 9, BODY, lease_seconds=60, ttl=DAY)  # connect

    def durable(work: Any) -> bool:
        trace = Trace(store, tmp_path / "trace.txt")
        work()
        return any("synchronous_commit TO on" in line for line in trace.sent())

    claims = store.claim_many([(1, i, BODY) for i in range(3)], lease_seconds=60, ttl=DAY)
    assert not durable(lambda: store.complete(1, 0, claims[0].token, ttl=DAY))
    assert durable(lambda: store.fail(1, 1, claims[1].token, "down", ITEM, retention=DAY))
    assert durable(lambda: store.queue_many([(1, 2, claims[2].token, ITEM)], retention=DAY))
    assert not durable(lambda: store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY))
    assert not durable(lambda: store.find_kept(1, 1))
    store.close()


def test_a_key_the_claim_statement_did_not_take_is_answered_from_its_row(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why a key was not claimed is read in a second statement. Here the claim statement is made
    to take nothing, as when other processes take the keys between the two statements, and
    each answer follows the row as it is then."""
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    clock = Clock(store)
    store.claim(1, 1, BODY, lease_seconds=1, ttl=1)  # over once the clock moves
    leased = store.claim(1, 2, BODY, lease_seconds=DAY, ttl=DAY)
    done = store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 3, done.token, ttl=DAY)
    queued = store.claim(1, 4, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many([(1, 4, queued.token, ITEM)], retention=DAY)
    store.claim(1, 5, BODY, lease_seconds=DAY, ttl=DAY)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("UPDATE voxcallbacks SET digest = '' WHERE callback_id = 5")  # no pin
    clock.advance(2)
    store.claim(9, 9, BODY, lease_seconds=60, ttl=DAY)  # connects and prepares
    monkeypatch.setattr(store, "_run_claim", lambda parameters: {})
    keys = [(1, 404, BODY)] + [(1, i, BODY) for i in range(1, 6)] + [(1, 2, OTHER)]
    answers = [claim.status for claim in store.claim_many(keys, lease_seconds=60, ttl=DAY)]
    assert answers == [BUSY, BUSY, BUSY, DONE, QUEUED, BUSY, MISMATCH]
    assert all(claim.token == "" for claim in store.claim_many(keys, 60, DAY))
    taking = store.claim_many([(1, 4, BODY)], lease_seconds=60, ttl=DAY, take_queued=True)
    assert [claim.status for claim in taking] == [BUSY], "a job runs it"
    assert leased.status == CLAIMED
    store.close()


def test_the_sweep_runs_every_so_many_claims_over_the_next_pages(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every _SWEEP_EVERY claimed keys, the next _SWEEP_PAGES pages lose their rows whose time
    is over; at the end of the table the walk starts again from the first page."""
    from flask_voxcallbacks.store import postgres

    writer = open_store(postgres_url)  # another process's store writes the rows to forget
    over = writer.claim_many([(1, i, BODY) for i in range(60)], lease_seconds=1, ttl=1)
    assert {claim.status for claim in over} == {CLAIMED}
    writer.close()
    monkeypatch.setattr(postgres, "_SWEEP_EVERY", 10)
    monkeypatch.setattr(postgres, "_SWEEP_PAGES", 1)
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    Clock(store).advance(2)

    def in_page(page: int) -> int:
        with psycopg.connect(postgres_url) as db:
            found = db.execute(
                "SELECT count(*) FROM voxcallbacks WHERE ctid >= %s::tid AND ctid < %s::tid"
                " AND callback_id < 60",
                (f"({page},0)", f"({page + 1},0)"),
            ).fetchone()
        return int(found[0])  # type: ignore[index]

    first, second = in_page(0), in_page(1)
    assert first > 0 and second > 0, "the sixty rows fill more than one page"
    for i in range(9):
        store.claim(2, i, BODY, lease_seconds=60, ttl=DAY)
    assert rows(postgres_url) == 69, "nine claims: no sweep yet"
    store.claim(2, 9, BODY, lease_seconds=60, ttl=DAY)
    assert (in_page(0), in_page(1)) == (0, second), "the tenth: the first page is swept"
    assert rows(postgres_url) == 70 - first
    for i in range(9):
        store.claim(3, i, BODY, lease_seconds=60, ttl=DAY)
    assert in_page(1) == second, "nine more claims: no sweep yet"
    store.claim(3, 9, BODY, lease_seconds=60, ttl=DAY)
    assert in_page(1) == 0, "the next ten: the next page"
    assert rows(postgres_url) == 80 - first - second
    swept = [store._swept]  # type: ignore[attr-defined]
    for round_ in range(4, 40):
        store.claim_many([(round_, i, BODY) for i in range(10)], lease_seconds=60, ttl=DAY)
        swept.append(store._swept)  # type: ignore[attr-defined]
        if not swept[-1]:
            break
    assert swept == [*range(2, len(swept) + 1), 0], "page after page, then the first"
    with psycopg.connect(postgres_url) as db:
        size = db.execute(
            "SELECT pg_relation_size('voxcallbacks') / current_setting('block_size')::bigint"
        ).fetchone()
    assert swept[-2] + 1 == size[0], "the walk starts again once it has read the last page"  # type: ignore[index]
    store.close()


def test_statements_larger_than_the_sockets_buffer_are_sent_whole(postgres_url: str) -> None:
    """A batch of 100,000 callbacks makes statements of several megabytes: libpq sends them in
    pieces, as the socket takes them (its send buffer made small here, so that it is full many
    times over)."""
    import socket

    store = open_store(postgres_url)
    store.claim(5, 1, BODY, lease_seconds=60, ttl=DAY)  # connects
    connection = socket.fromfd(store._db.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM)  # type: ignore[attr-defined]
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    connection.close()  # a duplicate: the store's own stays open
    keys = [(5, 10**12 + i, "ab" * 32) for i in range(100_000)]
    claims = store.claim_many(keys, lease_seconds=60, ttl=DAY)
    assert {claim.status for claim in claims} == {CLAIMED} and len(claims) == len(keys)
    store.complete_many([(a, c, claim.token) for (a, c, _), claim in zip(keys, claims)], DAY)
    again = store.claim_many(keys, lease_seconds=60, ttl=DAY)
    assert {claim.status for claim in again} == {DONE}
    store.close()


def test_connection_url_gives_libpq_a_url_it_reads() -> None:
    from flask_voxcallbacks.store.postgres import connection_url

    assert connection_url("postgresql+psycopg://u@h:5/db") == "postgresql://u@h:5/db"
    assert connection_url("postgres://h/db") == "postgresql://h/db"
    assert connection_url("postgresql://h/db?options=-c%20a%3Db://c") == (
        "postgresql://h/db?options=-c%20a%3Db://c"
    )
    assert connection_url("host=h dbname=db") == "host=h dbname=db", "a keyword string as it is"
    assert connection_url("sqlite:///x.db") == "sqlite:///x.db"


def test_without_psycopg_the_url_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from flask_voxcallbacks.store import StoreURLError

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as without the [postgres] extra
    monkeypatch.delitem(sys.modules, "flask_voxcallbacks.store.postgres", raising=False)
    with pytest.raises(StoreURLError) as raised:
        open_store("postgresql://vox:s3cret@db.example/calls")
    assert str(raised.value) == (
        "VOXCALLBACKS_STORE=postgresql://***@db.example/calls needs psycopg 3:"
        " pip install 'flask-voxcallbacks[postgres]'"
    )


def test_closing_reads_the_answer_of_the_last_completions_and_closes_the_connection(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A completion is sent without waiting for its answer: closing the store reads it, so that
    a failed one is logged, and then closes the connection."""
    store = open_store(postgres_url, namespace="billing")
    assert isinstance(store, PostgresStore)
    claim = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("DROP TABLE voxcallbacks_billing")  # the completion will fail
    store.complete(1, 1, claim.token, ttl=DAY)
    connection = store._db
    assert connection is not None and not connection.closed
    store.close()
    assert connection.closed
    reason = lost_completion(caplog.records)
    assert reason.startswith("ERROR:")
    assert 'relation "voxcallbacks_billing" does not exist' in reason


@contextlib.contextmanager
def refusing_store(postgres_url: str, raise_arguments: str) -> Iterator[PostgresStore]:
    """A store whose table has a trigger of the user's that refuses every update (a completion)
    with ``RAISE EXCEPTION raise_arguments``. Closed when the block ends (which reads the answer
    of its last completion), then the table and the trigger are dropped."""
    store = open_store(postgres_url, namespace="refusing")
    assert isinstance(store, PostgresStore)
    store.create_tables()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(
            "CREATE FUNCTION vox_refuse() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN RAISE EXCEPTION {raise_arguments}; END $$"
        )
        db.execute(
            "CREATE TRIGGER vox_refuse BEFORE UPDATE ON voxcallbacks_refusing"
            " FOR EACH ROW EXECUTE FUNCTION vox_refuse()"
        )
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("DROP TABLE voxcallbacks_refusing")
            db.execute("DROP FUNCTION vox_refuse()")


def test_a_failed_completions_message_is_logged_cut_to_300_characters(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A trigger of the user's that refuses the completion with a long message: the log line
    carries its first 300 characters, on one line."""
    with refusing_store(postgres_url, "'refused: %', repeat('x', 400)") as store:
        claim = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
        store.complete(1, 1, claim.token, ttl=DAY)
    start = "ERROR:  refused: "
    assert lost_completion(caplog.records) == start + "x" * (300 - len(start))


def test_a_completion_prepared_again_and_refused_is_logged_with_its_reason(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server lost the prepared completion, and the completion run again is refused (a
    trigger of the user's): the log line carries the second refusal."""
    with refusing_store(postgres_url, "'refused by a trigger'") as store:
        claim = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
        with store._lock:
            store._ready().execute("DEALLOCATE vox_complete")  # as on another server connection
        store.complete(1, 1, claim.token, ttl=DAY)
    assert lost_completion(caplog.records).startswith("ERROR:  refused by a trigger")


def test_a_completion_whose_connection_breaks_while_it_is_prepared_again_is_logged(
    postgres_url: str, postgres_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The server lost the prepared completion, then the connection: the completion cannot be
    run again, the log line says why, and the next claim runs on a new connection."""
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    claim = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    with store._lock:
        db = store._ready()
        db.execute("DEALLOCATE vox_complete")  # as on another server connection
        backend = db.info.backend_pid
    store.complete(1, 1, claim.token, ttl=DAY)
    pgconn = store._db.pgconn  # type: ignore[union-attr]
    while pgconn.is_busy():  # the server's answer: no such statement
        select.select([pgconn.socket], [], [], 5)
        pgconn.consume_input()
    postgres_server.execute(f"SELECT pg_terminate_backend({backend})")
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    assert store._db is not None and store._db.info.backend_pid != backend
    assert "terminat" in lost_completion(caplog.records)
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == BUSY, "still claimed"
    store.close()
