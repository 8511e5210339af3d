"""The store contract, against each backend: memory, a real SQLite file, a real Redis server."""

from __future__ import annotations

import gc
import multiprocessing
import stat
import threading
import time
from pathlib import Path

import pytest

from flask_voxcallbacks.store import BUSY, CLAIMED, DONE, MISMATCH, QUEUED, open_store
from flask_voxcallbacks.store.base import Store

ITEM = {"callback_id": 5, "account_id": 1, "type": "min_balance"}
BODY = "digest-of-the-first-body"
OTHER = "digest-of-another-body"
DAY = 86400


@pytest.fixture
def store(store_url: str):
    store = open_store(store_url)
    yield store
    store.close()


class Clock:
    """Moves a store's time forward: its clock for memory and SQLite, real time for Redis,
    whose expiries the server keeps (with a margin over the 1 s TTLs used with it)."""

    def __init__(self, store: Store) -> None:
        self.offset = 0.0
        self.real = type(store).__name__ == "RedisStore"
        if not self.real:
            store.now = lambda: time.time() + self.offset  # type: ignore[method-assign]

    def advance(self, seconds: float) -> None:
        if self.real:
            time.sleep(seconds + 0.5)
        else:
            self.offset += seconds


@pytest.fixture
def clock(store: Store) -> Clock:
    return Clock(store)


def test_claim_then_complete_then_duplicate(store: Store) -> None:
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert claim.status == CLAIMED and claim.token
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    store.complete(1, 5, claim.token, ttl=60)
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert store.claim(2, 5, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    assert store.claim(1, 6, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED


def test_failure_is_kept_and_released_until_success(store: Store) -> None:
    first = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 5, first.token, "ValueError: boom", ITEM, retention=DAY)
    (record,) = store.kept()
    assert (record.account_id, record.callback_id, record.type) == (1, 5, "min_balance")
    assert record.error == "ValueError: boom" and record.attempts == 1
    assert record.item == ITEM
    second = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert second.status == CLAIMED
    store.fail(1, 5, second.token, "ValueError: again", ITEM, retention=DAY)
    assert store.kept()[0].attempts == 2
    third = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert len(store.kept()) == 1, "a failure stays recorded while it is being retried"
    store.complete(1, 5, third.token, ttl=60)
    assert store.kept() == []
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE


def test_expired_lease_can_be_taken_over(store: Store, clock: Clock) -> None:
    dead = store.claim(1, 5, BODY, lease_seconds=2, ttl=DAY)
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    clock.advance(2)
    takeover = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert takeover.status == CLAIMED
    assert takeover.token != dead.token
    store.fail(1, 5, dead.token, "late failure of the dead worker", ITEM, retention=DAY)
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == BUSY, (
        "a stale token releases nothing"
    )


def test_a_worker_whose_lease_was_taken_over_completes_late(store: Store, clock: Clock) -> None:
    slow = store.claim(1, 5, BODY, lease_seconds=1, ttl=DAY)
    clock.advance(1)
    takeover = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert takeover.status == CLAIMED
    store.complete(1, 5, slow.token, ttl=DAY)
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE
    store.complete(1, 5, takeover.token, ttl=DAY)
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH, (
        "the second completion keeps the pin"
    )


def test_memory_keeps_a_late_completion_until_the_lease_taken_over_ends() -> None:
    store = open_store("memory://")
    clock = Clock(store)
    slow = store.claim(1, 5, BODY, lease_seconds=1, ttl=DAY)
    clock.advance(1)
    store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 5, slow.token, ttl=10)
    clock.advance(30)
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH, (
        "the key outlives a done marker shorter than the lease another worker holds"
    )
    clock.advance(31)
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == CLAIMED


def test_done_markers_expire_after_their_ttl(store: Store, clock: Clock) -> None:
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 5, claim.token, ttl=2)
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE
    clock.advance(2)
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED


def test_prune_removes_old_failures_only(store: Store, clock: Clock) -> None:
    for callback_id in (5, 6):
        claim = store.claim(1, callback_id, BODY, lease_seconds=60, ttl=DAY)
        store.fail(
            1, callback_id, claim.token, "boom", {**ITEM, "callback_id": callback_id}, retention=DAY
        )
    assert store.prune(older_than=3600) == 0
    assert len(store.kept()) == 2
    clock.advance(1)
    assert store.prune(older_than=0.5) == 2
    assert store.kept() == []


