"""Exactly-once handling through the endpoint, and the failed/replay/prune commands."""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers import ENDPOINT, Flaky, make_app

from flask_voxcallbacks import callback_duplicate, callback_received, min_balance_reached
from flask_voxcallbacks.pinning import body_digest
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.testing import make_batch, make_callback, record_callbacks


@pytest.fixture
def app(store_url: str):
    return make_app(VOXCALLBACKS_STORE=store_url)


def test_redelivery_is_a_duplicate_not_a_second_dispatch(app, client, seen) -> None:
    item = make_callback("min_balance")
    duplicates: list[Any] = []
    with callback_duplicate.connected_to(lambda s, callback: duplicates.append(callback), app):
        first = client.post(ENDPOINT, json=make_batch(item))
        second = client.post(ENDPOINT, json=make_batch(item))
    assert first.get_json()["accepted"] == 1
    assert second.status_code == 200
    assert second.get_json()["duplicates"] == 1 and second.get_json()["accepted"] == 0
    assert len(seen.received) == 1
    assert [c.callback_id for c in duplicates] == [item["callback_id"]]


def test_same_item_twice_in_one_batch_is_handled_once(client, seen) -> None:
    item = make_callback("min_balance")
    response = client.post(ENDPOINT, json=make_batch(item, item))
    assert response.get_json()["accepted"] == 1 and response.get_json()["duplicates"] == 1
    assert len(seen.received) == 1


def test_failed_callback_is_kept_and_runs_again_on_redelivery(app, client) -> None:
    flaky = Flaky()
    item = make_callback("min_balance")
    with min_balance_reached.connected_to(flaky, app):
        assert client.post(ENDPOINT, json=make_batch(item)).status_code == 500
        (record,) = get_state(app).store.kept()
        assert record.callback_id == item["callback_id"]
        assert "ConnectionError: crm unreachable" in record.error
        assert record.item == {k: v for k, v in item.items() if k != "hash"}
        flaky.failing = False
        assert client.post(ENDPOINT, json=make_batch(item)).status_code == 200
        assert client.post(ENDPOINT, json=make_batch(item)).get_json()["duplicates"] == 1
    assert flaky.handled == [item["callback_id"]]
    assert get_state(app).store.kept() == []


def test_callback_claimed_elsewhere_gets_503(app, client, seen) -> None:
    item = make_callback("min_balance")
    store = get_state(app).store
    store.claim(
        item["account_id"], item["callback_id"], body_digest(item), lease_seconds=60, ttl=60
    )
    response = client.post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["in_progress"] == 1
    assert seen.received == []


class StoreClock:
    """Moves the time of an app's memory or SQLite store forward."""

    def __init__(self, app) -> None:
        self.offset = 0.0
        get_state(app).store.now = lambda: time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_handled_callback_is_remembered_for_the_dedup_ttl_not_the_lease(
    backend: str, tmp_path
) -> None:
    store = "memory://" if backend == "memory" else f"sqlite:///{tmp_path}/vox.db"
    app = make_app(
        VOXCALLBACKS_STORE=store, VOXCALLBACKS_LEASE_SECONDS=60, VOXCALLBACKS_DEDUP_TTL=3600
    )
    clock = StoreClock(app)
    client = app.test_client()
    item = make_callback("min_balance")
    with record_callbacks(app) as seen:
        assert client.post(ENDPOINT, json=make_batch(item)).get_json()["accepted"] == 1
        clock.advance(61)
        assert client.post(ENDPOINT, json=make_batch(item)).get_json()["duplicates"] == 1
        clock.advance(3600)
        again = client.post(ENDPOINT, json=make_batch(item))
    assert again.get_json()["accepted"] == 1, "forgotten once the TTL is over"
    assert len(seen) == 2


