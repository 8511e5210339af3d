"""What only the memory store does: late completions, and its cost to the garbage collector."""

from __future__ import annotations

import gc

from helpers import BODY, DAY, OTHER, Clock

from flask_voxcallbacks.store import CLAIMED, DONE, MISMATCH, open_store


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


def test_the_memory_sweep_passes_stale_entries_and_follows_moved_deadlines() -> None:
    """A key whose deadline moved earlier leaves a stale entry behind, which the sweep passes
    over; one whose deadline moved later is looked at again at its new deadline."""
    from helpers import BODY, stored_keys

    from flask_voxcallbacks.store import open_store

    store = open_store("memory://")
    now = [1000.0]
    store.now = lambda: now[0]  # type: ignore[method-assign]
    moved = store.claim(1, 1, BODY, lease_seconds=100, ttl=100)  # deadline 1100
    store.complete(1, 1, moved.token, ttl=5)  # now 1005: an earlier entry, a stale one at 1100
    store.claim(1, 2, BODY, lease_seconds=120, ttl=120)  # 1120, after the stale entry
    store.claim(1, 3, BODY, lease_seconds=300, ttl=300)  # 1300
    later = store.claim(1, 4, BODY, lease_seconds=10, ttl=10)  # 1010...
    store.complete(1, 4, later.token, ttl=200)  # ...then done until 1200
    now[0] = 1130.0
    store.claim(1, 5, BODY, lease_seconds=300, ttl=300)  # sweeps first
    assert stored_keys(store) == 3, "1 and 2 are gone; 3, 4 (done until 1200) and 5 stay"
    now[0] = 1250.0
    store.claim(1, 6, BODY, lease_seconds=300, ttl=300)
    assert stored_keys(store) == 3, "4 is gone at its later deadline; 3, 5 and 6 stay"


def test_the_memory_sweep_follows_a_kept_callback_whose_deadline_moved_later() -> None:
    """A failure keeps its callback past its first deadline: the sweep looks at it again at the
    end of its retention, and forgets it then."""
    from helpers import BODY, ITEM, stored_keys

    from flask_voxcallbacks.store import open_store

    store = open_store("memory://")
    now = [1000.0]
    store.now = lambda: now[0]  # type: ignore[method-assign]
    claim = store.claim(1, 7, BODY, lease_seconds=10, ttl=10)  # deadline 1010
    store.fail(1, 7, claim.token, "boom", {**ITEM, "callback_id": 7}, retention=200)  # 1200
    now[0] = 1050.0
    store.claim(1, 8, BODY, lease_seconds=10, ttl=10)  # sweeps: 7 is kept until 1200
    assert stored_keys(store) == 2
    assert [kept.callback_id for kept in store.kept()] == [7]
    now[0] = 1250.0
    store.claim(1, 9, BODY, lease_seconds=10, ttl=10)  # sweeps: 7 and 8 are over
    assert stored_keys(store) == 1
