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
