"""The store contract, run against every backend: memory, a SQLite file, a real Redis server, a
real PostgreSQL server."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from helpers import BODY, DAY, ITEM, OTHER, Clock, stored_keys

from flask_voxcallbacks.store import BUSY, CLAIMED, DONE, MISMATCH, QUEUED, open_store
from flask_voxcallbacks.store.base import Store


def _claim_in_process(url: str, start: multiprocessing.synchronize.Event, out: object) -> None:
    store = open_store(url)
    start.wait()
    won = [
        cid
        for cid in range(200)
        if store.claim(3, cid, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    ]
    out.put(won)  # type: ignore[attr-defined]


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


def test_prune_takes_failures_strictly_older_and_forgets_their_receivers(store: Store) -> None:
    """A failure exactly ``older_than`` old stays; a pruned one runs again from its first
    receiver (the receivers it had succeeded with are forgotten with it)."""
    start = float(int(time.time()))  # whole seconds: the sums below are exact
    store.now = lambda: start  # type: ignore[method-assign]
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 5, claim.token, "boom", ITEM, retention=DAY, succeeded=["r:one"])
    store.now = lambda: start + 10  # type: ignore[method-assign]
    assert store.prune(older_than=10) == 0
    store.now = lambda: start + 11  # type: ignore[method-assign]
    assert store.prune(older_than=10) == 1
    again = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    assert (again.status, again.succeeded) == (CLAIMED, ())


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


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
def test_concurrent_claims_in_processes_have_one_winner(
    backend: str, tmp_path: Path, request
) -> None:
    url = (
        f"sqlite:///{tmp_path}/vox.db"
        if backend == "sqlite"
        else request.getfixturevalue(f"{backend}_url")
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


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
def test_failures_and_done_markers_survive_a_restart(backend: str, tmp_path: Path, request) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/nested/dir/vox.db"
        restart = lambda: None  # noqa: E731 - the file is the whole server
    elif backend == "postgres":
        url = request.getfixturevalue("postgres_url")
        # A crash: committed transactions survive it.
        restart = lambda: request.getfixturevalue("postgres_server").restart("immediate")  # noqa: E731
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


def test_unknown_store_scheme_is_named() -> None:
    with pytest.raises(ValueError) as info:
        open_store("mongodb://localhost")
    assert str(info.value) == (
        "VOXCALLBACKS_STORE has an unknown scheme 'mongodb'; use memory://,"
        " sqlite:///path/to/file.db, redis://host:port/db or postgresql://user@host:port/dbname."
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


def test_claim_many_names_each_callbacks_succeeded_receivers_at_its_place(store: Store) -> None:
    """Two failed callbacks in the middle of a batch: each claim carries its own receivers, and
    its own token (failing it with that token releases its claim)."""
    for callback_id, names in ((2, ["r:a"]), (3, ["r:b", "r:c"])):
        claim = store.claim(1, callback_id, BODY, lease_seconds=60, ttl=DAY)
        store.fail(1, callback_id, claim.token, "boom", ITEM, retention=DAY, succeeded=names)
    keys = [(1, callback_id, BODY) for callback_id in (1, 2, 3, 4)]
    claims = store.claim_many(keys, lease_seconds=60, ttl=DAY)
    assert [(claim.status, claim.succeeded) for claim in claims] == [
        (CLAIMED, ()),
        (CLAIMED, ("r:a",)),
        (CLAIMED, ("r:b", "r:c")),
        (CLAIMED, ()),
    ]
    assert len({claim.token for claim in claims}) == 4
    for callback_id, claim in zip((1, 2, 3, 4), claims):
        store.fail(1, callback_id, claim.token, "again", ITEM, retention=DAY)
    again = store.claim_many(keys, lease_seconds=60, ttl=DAY)
    assert [claim.status for claim in again] == [CLAIMED] * 4


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


def test_claim_tokens_are_unique_within_and_across_processes() -> None:
    import os

    from flask_voxcallbacks.store.base import Store

    tokens = {Store.new_token() for _ in range(1000)}
    assert len(tokens) == 1000

    def from_a_child() -> str:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.write(write, Store.new_token().encode())
            finally:
                os._exit(0)
        os.close(write)
        token = os.read(read, 64).decode()
        os.close(read)
        os.waitpid(pid, 0)
        return token

    # Two children forked from the same point share the parent's counter.
    child, sibling = from_a_child(), from_a_child()
    mine = Store.new_token()
    assert child not in tokens and child != mine
    assert child[:16] != mine[:16], "a forked process draws its own prefix"
    assert child != sibling and child[:16] != sibling[:16], "and so does each of its siblings"


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


def test_the_names_before_kept_callbacks_still_work_with_a_deprecation_warning() -> None:
    from flask_voxcallbacks import store as store_module
    from flask_voxcallbacks.store import KeptCallback, KeptState

    store = open_store("memory://")
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 5, claim.token, "boom", ITEM, retention=DAY)
    with pytest.warns(DeprecationWarning) as caught:
        assert store.failed() == store.kept()
        kept = store.pending(1, 5)
    assert [str(w.message) for w in caught] == [
        "Store.failed is deprecated; use kept",
        "Store.pending is deprecated; use find_kept",
    ]
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert {w.filename for w in caught} == {__file__}, "the warnings point at the caller"
    else:  # `make mutation` puts a frame of its own between the caller and the package
        assert not any("flask_voxcallbacks" in w.filename for w in caught)
    assert kept is not None and kept.state is KeptState.FAILED and not kept.queued
    with pytest.deprecated_call():
        assert kept.failed_at == kept.kept_at
    from flask_voxcallbacks.store import base

    for module in (store_module, base):
        with pytest.warns(DeprecationWarning) as caught:
            assert module.FailedCallback is KeptCallback
        (warning,) = caught
        assert str(warning.message) == "FailedCallback is deprecated; use KeptCallback"
        if "MUTANT_UNDER_TEST" not in os.environ:  # `make mutation` adds frames of its own
            assert warning.filename == __file__, "the warning points at the caller"
    with pytest.raises(AttributeError) as info:
        base.FailedCallbacks  # noqa: B018
    assert str(info.value) == (
        "module 'flask_voxcallbacks.store.base' has no attribute 'FailedCallbacks'"
    )


def _module_getattr(name: str) -> object:
    """Stands for a module's ``__getattr__`` that answers old names through deprecated_name."""
    from flask_voxcallbacks.store import base

    return base.deprecated_name("some.module", name)