def test_a_store_outage_loses_nothing(redis_server) -> None:
    app = make_app(VOXCALLBACKS_STORE=redis_server.url)
    client = app.test_client()
    item = make_callback("min_balance")
    with record_callbacks(app) as seen:
        redis_server.stop()
        try:
            down = client.post(ENDPOINT, json=make_batch(item))
        finally:
            redis_server.start()
        back = client.post(ENDPOINT, json=make_batch(item))
    assert down.status_code == 500 and down.get_json()["failed"] == 1
    assert back.status_code == 200 and back.get_json()["accepted"] == 1, "the redelivery runs"
    assert [c.callback_id for c in seen] == [item["callback_id"]]


def broken_function(sender: Any, callback: Any, **extra: Any) -> None:
    raise ValueError("no such customer")


def test_the_failure_record_names_each_failing_receiver(app, client) -> None:
    flaky = Flaky()
    item = make_callback("min_balance")
    with (
        min_balance_reached.connected_to(broken_function, app),
        callback_received.connected_to(flaky, app),
    ):
        client.post(ENDPOINT, json=make_batch(item))
    (record,) = get_state(app).store.kept()
    assert record.error.splitlines() == [
        "min_balance:test_delivery.broken_function: ValueError: no such customer",
        "callback_received:helpers.Flaky: ConnectionError: crm unreachable",
    ]


def test_a_failed_callback_without_a_type_is_kept_with_an_empty_type(app, client) -> None:
    item = make_callback("min_balance")
    del item["type"]
    with callback_received.connected_to(broken_function, app):
        client.post(ENDPOINT, json=make_batch(item))
    (record,) = get_state(app).store.kept()
    assert record.type == ""
    assert "type" not in record.item


def test_one_id_twice_in_a_batch_with_two_bodies(app, client, seen) -> None:
    item = make_callback("min_balance", balance=10)
    forged = {**item, "balance": 99}
    response = client.post(ENDPOINT, json=make_batch(item, forged))
    assert response.status_code == 200
    assert response.get_json()["accepted"] == 1 and response.get_json()["rejected"] == 1
    assert [reason for _, reason in seen.rejected] == ["body_mismatch"]
    assert [c.balance for c in seen.received] == [10]


def test_one_id_twice_in_a_batch_whose_handler_fails_runs_once(app, client) -> None:
    flaky = Flaky()
    item = make_callback("min_balance")
    with callback_received.connected_to(flaky, app):
        response = client.post(ENDPOINT, json=make_batch(item, item))
        assert response.status_code == 500 and response.get_json()["failed"] == 2
        flaky.failing = False
        again = client.post(ENDPOINT, json=make_batch(item, item))
    assert again.get_json()["accepted"] == 1 and again.get_json()["duplicates"] == 1
    assert flaky.handled == [item["callback_id"]]
    assert get_state(app).store.kept() == []


def test_a_store_error_mid_batch_keeps_what_already_ran_done(app, client, monkeypatch) -> None:
    store = get_state(app).store
    ran: list[int] = []

    def receiver(sender: Any, callback: Any, **extra: Any) -> None:
        ran.append(callback.callback_id)
        if callback.type == "js_fail":
            raise RuntimeError("handler fails")

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("store went away")

    first, failing = make_callback("min_balance"), make_callback("js_fail")
    monkeypatch.setattr(store, "fail", store_down)
    with callback_received.connected_to(receiver, app):
        response = client.post(ENDPOINT, json=make_batch(first, failing))
        assert response.status_code == 500
        monkeypatch.undo()
        again = client.post(ENDPOINT, json=make_batch(first))
    assert again.get_json()["duplicates"] == 1, "the callback that ran is not run again"
    assert ran == [first["callback_id"], failing["callback_id"]]


def test_a_store_outage_is_logged(vox_log) -> None:
    app = make_app(VOXCALLBACKS_STORE="redis://127.0.0.1:1/0")
    app.test_client().post(ENDPOINT, json=make_batch(make_callback("js_fail")))
    errors = [r.getMessage() for r in vox_log.records if r.levelname == "ERROR"]
    assert errors == ["store error while handling a batch of 1 callbacks"]