def test_concurrent_claims_in_threads_have_one_winner(store: Store) -> None:
    results: list[str] = []
    barrier = threading.Barrier(16)

    def claim() -> None:
        barrier.wait()
        results.append(store.claim(9, 9, BODY, lease_seconds=60, ttl=DAY).status)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [BUSY] * 15 + [CLAIMED]


def _claim_in_process(url: str, start: multiprocessing.synchronize.Event, out: object) -> None:
    store = open_store(url)
    start.wait()
    won = [
        cid
        for cid in range(200)
        if store.claim(3, cid, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    ]
    out.put(won)  # type: ignore[attr-defined]


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_concurrent_claims_in_processes_have_one_winner(
    backend: str, tmp_path: Path, request
) -> None:
    url = (
        f"sqlite:///{tmp_path}/vox.db"
        if backend == "sqlite"
        else request.getfixturevalue("redis_url")
    )
    open_store(url).close()
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    processes = [
        context.Process(target=_claim_in_process, args=(url, start, out)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    start.set()
    won = [out.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    claimed = sorted(cid for batch in won for cid in batch)
    assert claimed == list(range(200)), "each key claimed exactly once across processes"


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_failures_and_done_markers_survive_a_restart(backend: str, tmp_path: Path, request) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/nested/dir/vox.db"
        restart = lambda: None  # noqa: E731 - the file is the whole server
    else:
        url = request.getfixturevalue("redis_url")
        server = request.getfixturevalue("redis_server")
        restart = lambda: (server.stop(), server.start())  # noqa: E731
    store = open_store(url)
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 5, claim.token, "boom", ITEM, retention=DAY)
    done = store.claim(1, 6, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 6, done.token, ttl=3600)
    waiting = store.claim(1, 7, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many([(1, 7, waiting.token, ITEM)], retention=DAY)
    store.close()
    restart()
    reopened = open_store(url)
    assert [(f.callback_id, f.queued) for f in reopened.kept()] == [(5, False), (7, True)]
    assert reopened.claim(1, 6, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert reopened.claim(1, 7, BODY, lease_seconds=60, ttl=DAY).status == QUEUED
    job = reopened.claim_many([(1, 7, BODY)], 60, DAY, take_queued=True)[0]
    assert job.status == CLAIMED and reopened.find_kept(1, 7).item == ITEM  # type: ignore[union-attr]
    reopened.close()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    mode = store._connection().execute("PRAGMA journal_mode").fetchone()[0]  # type: ignore[attr-defined]
    assert mode == "wal"


def test_unknown_store_scheme_is_named() -> None:
    with pytest.raises(ValueError) as info:
        open_store("mongodb://localhost")
    assert str(info.value) == (
        "VOXCALLBACKS_STORE has an unknown scheme 'mongodb'; "
        "use memory://, sqlite:///path/to/file.db or redis://host:port/db."
    )


def test_a_key_is_pinned_to_the_body_of_its_first_claim(store: Store) -> None:
    first = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH, "while leased"
    store.fail(1, 5, first.token, "boom", ITEM, retention=DAY)
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH, "once failed"
    (record,) = store.kept()
    assert record.item == ITEM and record.attempts == 1, "a mismatch changes nothing"
    again = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert again.status == CLAIMED
    store.complete(1, 5, again.token, ttl=DAY)
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH, "once done"
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert store.claim(1, 6, OTHER, lease_seconds=60, ttl=DAY).status == CLAIMED, "per key"


def test_an_abandoned_claim_keeps_its_pin_after_the_lease(store: Store, clock: Clock) -> None:
    store.claim(1, 5, BODY, lease_seconds=1, ttl=DAY)
    clock.advance(1)
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED


def test_the_pin_ends_with_the_done_marker(store: Store, clock: Clock) -> None:
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 5, claim.token, ttl=1)
    clock.advance(1)
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == CLAIMED


def test_failures_expire_after_their_retention(store: Store, clock: Clock) -> None:
    brief = store.claim(1, 6, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 6, brief.token, "boom", {**ITEM, "callback_id": 6}, retention=1)
    kept = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 5, kept.token, "boom", ITEM, retention=DAY)
    clock.advance(1)
    assert [f.callback_id for f in store.kept()] == [5]
    assert store.claim(1, 6, OTHER, lease_seconds=60, ttl=DAY).status == CLAIMED, "record gone"


def test_a_late_failure_does_not_undo_a_completion(store: Store, clock: Clock) -> None:
    dead = store.claim(1, 5, BODY, lease_seconds=1, ttl=DAY)
    clock.advance(1)
    takeover = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 5, takeover.token, ttl=DAY)
    store.fail(1, 5, dead.token, "the first worker fails at last", ITEM, retention=DAY)
    assert store.kept() == []
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE


def test_prune_keeps_the_pin(store: Store, clock: Clock) -> None:
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 5, claim.token, "boom", ITEM, retention=DAY)
    clock.advance(1)
    assert store.prune(older_than=0.5) == 1
    assert store.kept() == []
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED


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


def stored_keys(store: Store) -> int:
    """How many keys a memory or SQLite store holds."""
    if hasattr(store, "_open"):
        return len(store._open) + len(store._done)
    db = store._connection()  # type: ignore[attr-defined]
    return int(db.execute("SELECT COUNT(*) FROM voxcallbacks").fetchone()[0])


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_periodic_sweep_forgets_expired_keys_only(backend: str, tmp_path: Path) -> None:
    store = open_store("memory://" if backend == "memory" else f"sqlite:///{tmp_path}/vox.db")
    clock = Clock(store)
    store.claim(1, 1, BODY, lease_seconds=10 * DAY, ttl=1)
    done = store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 2, done.token, ttl=DAY)
    failed = store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 3, failed.token, "boom", ITEM, retention=DAY)
    for callback_id in range(100, 600):
        short = store.claim(2, callback_id, BODY, lease_seconds=1, ttl=1)
        store.complete(2, callback_id, short.token, ttl=1)
    clock.advance(2)
    assert stored_keys(store) == 503
    for callback_id in range(1000, 1600):  # past the sweep that runs every 1,000 claims
        assert store.claim(3, callback_id, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    assert stored_keys(store) == 603, "the 500 expired keys were forgotten, nothing else"
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    assert store.claim(1, 1, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert [f.callback_id for f in store.kept()] == [3]
    store.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_prune_also_forgets_expired_keys(backend: str, tmp_path: Path) -> None:
    store = open_store("memory://" if backend == "memory" else f"sqlite:///{tmp_path}/vox.db")
    clock = Clock(store)
    for callback_id in range(10):
        claim = store.claim(1, callback_id, BODY, lease_seconds=60, ttl=DAY)
        store.complete(1, callback_id, claim.token, ttl=1)
    kept = store.claim(1, 99, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 99, kept.token, ttl=DAY)
    clock.advance(2)
    assert store.prune(older_than=DAY) == 0
    assert stored_keys(store) == 1
    store.close()


def test_failures_are_listed_oldest_first(store: Store, clock: Clock) -> None:
    for callback_id in (7, 5, 9, 6):
        claim = store.claim(1, callback_id, BODY, lease_seconds=60, ttl=DAY)
        store.fail(1, callback_id, claim.token, "boom", {**ITEM, "callback_id": callback_id}, DAY)
        clock.advance(0.01 if not clock.real else 0)
    assert [f.callback_id for f in store.kept()] == [7, 5, 9, 6]


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


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://localhost:6380/0", "unix:///run/redis.sock"]
)
def test_every_redis_scheme_opens_a_redis_store(url: str) -> None:
    store = open_store(url)
    assert type(store).__name__ == "RedisStore"
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


def test_claim_many_answers_each_key_in_order_in_one_call(store: Store) -> None:
    done = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 1, done.token, ttl=DAY)
    store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
    keys = [
        (1, 1, BODY),
        (1, 2, BODY),
        (1, 2, OTHER),
        (1, 3, BODY),
        (1, 3, BODY),
        (1, 4, OTHER),
        (1, 4, BODY),
    ]
    statuses = [claim.status for claim in store.claim_many(keys, lease_seconds=60, ttl=DAY)]
    assert statuses == [DONE, BUSY, MISMATCH, CLAIMED, BUSY, CLAIMED, MISMATCH]
    assert store.claim_many([], lease_seconds=60, ttl=DAY) == []


