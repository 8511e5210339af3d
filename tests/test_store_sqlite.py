"""What only the SQLite store does: its file, its connection, its writers, its sweep, its table."""

from __future__ import annotations

import glob
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from helpers import BODY, DAY, ITEM, Clock, stored_keys

from flask_voxcallbacks.store import BUSY, CLAIMED, DONE, open_store


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    mode = store._connection().execute("PRAGMA journal_mode").fetchone()[0]  # type: ignore[attr-defined]
    assert mode == "wal"


def test_sqlite_store_files_are_private(tmp_path: Path) -> None:
    import os
    import stat

    old_umask = os.umask(0o022)
    try:
        store = open_store(f"sqlite:///{tmp_path}/a/b/vox.db")
        store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    finally:
        os.umask(old_umask)
    for name in ("a", "a/b"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o700, name
    for name in ("vox.db", "vox.db-wal", "vox.db-shm"):
        assert stat.S_IMODE((tmp_path / "a/b" / name).stat().st_mode) == 0o600, name
    assert store.warnings() == []
    store.close()


def test_sqlite_store_leaves_existing_files_and_directories_alone(tmp_path: Path) -> None:
    import stat

    (tmp_path / "shared").mkdir(mode=0o755)
    (tmp_path / "shared").chmod(0o755)
    open_store(f"sqlite:///{tmp_path}/shared/vox.db").close()
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o755


def test_sqlite_settings_and_close(tmp_path: Path) -> None:
    import sqlite3

    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    db = store._connection()  # type: ignore[attr-defined]
    assert store._connection() is db, "one connection per process, reused"  # type: ignore[attr-defined]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1, "NORMAL"
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        db.execute("SELECT 1")
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED, "reopened"
    store.close()


def test_a_forked_process_opens_its_own_sqlite_connection(tmp_path: Path) -> None:
    import os

    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    parent_db = store._connection()  # type: ignore[attr-defined]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            own = store._connection() is not parent_db  # type: ignore[attr-defined]
            claimed = store.claim(1, 77, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
            os.write(write, b"ok" if own and claimed else b"shared")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert store._connection() is parent_db, "the parent keeps its connection"  # type: ignore[attr-defined]
    assert store.claim(1, 77, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    store.close()


@pytest.mark.parametrize("one_statement", [True, False], ids=["one-statement", "per-key"])
def test_an_sqlite_batch_that_fails_leaves_no_transaction_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_statement: bool
) -> None:
    from flask_voxcallbacks.store import sqlite

    monkeypatch.setattr(sqlite, "_ONE_STATEMENT", one_statement)
    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    # The second key fails (its digest is NOT NULL) after the first is written.
    with pytest.raises(sqlite3.IntegrityError):
        store.claim_many([(1, 1, BODY), (1, 2, None)], 60, DAY)  # type: ignore[list-item]
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED, "rolled back"
    with pytest.raises(Exception):  # noqa: B017
        store.complete_many([(1, 1, ["not", "text"])], DAY)  # type: ignore[list-item]
    claim = store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 3, claim.token, ttl=DAY)
    assert store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY).status == DONE
    store.close()


def test_an_sqlite_queue_batch_that_fails_leaves_no_transaction_open(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    first = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    second = store.claim(1, 6, BODY, lease_seconds=60, ttl=DAY)
    with pytest.raises(TypeError):
        store.queue_many(
            [(1, 5, first.token, ITEM), (1, 6, second.token, {"type": {1, 2}, "x": {3}})], DAY
        )
    assert store.kept() == []
    store.queue_many([(1, 5, first.token, ITEM)], retention=DAY)
    assert [r.callback_id for r in store.kept()] == [5]
    store.close()


def test_sqlite_writers_take_turns_through_the_lock_file(tmp_path: Path) -> None:
    import fcntl
    import os

    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    other = os.open(tmp_path / "vox.db-lock", os.O_RDWR)
    assert stat.S_IMODE(os.fstat(other).st_mode) == 0o600
    fcntl.flock(other, fcntl.LOCK_EX)  # another process writing
    claimed = threading.Event()
    writer = threading.Thread(
        target=lambda: store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY) and claimed.set()
    )
    writer.start()
    assert not claimed.wait(0.5), "the claim waits for the writer before it"
    fcntl.flock(other, fcntl.LOCK_UN)
    assert claimed.wait(5), "and goes on as soon as the lock is released"
    writer.join()
    # A failed transaction releases the lock too.
    with pytest.raises(TypeError):
        store.fail(1, 5, "token", "boom", {"type": {1}}, retention=DAY)
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(other, fcntl.LOCK_UN)
    os.close(other)
    store.close()


