"""A callback id is pinned to the body it first arrived with: a forged body never runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import ENDPOINT, make_app

from flask_voxcallbacks import callback_received, callback_rejected, min_balance_reached
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.testing import make_batch, make_callback


class Receiver:
    """Records what it was given; raises while ``failing`` is set."""

    def __init__(self, failing: bool = False) -> None:
        self.failing = failing
        self.calls: list[Any] = []

    def __call__(self, sender: Any, callback: Any, **extra: Any) -> None:
        self.calls.append(callback)
        if self.failing:
            raise ConnectionError("crm unreachable")


def forge(item: dict[str, Any]) -> dict[str, Any]:
    """The same ids and valid hash with another type and body, as an attacker would send."""
    return {
        **item,
        "type": "sms_inbound",
        "balance": 1_000_000,
        "sms_inbound": {"sms_inbound": {"source_number": "1", "sms_body": "PAY"}},
    }


@pytest.fixture
def app(store_url: str):
    return make_app(VOXCALLBACKS_STORE=store_url)


def rejections(app) -> list[tuple[Any, str]]:
    seen: list[tuple[Any, str]] = []
    callback_rejected.connect(lambda s, callback, reason: seen.append((callback, reason)), app)
    return seen


def test_forged_body_after_a_failure_is_rejected_and_replay_runs_the_first(app, client) -> None:
    handler, everything = Receiver(failing=True), Receiver()
    rejected = rejections(app)
    min_balance_reached.connect(handler, app)
    callback_received.connect(everything, app)
    item = make_callback("min_balance", balance=10)

    assert client.post(ENDPOINT, json=make_batch(item)).status_code == 500
    forged = client.post(ENDPOINT, json=make_batch(forge(item)))

    assert forged.status_code == 403
    assert forged.get_json() == {
        "accepted": 0,
        "rejected": 1,
        "duplicates": 0,
        "in_progress": 0,
        "failed": 0,
    }
    assert [c.type for c in everything.calls] == ["min_balance"], "the forged body never ran"
    ((callback, reason),) = rejected
    assert reason == "body_mismatch"
    assert (callback.account_id, callback.callback_id) == (item["account_id"], item["callback_id"])
    assert callback.type == "sms_inbound" and "hash" not in callback.raw
    (record,) = get_state(app).store.kept()
    assert record.type == "min_balance" and record.item["balance"] == 10, "record not overwritten"

    handler.failing = False
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "replay", "--all"])
    assert result.exit_code == 0, result.output
    # The receiver that failed runs the first body; the one that succeeded is not run again.
    assert [(c.type, c.balance) for c in handler.calls[1:]] == [("min_balance", 10)]
    assert len(everything.calls) == 1
    genuine = client.post(ENDPOINT, json=make_batch(item))
    assert genuine.get_json()["duplicates"] == 1, "the genuine redelivery is not lost"


def test_genuine_redelivery_after_a_forgery_still_runs(app, client) -> None:
    handler = Receiver(failing=True)
    min_balance_reached.connect(handler, app)
    item = make_callback("min_balance")
    client.post(ENDPOINT, json=make_batch(item))
    client.post(ENDPOINT, json=make_batch(forge(item)))
    handler.failing = False
    response = client.post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 200 and response.get_json()["accepted"] == 1
    assert [c.callback_id for c in handler.calls] == [item["callback_id"]] * 2
    assert get_state(app).store.kept() == []


def test_forged_body_after_success_is_rejected_not_a_duplicate(app, client, seen) -> None:
    item = make_callback("min_balance", balance=10)
    client.post(ENDPOINT, json=make_batch(item))
    response = client.post(ENDPOINT, json=make_batch(forge(item), forge(item)))
    assert response.status_code == 403 and response.get_json()["rejected"] == 2
    assert [reason for _, reason in seen.rejected] == ["body_mismatch"] * 2
    assert [c.type for c in seen.received] == ["min_balance"]


def test_forged_body_while_another_worker_runs_it_is_rejected(app, client, seen) -> None:
    item = make_callback("min_balance")
    with min_balance_reached.connected_to(
        lambda sender, callback: client.post(ENDPOINT, json=make_batch(forge(item))), app
    ):
        assert client.post(ENDPOINT, json=make_batch(item)).status_code == 200
    assert [reason for _, reason in seen.rejected] == ["body_mismatch"]
    assert [c.type for c in seen.received] == ["min_balance"]


def test_key_order_spacing_and_hash_case_do_not_change_the_body(app, client, seen) -> None:
    item = make_callback("min_balance")
    client.post(ENDPOINT, json=make_batch(item))
    reordered = dict(reversed(list(item.items())), hash=item["hash"].upper())
    body = json.dumps(make_batch(reordered), indent=3).encode()
    response = client.post(ENDPOINT, data=body, content_type="application/json")
    assert response.status_code == 200 and response.get_json()["duplicates"] == 1
    assert seen.rejected == []


@pytest.mark.parametrize(
    "change",
    [
        {"balance": 10.0},  # 10 and 10.0 are different JSON
        {"currency": "EUR"},
        {"extra_key": None},
        {"min_balance": {"is_min_credit": True, "is_repeated": False}},
    ],
)
def test_any_change_of_value_type_or_key_is_a_mismatch(app, client, seen, change) -> None:
    item = make_callback("min_balance", balance=10)
    client.post(ENDPOINT, json=make_batch(item))
    response = client.post(ENDPOINT, json=make_batch({**item, **change}))
    assert response.status_code == 403
    assert [reason for _, reason in seen.rejected] == ["body_mismatch"]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_app_instances_sharing_a_store(backend: str, tmp_path, request) -> None:
    url = (
        f"sqlite:///{tmp_path}/shared.db"
        if backend == "sqlite"
        else request.getfixturevalue("redis_url")
    )
    first, second = make_app(VOXCALLBACKS_STORE=url), make_app(VOXCALLBACKS_STORE=url)
    failing, ran_second = Receiver(failing=True), Receiver()
    rejected = rejections(second)
    callback_received.connect(failing, first)
    callback_received.connect(ran_second, second)
    item = make_callback("min_balance", balance=10)

    assert first.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 500
    forged = second.test_client().post(ENDPOINT, json=make_batch(forge(item)))
    assert forged.status_code == 403 and [r for _, r in rejected] == ["body_mismatch"]
    assert ran_second.calls == []
    (record,) = get_state(second).store.kept()
    assert record.item["type"] == "min_balance"

    genuine = second.test_client().post(ENDPOINT, json=make_batch(item))
    assert genuine.status_code == 200
    assert [(c.type, c.balance) for c in ran_second.calls] == [("min_balance", 10)]
    again = first.test_client().post(ENDPOINT, json=make_batch(forge(item)))
    assert again.status_code == 403


def test_stored_items_and_raw_carry_no_hash(app, client) -> None:
    handler = Receiver(failing=True)
    callback_received.connect(handler, app)
    item = make_callback("sms_inbound")
    client.post(ENDPOINT, json=make_batch(item))
    (callback,) = handler.calls
    assert "hash" not in callback.raw
    assert callback.raw == {k: v for k, v in item.items() if k != "hash"}
    (record,) = get_state(app).store.kept()
    assert "hash" not in record.item and item["hash"] not in json.dumps(record.item)
    assert item["hash"] not in repr(record) and item["hash"] not in repr(callback)


def test_the_batch_summary_counts_every_body_mismatch(app, client, vox_log) -> None:
    item = make_callback("min_balance")
    client.post(ENDPOINT, json=make_batch(item))
    client.post(ENDPOINT, json=make_batch(forge(item), {**forge(item), "balance": 5}))
    warnings = [r.getMessage() for r in vox_log.records if r.levelname == "WARNING"]
    assert warnings[-1] == "batch of 2: 2 rejected (body_mismatch=2)"


BODIES = [
    make_callback("min_balance"),
    make_callback("renewed_subscriptions"),
    {
        "text": "é ☃ \U0001f600 \ud800",
        "n": [1, 1.5, -0.0, 10**30, True, None],
        "o": {"b": 1, "a": {}},
    },
]


#: An item whose canonical JSON the C encoder returns in several pieces (it joins its pieces
#: every 100,000 or so).
LARGE = {"callback_id": 1, "numbers": list(range(150_000)), "text": "x" * 1000}


@pytest.mark.parametrize("item", [*BODIES, LARGE])
def test_the_canonical_form_is_the_same_with_and_without_the_c_encoder(item, monkeypatch) -> None:
    from flask_voxcallbacks import pinning

    expected = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert pinning.canonical_json(item) == expected
    monkeypatch.setattr(pinning, "_c_canonical", None)
    assert pinning.canonical_json(item) == expected
    assert len(pinning.body_digest(item)) == 64


def test_the_digest_leaves_out_the_hash_and_nothing_else() -> None:
    from flask_voxcallbacks.pinning import body_digest

    item = make_callback("min_balance")
    assert body_digest(item) == body_digest({k: v for k, v in item.items() if k != "hash"})
    assert body_digest(item) != body_digest({**item, "extra": None})
    assert body_digest({"a": "é"}) != body_digest({"a": "e"})


def test_the_kept_c_encoder_writes_what_the_canonical_encoder_writes() -> None:
    """The encoder kept for speed is the one ``_CANONICAL.encode`` would build on each call."""
    from flask_voxcallbacks import pinning
    from flask_voxcallbacks.testing import make_callback

    encoder = pinning._c_encoder()
    assert encoder is not None, "CPython has the accelerator"
    samples = [
        {},
        {"b": 1, "a": [1.5, "é", None, True, False, {"z": "\u2028\n\"", "y": 1e300, "x": -0.0}]},
        {"nested": {"deeper": {"b": [], "a": {}}}, "number": 12345678901234567890},
        {"not a number": float("inf"), "nor this": float("nan")},
        make_callback("renewed_subscriptions"),
    ]
    for sample in samples:
        assert "".join(encoder(sample, 0)) == pinning._CANONICAL.encode(sample)
    assert "".join(encoder({"b": {"d": 1, "c": 2}, "a": 3}, 0)) == '{"a":3,"b":{"c":2,"d":1}}'


def test_without_hash_copies_the_item_with_or_without_a_hash() -> None:
    from flask_voxcallbacks.pinning import without_hash

    item = {"callback_id": 5, "hash": "ab" * 16}
    assert without_hash(item) == {"callback_id": 5} and "hash" in item
    assert without_hash({"callback_id": 5}) == {"callback_id": 5}