def test_complete_many_marks_each_callback_done(store: Store) -> None:
    claims = store.claim_many([(1, i, BODY) for i in range(5)], lease_seconds=60, ttl=DAY)
    failed = claims[2]
    store.fail(1, 2, failed.token, "boom", ITEM, retention=DAY)
    retry = store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
    store.complete_many(
        [(1, i, claim.token) for i, claim in enumerate(claims) if i != 2] + [(1, 2, retry.token)],
        ttl=DAY,
    )
    store.complete_many([], ttl=DAY)
    assert [c.status for c in store.claim_many([(1, i, BODY) for i in range(5)], 60, DAY)] == [
        DONE
    ] * 5
    assert store.kept() == []


def test_a_batch_costs_redis_two_round_trips(redis_url: str) -> None:
    import redis
    from conftest import ENDPOINT, make_app

    from flask_voxcallbacks.testing import make_batch, make_callback

    app = make_app(VOXCALLBACKS_STORE=redis_url)
    client = redis.Redis.from_url(redis_url)

    def evalsha_calls() -> int:
        stats = client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)) + int(
            stats.get("cmdstat_eval", {}).get("calls", 0)
        )

    items = [make_callback("min_balance") for _ in range(10)]
    app.test_client().post(ENDPOINT, json=make_batch(items[0]))  # loads the scripts
    before = evalsha_calls()
    response = app.test_client().post(ENDPOINT, json=make_batch(*items[1:]))
    assert response.get_json()["accepted"] == 9
    assert evalsha_calls() - before == 2, "one call claims the batch, one completes it"
    client.close()