def test_the_sqlite_sweep_walks_the_whole_table_a_slice_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_voxcallbacks.store import sqlite

    monkeypatch.setattr(sqlite, "_SWEEP_EVERY", 10)
    monkeypatch.setattr(sqlite, "_SWEEP_ROWS", 50)
    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    clock = Clock(store)
    # Rows 1-200 live for a second, rows 201-300 for a day. The sweeps of these two calls look
    # at rows 1-50 and 51-100 while all of them are alive.
    store.claim_many([(1, i, BODY) for i in range(200)], lease_seconds=1, ttl=1)
    store.claim_many([(2, i, BODY) for i in range(100)], lease_seconds=60, ttl=DAY)
    clock.advance(2)
    sizes = []
    for i in range(9):  # each call adds 10 rows and sweeps the next 50
        store.claim_many([(3, 10 * i + j, BODY) for j in range(10)], lease_seconds=60, ttl=DAY)
        sizes.append(stored_keys(store))
    # Rows 101-150 and 151-200 go, 201-300 and 301-350 stay, the end of the table is reached
    # (351-360), then the walk starts again: rows 1-50 and 51-100 go.
    assert sizes == [260, 220, 230, 240, 250, 260, 220, 180, 190]
    assert stored_keys(store) == 190, "every expired row is gone, every live one is kept"
    assert store.claim(2, 50, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    store.close()


def test_a_sqlite_table_of_another_layout_is_a_clear_error(tmp_path: Path) -> None:
    import sqlite3

    from flask_voxcallbacks.store import StoreURLError

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE voxcallbacks (account_id INTEGER, callback_id INTEGER, token TEXT,"
        " PRIMARY KEY (account_id, callback_id))"
    )
    db.close()
    with pytest.raises(StoreURLError) as refused:
        open_store(f"sqlite:///{path}")
    assert str(refused.value) == (
        f"VOXCALLBACKS_STORE: cannot use the SQLite file {path} (the table voxcallbacks lacks the"
        " columns attempts, digest, done_until, error, expires_at, failed_at, item, lease_until,"
        " queued, receivers, trace, type (written by a development version); move the file aside"
        " to start a new one)"
    )


def test_a_file_that_is_not_a_sqlite_database_is_named_as_such(tmp_path: Path) -> None:
    from flask_voxcallbacks.store import StoreURLError

    path = tmp_path / "notes.db"
    path.write_text("these are notes, not a database" * 100)
    with pytest.raises(StoreURLError) as refused:
        open_store(f"sqlite:///{path}")
    assert str(refused.value) == (
        f"VOXCALLBACKS_STORE: cannot use the SQLite file {path} (file is not a database)"
    )
    open_files = [os.readlink(fd) for fd in glob.glob("/proc/self/fd/*") if os.path.islink(fd)]
    assert str(path) not in open_files, "the connection it opened is closed"


@pytest.mark.parametrize(
    ("one_statement", "returning"),
    [(True, True), (False, True), (False, False)],
    ids=["one-statement", "returning", "select"],
)
def test_sqlite_claims_return_the_receivers_that_succeeded_with_and_without_returning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_statement: bool, returning: bool
) -> None:
    from flask_voxcallbacks.store import sqlite

    # SQLite before 3.38 claims each key with a statement of its own; before 3.35 it has no
    # RETURNING either, and the store reads the receivers with a SELECT instead.
    monkeypatch.setattr(sqlite, "_ONE_STATEMENT", one_statement)
    monkeypatch.setattr(sqlite, "_RETURNING", returning)
    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    first = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert first.succeeded == ()
    store.fail(1, 5, first.token, "crm: down", ITEM, retention=DAY, succeeded=["min_balance:a.b"])
    again = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert (again.status, again.succeeded) == (CLAIMED, ("min_balance:a.b",))
    store.complete(1, 5, again.token, ttl=DAY)
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE
    store.close()


def test_sqlite_tables_are_named_after_the_namespace_and_wait_for_locks(tmp_path: Path) -> None:
    for namespace, table in [("", "voxcallbacks"), ("billing", "voxcallbacks_billing")]:
        store = open_store(f"sqlite:///{tmp_path}/vox.db", namespace=namespace)
        store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
        db = store._connection()  # type: ignore[attr-defined]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert table in tables
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000, "30 s for a lock"
        assert db.isolation_level is None, "transactions are the store's own (BEGIN IMMEDIATE)"
        store.close()


def test_the_sqlite_sweep_counts_claims_across_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_voxcallbacks.store import sqlite

    monkeypatch.setattr(sqlite, "_SWEEP_EVERY", 10)
    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    clock = Clock(store)
    store.claim_many([(1, i, BODY) for i in range(5)], lease_seconds=1, ttl=1)
    clock.advance(2)
    for i in range(4):  # 9 claims so far: no sweep
        store.claim(2, i, BODY, lease_seconds=60, ttl=DAY)
    assert stored_keys(store) == 9
    store.claim(2, 4, BODY, lease_seconds=60, ttl=DAY)  # the tenth sweeps
    assert stored_keys(store) == 5
    store.claim_many([(3, i, BODY) for i in range(4)], lease_seconds=1, ttl=1)
    clock.advance(2)
    for i in range(5, 10):  # 9 claims since the sweep: the four over are still there
        store.claim(2, i, BODY, lease_seconds=60, ttl=DAY)
    assert stored_keys(store) == 14, "the count starts again from 0 after a sweep"
    store.claim(2, 10, BODY, lease_seconds=60, ttl=DAY)  # the tenth since sweeps
    assert stored_keys(store) == 11
    store.close()