def test_the_old_name_warning_skips_the_module_getattr_to_name_its_caller() -> None:
    import linecache

    from flask_voxcallbacks.store import KeptCallback

    with pytest.warns(DeprecationWarning) as caught:
        assert _module_getattr("FailedCallback") is KeptCallback
    (warning,) = caught
    line = linecache.getline(warning.filename, warning.lineno)
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert warning.filename == __file__
        assert '_module_getattr("FailedCallback")' in line, line
    else:
        # `make mutation` calls deprecated_name through frames of its own: the warning still
        # names neither the package nor the function that called deprecated_name.
        assert "flask_voxcallbacks" not in warning.filename, warning.filename
        assert "base.deprecated_name(" not in line, line
    with pytest.raises(AttributeError) as info:
        _module_getattr("KeptCallbacks")
    assert str(info.value) == "module 'some.module' has no attribute 'KeptCallbacks'"


def test_claim_states_and_outcomes_read_as_their_values() -> None:
    import json

    from flask_voxcallbacks.handling import Outcome
    from flask_voxcallbacks.store import ClaimStatus

    assert ClaimStatus.CLAIMED == "claimed" and f"{ClaimStatus.DONE}" == "done"
    assert str(Outcome.IN_PROGRESS) == "in_progress"
    assert json.dumps({Outcome.FAILED: 1}) == '{"failed": 1}'


def test_the_store_knows_the_keys_it_holds_a_record_of(store: Store, clock: Clock) -> None:
    assert not store.knows(1, 5)
    claim = store.claim(1, 5, BODY, lease_seconds=1, ttl=2)
    assert store.knows(1, 5) and not store.knows(1, 6) and not store.knows(2, 5)
    store.fail(1, 5, claim.token, "boom", ITEM, retention=2)
    assert store.knows(1, 5)
    done = store.claim(1, 7, BODY, lease_seconds=1, ttl=2)
    store.complete(1, 7, done.token, ttl=2)
    assert store.knows(1, 7)
    clock.advance(3)
    assert not store.knows(1, 5) and not store.knows(1, 7), "forgotten once their time ended"