def test_claim_tokens_are_unique_within_and_across_processes() -> None:
    import os

    from flask_voxcallbacks.store.base import Store

    tokens = {Store.new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, Store.new_token().encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    mine = Store.new_token()
    assert child not in tokens and child != mine
    assert child[:16] != mine[:16], "a forked process draws its own prefix"


def test_abandoned_claims_and_expired_failures_are_forgotten_too(tmp_path: Path) -> None:
    store = open_store("memory://")
    clock = Clock(store)
    store.claim(1, 1, BODY, lease_seconds=1, ttl=1)  # never completed
    failed = store.claim(1, 2, BODY, lease_seconds=60, ttl=1)
    store.fail(1, 2, failed.token, "boom", ITEM, retention=3)
    clock.advance(2)
    store.claim(9, 9, BODY, lease_seconds=60, ttl=DAY)
    assert stored_keys(store) == 2, "the abandoned claim is gone, the failure kept"
    clock.advance(2)
    store.claim(9, 10, BODY, lease_seconds=60, ttl=DAY)
    assert stored_keys(store) == 2, "the failure is gone once its retention ended"
    assert store.kept() == []


def test_complete_many_skips_unknown_keys(store: Store) -> None:
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.complete_many([(1, 404, "no-such-token"), (1, 5, claim.token)], ttl=DAY)
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE
    # The unknown key was not marked done: its first claim takes it.
    assert store.claim(1, 404, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED


def test_an_sqlite_batch_that_fails_leaves_no_transaction_open(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/vox.db")
    with pytest.raises(Exception):  # noqa: B017 - whichever error the driver raises
        store.claim_many([(1, 1, BODY), (1, 2, ["not", "text"])], 60, DAY)  # type: ignore[list-item]
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED, "rolled back"
    with pytest.raises(Exception):  # noqa: B017
        store.complete_many([(1, 1, ["not", "text"])], DAY)  # type: ignore[list-item]
    claim = store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 3, claim.token, ttl=DAY)
    assert store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY).status == DONE
    store.close()


def test_a_queued_callback_waits_for_its_job(store: Store) -> None:
    from flask_voxcallbacks.store import QUEUED

    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many([(1, 5, claim.token, ITEM)], retention=DAY)
    # Redeliveries see it queued, before and while a job runs it; another body is still refused.
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == QUEUED
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH
    (record,) = store.kept()
    assert (record.account_id, record.callback_id, record.queued) == (1, 5, True)
    assert (record.error, record.attempts, record.type, record.item) == ("", 0, "min_balance", ITEM)
    assert store.find_kept(1, 5) == record
    job = store.claim_many([(1, 5, BODY)], 60, DAY, take_queued=True)[0]
    assert job.status == CLAIMED and job.token != claim.token
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == QUEUED
    assert store.claim_many([(1, 5, BODY)], 60, DAY, take_queued=True)[0].status == BUSY
    store.complete(1, 5, job.token, ttl=DAY)
    assert store.claim_many([(1, 5, BODY)], 60, DAY, take_queued=True)[0].status == DONE
    assert store.kept() == [] and store.find_kept(1, 5) is None


def test_a_failed_job_turns_the_queued_callback_into_a_failure(store: Store) -> None:
    from flask_voxcallbacks.store import QUEUED

    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many([(1, 5, claim.token, ITEM)], retention=DAY)
    job = store.claim_many([(1, 5, BODY)], 60, DAY, take_queued=True)[0]
    store.fail(1, 5, job.token, "crm down", ITEM, retention=DAY)
    (record,) = store.kept()
    assert (record.queued, record.error, record.attempts) == (False, "crm down", 1)
    assert store.find_kept(1, 5) == record
    again = store.claim_many([(1, 5, BODY)], 60, DAY, take_queued=True)[0]
    store.fail(1, 5, again.token, "crm still down", ITEM, retention=DAY)
    assert store.find_kept(1, 5).attempts == 2  # type: ignore[union-attr]
    # A failure is claimable by a redelivery again, as inline.
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    assert QUEUED not in [c.status for c in store.claim_many([(1, 6, BODY)], 60, DAY)]


def test_unqueue_forgets_only_queued_callbacks(store: Store) -> None:
    first = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    second = store.claim(1, 6, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many([(1, 5, first.token, ITEM), (1, 6, second.token, ITEM)], retention=DAY)
    job = store.claim_many([(1, 6, BODY)], 60, DAY, take_queued=True)[0]
    store.fail(1, 6, job.token, "crm down", ITEM, retention=DAY)
    store.unqueue_many([(1, 5), (1, 6), (1, 7)])
    assert [(r.callback_id, r.queued) for r in store.kept()] == [(6, False)]
    assert store.find_kept(1, 5) is None
    # The pin stays; the next arrival claims it afresh.
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED


def test_queueing_releases_the_claim_and_leaves_done_callbacks_alone(store: Store) -> None:
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 5, claim.token, ttl=DAY)
    store.queue_many([(1, 5, claim.token, ITEM)], retention=DAY)
    assert store.kept() == [] and store.claim(1, 5, BODY, 60, DAY).status == DONE
    other = store.claim(1, 6, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many([(1, 6, other.token, ITEM)], retention=DAY)
    assert store.claim_many([(1, 6, BODY)], 60, DAY, take_queued=True)[0].status == CLAIMED


def test_a_queued_callback_outlives_the_dedup_ttl_until_its_retention(
    store: Store, clock: Clock
) -> None:
    from flask_voxcallbacks.store import QUEUED

    claim = store.claim(1, 5, BODY, lease_seconds=1, ttl=1)
    store.queue_many([(1, 5, claim.token, ITEM)], retention=3)
    clock.advance(1.5)
    assert store.claim(1, 5, BODY, lease_seconds=1, ttl=1).status == QUEUED
    assert store.find_kept(1, 5) is not None
    clock.advance(2.5)
    assert store.find_kept(1, 5) is None and store.kept() == []
    assert store.claim(1, 5, OTHER, lease_seconds=1, ttl=1).status == CLAIMED


def test_prune_removes_queued_items_too(store: Store, clock: Clock) -> None:
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many([(1, 5, claim.token, ITEM)], retention=DAY)
    clock.advance(2)
    assert store.prune(1) == 1
    assert store.kept() == [] and store.find_kept(1, 5) is None
    assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED


def test_queued_items_without_a_type_and_unknown_keys(store: Store) -> None:
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    untyped = {"callback_id": 5, "account_id": 1}
    store.queue_many([(1, 5, claim.token, untyped)], retention=DAY)
    (record,) = store.kept()
    assert (record.type, record.item) == ("", untyped)
    assert store.find_kept(1, 99) is None and store.find_kept(99, 5) is None


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


_FAILED_QUERY = "SELECT * FROM voxcallbacks WHERE error IS NOT NULL ORDER BY failed_at"


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


def test_a_failure_after_prune_counts_its_attempts_afresh(store: Store) -> None:
    for error in ("boom", "again"):
        claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
        store.fail(1, 5, claim.token, error, ITEM, retention=DAY)
    assert [f.attempts for f in store.kept()] == [2]
    assert store.prune(older_than=-1) == 1 and store.kept() == []
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert claim.status == CLAIMED
    store.fail(1, 5, claim.token, "once more", ITEM, retention=DAY)
    assert [(f.error, f.attempts) for f in store.kept()] == [("once more", 1)]
    assert store.claim(1, 5, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH


def test_queue_many_skips_unknown_and_done_keys_and_keeps_the_others(store: Store) -> None:
    done = store.claim(1, 4, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 4, done.token, ttl=DAY)
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many(
        [(1, 404, "no-such-token", ITEM), (1, 4, done.token, ITEM), (1, 5, claim.token, ITEM)],
        retention=DAY,
    )
    assert [(f.callback_id, f.queued) for f in store.kept()] == [(5, True)]
    assert store.claim(1, 4, BODY, lease_seconds=60, ttl=DAY).status == DONE


def test_the_memory_store_keeps_done_callbacks_out_of_the_collector() -> None:
    # A store that remembers many ids must not lengthen every full pass of the garbage collector.
    store = open_store("memory://")
    for callback_id in (1, 2):
        claim = store.claim(1, callback_id, BODY, lease_seconds=60, ttl=DAY)
        store.complete(1, callback_id, claim.token, ttl=DAY)
    store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY)
    gc.collect()
    gc.collect()  # a tuple holding a key tuple is left alone until the key tuple is
    done = store._done  # type: ignore[attr-defined]
    assert sorted(done) == [(1, 1), (1, 2)]
    assert not any(gc.is_tracked(record) for record in done.values())
    assert not any(gc.is_tracked(entry) for entry in store._deadlines)  # type: ignore[attr-defined]
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert store.claim(1, 2, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH


def test_redis_prune_takes_the_pruned_callbacks_out_of_the_failed_index(redis_url: str) -> None:
    store = open_store(redis_url)
    try:
        for callback_id in (5, 6):
            claim = store.claim(7, callback_id, BODY, lease_seconds=60, ttl=DAY)
            store.fail(7, callback_id, claim.token, "boom", ITEM, retention=DAY)
        index = store._failed_key  # type: ignore[attr-defined]
        assert sorted(store.client.zrange(index, 0, -1)) == [b"7:5", b"7:6"]  # type: ignore[attr-defined]
        time.sleep(0.01)
        assert store.prune(older_than=0) == 2
        assert store.client.zrange(index, 0, -1) == []  # type: ignore[attr-defined]
    finally:
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
    with pytest.raises(StoreURLError, match=r"lacks the columns attempts, digest, done_until"):
        open_store(f"sqlite:///{path}")


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "select"])
def test_sqlite_claims_return_the_receivers_that_succeeded_with_and_without_returning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, returning: bool
) -> None:
    from flask_voxcallbacks.store import sqlite

    # SQLite before 3.35 has no RETURNING: the store reads the receivers with a SELECT instead.
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


def test_the_names_before_kept_callbacks_still_work_with_a_deprecation_warning() -> None:
    from flask_voxcallbacks import store as store_module
    from flask_voxcallbacks.store import KeptCallback, KeptState

    store = open_store("memory://")
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 5, claim.token, "boom", ITEM, retention=DAY)
    with pytest.deprecated_call():
        assert store.failed() == store.kept()
    with pytest.deprecated_call():
        kept = store.pending(1, 5)
    assert kept is not None and kept.state is KeptState.FAILED and not kept.queued
    with pytest.deprecated_call():
        assert kept.failed_at == kept.kept_at
    with pytest.deprecated_call():
        assert store_module.FailedCallback is KeptCallback


def test_claim_states_and_outcomes_read_as_their_values() -> None:
    import json

    from flask_voxcallbacks.handling import Outcome
    from flask_voxcallbacks.store import ClaimStatus

    assert ClaimStatus.CLAIMED == "claimed" and f"{ClaimStatus.DONE}" == "done"
    assert str(Outcome.IN_PROGRESS) == "in_progress"
    assert json.dumps({Outcome.FAILED: 1}) == '{"failed": 1}'
