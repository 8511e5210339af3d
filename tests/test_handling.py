"""handling.py: what happens to the items of a request between their parsing and the answer,
called directly or through the endpoint (authentication, chunks, claims, completions, the
summary line)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from helpers import ENDPOINT, make_app

from flask_voxcallbacks import callback_received, handling
from flask_voxcallbacks.handling import RECORD_EVERY, Arrival, handle_batch, handle_items
from flask_voxcallbacks.pinning import body_digest
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.store import DONE
from flask_voxcallbacks.testing import make_batch, make_callback


def test_completions_are_recorded_as_the_batch_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each receiver takes 0.6 of RECORD_EVERY on a fake clock: by the time the third callback
    runs, the first two are recorded as done, so that a worker killed then runs only the third
    again; the last one is recorded at the end."""
    now = [0.0]
    monkeypatch.setattr(handling, "clock", lambda: now[0])
    app = make_app(VOXCALLBACKS_STORE="memory://")
    store = get_state(app).store
    items = [make_callback("min_balance") for _ in range(3)]
    done_before: list[list[bool]] = []

    def is_done(item: dict[str, Any]) -> bool:
        key = (item["account_id"], item["callback_id"])
        return store.claim(*key, body_digest(item), 60, 60).status == DONE

    def slow(sender: Any, callback: Any, **extra: Any) -> None:
        done_before.append([is_done(item) for item in items[:2]])
        now[0] += RECORD_EVERY * 0.6

    with callback_received.connected_to(slow, sender=app):
        arrivals = [Arrival(dict(i), i["account_id"], i["callback_id"], i["type"]) for i in items]
        with app.app_context():
            outcomes = handle_batch(app, get_state(app), arrivals)
    assert outcomes == ["accepted"] * 3
    # Recorded after the second callback (1.2 x RECORD_EVERY), not after the first (0.6 x).
    assert done_before == [[False, False], [False, False], [True, True]]
    assert all(is_done(item) for item in items)


def test_the_hash_leaves_every_authentic_item_before_anything_keeps_it() -> None:
    app = make_app()
    good, forged = make_callback("min_balance"), {**make_callback("js_fail"), "hash": "0" * 32}
    items = [dict(good), dict(forged)]
    with app.test_request_context(ENDPOINT, method="POST"):
        counts = handle_items(app, get_state(app), items)
    assert counts["accepted"] == 1 and counts["rejected"] == 1
    assert "hash" not in items[0] and items[0] == {k: v for k, v in good.items() if k != "hash"}
    assert items[1]["hash"] == "0" * 32, "a rejected item is left as it came"


def test_redeliveries_in_one_batch_write_one_warning(vox_log: pytest.LogCaptureFixture) -> None:
    app = make_app()
    callback_received.connect(
        lambda sender, callback, **kw: (_ for _ in ()).throw(RuntimeError("down")), app, weak=False
    )
    item = make_callback("min_balance")
    vox_log.clear()
    response = app.test_client().post(ENDPOINT, json=make_batch(*[item] * 1000))
    assert response.status_code == 500 and response.get_json()["failed"] == 1000
    warnings = [r for r in vox_log.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].getMessage() == (
        f"batch of 1000: 1000 failed (callback {item['callback_id']})"
    )
    errors = [r for r in vox_log.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # the receiver's traceback, once


def test_a_batch_larger_than_a_chunk_is_handled_in_order_with_one_summary(
    app, client, seen, monkeypatch
) -> None:
    from flask_voxcallbacks import handling

    monkeypatch.setattr(handling, "CHUNK_ITEMS", 3)
    items = [make_callback("min_balance") for _ in range(7)]
    forged = {**items[1], "hash": "0" * 32}
    batch = [items[0], forged, *items[1:], items[0]]  # 9 items: chunks of 3, 3 and 3
    claims: list[int] = []
    store = get_state(app).store
    original = store.claim_many

    def counting(keys, *args):
        claims.append(len(keys))
        return original(keys, *args)

    monkeypatch.setattr(store, "claim_many", counting)
    response = client.post(ENDPOINT, json=make_batch(*batch))
    assert response.status_code == 200
    assert response.get_json() == {
        "accepted": 7,
        "rejected": 1,
        "duplicates": 1,
        "in_progress": 0,
        "failed": 0,
    }
    assert [c.callback_id for c in seen.received] == [i["callback_id"] for i in items]
    assert claims == [2, 3, 3]