def test_two_stores_share_their_records_exactly_when_their_identities_match(
    store_url: str, tmp_path: Path
) -> None:
    first, same = open_store(store_url), open_store(store_url)
    try:
        if store_url.startswith("memory:"):
            assert first.identity != same.identity, "each memory store is its own"
            return
        assert first.identity == same.identity
        other = open_store(store_url, namespace="billing")
        assert other.identity != first.identity
        other.close()
        assert "***" not in first.identity and "@" not in first.identity
    finally:
        first.close()
        same.close()


def test_a_queued_callback_keeps_the_trace_context_of_its_request(store: Store) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many([(1, 5, claim.token, ITEM)], retention=DAY, trace=traceparent)
    assert store.find_kept(1, 5).trace == traceparent  # type: ignore[union-attr]
    (record,) = store.kept()
    assert record.trace == traceparent
    # Its job fails: the failure record is the job's, without the request's context.
    job = store.claim_many([(1, 5, BODY)], 60, DAY, take_queued=True)[0]
    store.fail(1, 5, job.token, "boom", ITEM, retention=DAY)
    assert store.find_kept(1, 5).trace == ""  # type: ignore[union-attr]
    # A callback queued without tracing keeps none.
    other = store.claim(1, 6, BODY, lease_seconds=60, ttl=DAY)
    store.queue_many([(1, 6, other.token, ITEM)], retention=DAY)
    assert store.find_kept(1, 6).trace == ""  # type: ignore[union-attr]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def frozen_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, list]]:
    """A store whose clock stands still until the test moves it (``now[0]``), so that a test can
    stand exactly at the end of a lease, a record or a retention."""
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/vox.db"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_store(url)
    now = [1_800_000_000.0]
    store.now = lambda: now[0]  # type: ignore[method-assign]
    yield store, now
    store.close()


def test_at_the_exact_end_of_a_lease_a_record_or_a_retention_it_is_over(frozen_store) -> None:
    store, now = frozen_store
    start = now[0]
    store.claim(1, 1, BODY, lease_seconds=5, ttl=DAY)
    now[0] = start + 5
    assert store.claim(1, 1, BODY, lease_seconds=5, ttl=DAY).status == CLAIMED, "lease over"
    done = store.claim(1, 2, BODY, lease_seconds=5, ttl=10)
    store.complete(1, 2, done.token, ttl=10)
    failed = store.claim(1, 3, BODY, lease_seconds=5, ttl=DAY)
    store.fail(1, 3, failed.token, "boom", ITEM, retention=10)
    now[0] = start + 5 + 10
    assert not store.knows(1, 2), "the done marker lived ten seconds"
    assert not store.knows(1, 3), "so did the failure"
    assert store.find_kept(1, 3) is None and store.kept() == []
    assert store.claim(1, 2, OTHER, lease_seconds=5, ttl=DAY).status == CLAIMED
    kept = store.claim(1, 4, BODY, lease_seconds=5, ttl=DAY)
    store.fail(1, 4, kept.token, "boom", ITEM, retention=DAY)
    now[0] += 7
    assert store.prune(older_than=7) == 0, "kept exactly seven seconds ago: not older"
    assert [k.callback_id for k in store.kept()] == [4]


def test_claim_states_format_as_their_values() -> None:
    assert f"{DONE:>6}|{CLAIMED:<8}|" == "  done|claimed |"


def test_a_sqlite_store_made_directly_uses_the_table_of_no_namespace(tmp_path: Path) -> None:
    from flask_voxcallbacks.store.sqlite import SQLiteStore

    store = SQLiteStore(str(tmp_path / "vox.db"))
    assert store.table == "voxcallbacks"
    store.close()


def test_a_name_the_store_package_does_not_have_is_an_attribute_error_naming_it() -> None:
    from flask_voxcallbacks import store as store_module

    with pytest.raises(AttributeError) as info:
        store_module.FailedCallbacks  # noqa: B018
    assert str(info.value) == "module 'flask_voxcallbacks.store' has no attribute 'FailedCallbacks'"
    assert not hasattr(store_module, "nothing")
