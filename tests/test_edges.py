"""Exactly once at the edges: one bad item, one bad receiver or a shared store never costs
another callback (per-item isolation, namespaces, pristine kept items, per-receiver delivery)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskCliRunner
from helpers import CHILD_ACCOUNT_ID, CHILD_API_KEY, CHILD_SALT, ENDPOINT, SilentBroker, make_app

from flask_voxcallbacks import (
    ConfigurationError,
    call_history_report_ready,
    callback_received,
    min_balance_reached,
)
from flask_voxcallbacks.handling import run_job
from flask_voxcallbacks.queue import JobRefused
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.store.memory import MemoryStore
from flask_voxcallbacks.testing import make_batch, make_callback

#: An authentic item whose order date, one hour before the calendar starts in UTC, cannot be
#: held by a datetime.
OUT_OF_RANGE = "0001-01-01T00:00:00+01:00"


def poison() -> dict[str, Any]:
    return make_callback("call_history_report", order_date=OUT_OF_RANGE)


def ids(callbacks: list[Any]) -> list[int]:
    return [c.callback_id for c in callbacks]


def listen(app: Any, signal: Any = callback_received) -> list[Any]:
    seen: list[Any] = []
    signal.connect(lambda sender, callback, **kw: seen.append(callback), app, weak=False)
    return seen


def cli(app: Any, *args: str) -> Any:
    return FlaskCliRunner(app).invoke(args=["voxcallbacks", *args])


# -- one item never stops its batch ---------------------------------------------------------


def test_an_item_out_of_the_calendar_is_handled_with_the_field_named(store_url: str) -> None:
    app = make_app(VOXCALLBACKS_STORE=store_url)
    seen = listen(app)
    before, bad, after = make_callback("min_balance"), poison(), make_callback("min_balance")
    response = app.test_client().post(ENDPOINT, json=make_batch(before, bad, after))
    assert response.status_code == 200, response.get_data()
    assert response.get_json()["accepted"] == 3
    assert ids(seen) == [before["callback_id"], bad["callback_id"], after["callback_id"]]
    assert seen[1].invalid_fields == ("call_history_report.order_date",)
    assert seen[1].payload.order_date is None


def test_a_callback_that_cannot_be_built_fails_alone_and_is_kept(
    store_url: str, monkeypatch: pytest.MonkeyPatch, vox_log: pytest.LogCaptureFixture
) -> None:
    # A payload class whose construction raises stands for any bug in conversion: the callback
    # is recorded as failed with its reason, the others of the batch run and are recorded.
    from flask_voxcallbacks.payloads import CALLBACK_TYPES

    app = make_app(VOXCALLBACKS_STORE=store_url)
    seen = listen(app)
    spec = CALLBACK_TYPES["call_history_report"]

    def broken(data: Any, path: str = "") -> Any:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(spec.payload, "from_wire", broken)
    before, bad, after = make_callback("min_balance"), poison(), make_callback("min_balance")
    response = app.test_client().post(ENDPOINT, json=make_batch(before, bad, after))
    assert response.status_code == 500
    assert response.get_json() == {
        "accepted": 2,
        "rejected": 0,
        "duplicates": 0,
        "in_progress": 0,
        "failed": 1,
    }
    assert ids(seen) == [before["callback_id"], after["callback_id"]]
    store = get_state(app).store
    (kept,) = store.kept()
    assert kept.callback_id == bad["callback_id"]
    assert "could not be built" in kept.error
    assert kept.item["call_history_report"]["order_date"] == OUT_OF_RANGE
    assert "store error" not in vox_log.text
    assert "OverflowError: date value out of range" in vox_log.text
    # The others are done: their redelivery is a duplicate; the bad one is still failing.
    again = app.test_client().post(ENDPOINT, json=make_batch(before, bad, after))
    assert again.get_json()["duplicates"] == 2 and again.get_json()["failed"] == 1
    # Once the code is fixed, a replay runs it.
    monkeypatch.undo()
    replay = cli(app, "replay", "--all")
    assert replay.exit_code == 0, replay.output
    assert ids(seen)[-1] == bad["callback_id"]


def test_replay_all_goes_on_past_a_callback_that_fails_and_exits_1_at_the_end(
    store_url: str,
) -> None:
    app = make_app(VOXCALLBACKS_STORE=store_url)
    failing = {"on": True}

    def flaky(sender: Any, callback: Any, **kw: Any) -> None:
        if failing["on"]:
            raise RuntimeError("crm down")

    callback_received.connect(flaky, app, weak=False)
    first, bad, last = make_callback("min_balance"), poison(), make_callback("min_balance")
    app.test_client().post(ENDPOINT, json=make_batch(first, bad, last))
    assert len(get_state(app).store.kept()) == 3
    failing["on"] = False
    seen = listen(app)
    call_history_report_ready.connect(
        lambda sender, callback, **kw: (_ for _ in ()).throw(ValueError("still broken")),
        app,
        weak=False,
    )
    replay = cli(app, "replay", "--all")
    assert replay.exit_code == 1, replay.output
    assert "2 replayed, 1 still failing." in replay.output
    assert set(ids(seen)) >= {first["callback_id"], last["callback_id"]}
    assert [r.callback_id for r in get_state(app).store.kept()] == [bad["callback_id"]]


# -- what is kept stays pristine --------------------------------------------------------------


def test_raw_is_read_only_at_every_level_and_still_a_dict() -> None:
    import copy
    import json
    import pickle

    app = make_app()
    seen = listen(app)

    def seen_of(type_name: str) -> Any:
        app.test_client().post(ENDPOINT, json=make_batch(make_callback(type_name)))
        return seen[-1].raw

    item = make_callback("sms_inbound")
    app.test_client().post(ENDPOINT, json=make_batch(item))
    raw = seen[0].raw
    nested = raw["sms_inbound"]["sms_inbound"]
    for change in (
        lambda: raw.__setitem__("balance", 1),
        lambda: raw.pop("balance"),
        lambda: raw.update(balance=1),
        lambda: nested.__setitem__("sms_body", "edited"),
        lambda: nested.clear(),
    ):
        with pytest.raises(TypeError, match="read-only"):
            change()
    expected = {k: v for k, v in item.items() if k != "hash"}
    assert isinstance(raw, dict) and raw == expected
    assert json.loads(json.dumps(raw)) == expected
    # However a nested value is reached, it is read-only.
    reached = [
        raw.get("sms_inbound"),
        *raw.values(),
        *(value for _, value in raw.items()),
        raw.copy()["sms_inbound"]["sms_inbound"],
    ]
    for value in reached:
        if isinstance(value, dict):
            with pytest.raises(TypeError, match="read-only"):
                value["x"] = 1
    # Each way into an array, each on an array not read before.
    ways = [
        lambda array: array[0],
        lambda array: next(iter(array)),
        lambda array: array[:1][0],
        lambda array: array.copy()[0],
        lambda array: pickle.loads(pickle.dumps(array))[0],
    ]
    for way in ways:
        subscriptions = seen_of("renewed_subscriptions")["renewed_subscriptions"]["subscriptions"]
        element = way(subscriptions)
        assert (
            element
            == make_callback("renewed_subscriptions")["renewed_subscriptions"]["subscriptions"][0]
        )
        if way is not ways[-1]:  # a pickled copy is a plain list of plain values
            with pytest.raises(TypeError, match="read-only"):
                element["cost"] = 1
    with pytest.raises(TypeError, match="read-only"):
        subscriptions.append({})
    editable = copy.deepcopy(raw)
    editable["sms_inbound"]["sms_inbound"]["sms_body"] = "edited"
    assert type(editable) is dict and raw == expected


def test_raw_reads_give_the_same_read_only_value_each_time() -> None:
    import pickle

    app = make_app()
    seen = listen(app)
    item = make_callback("renewed_subscriptions")
    app.test_client().post(ENDPOINT, json=make_batch(item, make_callback("sms_inbound")))
    raw, sms = seen[0].raw, seen[1].raw
    payload = raw["renewed_subscriptions"]
    assert raw["renewed_subscriptions"] is payload, "made read-only once, then kept"
    assert raw.get("renewed_subscriptions") is payload
    assert (raw.get("balance"), raw.get("missing", 5)) == (item["balance"], 5)
    values = list(sms.values())
    assert sms["sms_inbound"] is values[list(sms).index("sms_inbound")]
    assert sms["sms_inbound"] == make_callback("sms_inbound")["sms_inbound"]
    subscriptions = payload["subscriptions"]
    first = subscriptions[0]
    assert subscriptions[0] is first
    assert [element for element in subscriptions] == [first]
    copied = subscriptions.copy()
    assert type(copied) is list and copied == item["renewed_subscriptions"]["subscriptions"]
    restored = pickle.loads(pickle.dumps(subscriptions))
    assert type(restored) is list and restored == copied
    message = "a callback's raw item is read-only; copy.deepcopy() it to change it"
    for change in (lambda: raw.clear(), lambda: subscriptions.append(1)):
        with pytest.raises(TypeError) as refused:
            change()
        assert str(refused.value) == message


def test_a_receiver_that_edits_raw_and_raises_leaves_a_replayable_callback(
    store_url: str,
) -> None:
    app = make_app(VOXCALLBACKS_STORE=store_url)
    attempts: list[Any] = []

    def vandal(sender: Any, callback: Any, **kw: Any) -> None:
        attempts.append(callback.raw["min_balance"]["is_repeated"])
        if len(attempts) == 1:
            # Around the read-only view, straight through dict's own method.
            dict.__setitem__(callback.raw["min_balance"], "is_repeated", 999)
            raise RuntimeError("after editing")

    min_balance_reached.connect(vandal, app, weak=False)
    item = make_callback("min_balance")
    sent = item["min_balance"]["is_repeated"]
    assert app.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 500
    (kept,) = get_state(app).store.kept()
    assert kept.item["min_balance"]["is_repeated"] is sent
    replay = cli(app, "replay", "--all")
    assert replay.exit_code == 0, replay.output
    assert attempts == [sent, sent]
    # The redelivery of the original body is a duplicate, not a body mismatch.
    again = app.test_client().post(ENDPOINT, json=make_batch(item))
    assert again.status_code == 200 and again.get_json()["duplicates"] == 1


# -- exactly once per receiver ------------------------------------------------------------------


class Receivers:
    """Two receivers of min_balance_reached: ``mail`` always succeeds, ``crm`` fails while
    ``down``."""

    def __init__(self, app: Any) -> None:
        self.mails: list[int] = []
        self.crm: list[int] = []
        self.down = True
        min_balance_reached.connect(self.mail, app, weak=False)
        min_balance_reached.connect(self.update_crm, app, weak=False)

    def mail(self, sender: Any, callback: Any, **kw: Any) -> None:
        self.mails.append(callback.callback_id)

    def update_crm(self, sender: Any, callback: Any, **kw: Any) -> None:
        if self.down:
            raise ConnectionError("crm down")
        self.crm.append(callback.callback_id)


def test_a_redelivery_runs_only_the_receivers_that_failed(store_url: str) -> None:
    app = make_app(VOXCALLBACKS_STORE=store_url)
    receivers = Receivers(app)
    item = make_callback("min_balance")
    client = app.test_client()
    assert client.post(ENDPOINT, json=make_batch(item)).status_code == 500
    (kept,) = get_state(app).store.kept()
    assert kept.succeeded == ("min_balance:test_edges.Receivers.mail",)
    assert "min_balance:test_edges.Receivers.update_crm: ConnectionError: crm down" in kept.error
    listing = cli(app, "failed")
    assert "succeeded: min_balance:test_edges.Receivers.mail" in listing.output
    # Still down: the mail is not sent again, the record keeps it.
    assert client.post(ENDPOINT, json=make_batch(item)).status_code == 500
    assert get_state(app).store.kept()[0].succeeded == kept.succeeded
    receivers.down = False
    assert client.post(ENDPOINT, json=make_batch(item)).status_code == 200
    assert receivers.mails == [item["callback_id"]]
    assert receivers.crm == [item["callback_id"]]
    assert get_state(app).store.kept() == []


def test_a_replay_runs_only_the_receivers_that_failed(store_url: str) -> None:
    app = make_app(VOXCALLBACKS_STORE=store_url)
    receivers = Receivers(app)
    item = make_callback("min_balance")
    app.test_client().post(ENDPOINT, json=make_batch(item))
    receivers.down = False
    replay = cli(app, "replay", str(item["callback_id"]))
    assert replay.exit_code == 0, replay.output
    assert receivers.mails == receivers.crm == [item["callback_id"]]


def test_receivers_of_the_same_name_are_told_apart_by_their_order() -> None:
    from flask_voxcallbacks.dispatch import receiver_ids

    def make(n: int) -> Any:
        def receiver(sender: Any, **kw: Any) -> None:
            return None

        return receiver

    first, second = make(1), make(2)
    assert receiver_ids(min_balance_reached, [first, second, Receivers.mail]) == [
        "min_balance:test_edges.test_receivers_of_the_same_name_are_told_apart_by_their_order"
        ".<locals>.make.<locals>.receiver",
        "min_balance:test_edges.test_receivers_of_the_same_name_are_told_apart_by_their_order"
        ".<locals>.make.<locals>.receiver#2",
        "min_balance:test_edges.Receivers.mail",
    ]


def test_after_a_deploy_new_receivers_run_and_removed_ones_are_forgotten() -> None:
    app = make_app()
    receivers = Receivers(app)
    item = make_callback("min_balance")
    client = app.test_client()
    client.post(ENDPOINT, json=make_batch(item))
    # The failing receiver is removed and another one is added.
    min_balance_reached.disconnect(receivers.update_crm, app)
    audited = listen(app, min_balance_reached)
    assert client.post(ENDPOINT, json=make_batch(item)).status_code == 200
    assert receivers.mails == [item["callback_id"]] and ids(audited) == [item["callback_id"]]


def test_a_queued_callback_whose_job_retries_runs_only_the_receivers_that_failed(
    store_url: str,
) -> None:
    app = make_app(VOXCALLBACKS_QUEUE="celery", VOXCALLBACKS_STORE=store_url)
    from celery import Celery

    app.extensions["celery"] = Celery("edges", broker="memory://")
    receivers = Receivers(app)
    item = make_callback("min_balance")
    assert app.test_client().post(ENDPOINT, json=make_batch(item)).get_json()["queued"] == 1
    with app.app_context():
        assert run_job(app, item["account_id"], item["callback_id"]) == "failed"
        receivers.down = False
        assert run_job(app, item["account_id"], item["callback_id"]) == "accepted"
    assert receivers.mails == receivers.crm == [item["callback_id"]]


def test_a_queued_callback_that_cannot_be_built_fails_its_job_and_is_kept(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery import Celery

    from flask_voxcallbacks.payloads import CALLBACK_TYPES

    app = make_app(VOXCALLBACKS_QUEUE="celery", VOXCALLBACKS_STORE=store_url)
    app.extensions["celery"] = Celery("edges", broker="memory://")
    bad = poison()
    assert app.test_client().post(ENDPOINT, json=make_batch(bad)).get_json()["queued"] == 1

    def broken(data: Any, path: str = "") -> Any:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(CALLBACK_TYPES["call_history_report"].payload, "from_wire", broken)
    with app.app_context():
        assert run_job(app, bad["account_id"], bad["callback_id"]) == "failed"
    (kept,) = get_state(app).store.kept()
    assert not kept.queued and "could not be built" in kept.error


# -- namespaces and the account rule ------------------------------------------------------------


def two_apps(store_url: str, **b_config: Any) -> tuple[Any, Any]:
    """App A on the main account, app B on the child account, sharing ``store_url``."""
    a = make_app(VOXCALLBACKS_STORE=store_url, VOXCALLBACKS_ACCOUNTS={})
    b = make_app(
        VOXCALLBACKS_STORE=store_url,
        VOXCALLBACKS_ACCOUNT_ID=CHILD_ACCOUNT_ID,
        VOXCALLBACKS_API_KEY=CHILD_API_KEY,
        VOXCALLBACKS_SALT=CHILD_SALT,
        VOXCALLBACKS_ACCOUNTS={},
        **b_config,
    )
    return a, b


@pytest.mark.parametrize("namespaced", [False, True], ids=["accounts", "namespace"])
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_apps_sharing_a_store_never_list_replay_or_prune_each_others_callbacks(
    kind: str, namespaced: bool, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    store_url = (
        f"sqlite:///{tmp_path}/shared.db"
        if kind == "sqlite"
        else str(request.getfixturevalue("redis_url"))
    )
    a, b = two_apps(store_url, **({"VOXCALLBACKS_NAMESPACE": "billing"} if namespaced else {}))
    callback_received.connect(
        lambda sender, callback, **kw: (_ for _ in ()).throw(RuntimeError("a is down")),
        a,
        weak=False,
    )
    b_seen = listen(b)
    item = make_callback("sms_inbound", sms_body="private text")
    assert a.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 500
    listing = cli(b, "failed")
    assert "private text" not in listing.output and str(item["callback_id"]) not in listing.output
    assert "No failed or queued callbacks." in listing.output
    assert ("left untouched" in listing.output) is not namespaced
    replay = cli(b, "replay", "--all")
    assert replay.exit_code == 0 and b_seen == []
    prune = cli(b, "prune", "--older-than", "0")
    assert "Removed 0 failed callback(s)" in prune.output
    # A's callback is still A's to replay.
    (kept,) = get_state(a).store.kept()
    assert kept.callback_id == item["callback_id"]


def test_a_job_of_another_namespace_or_account_is_refused_and_left_queued(
    redis_url: str,
) -> None:
    a, b = two_apps(redis_url, VOXCALLBACKS_NAMESPACE="billing")
    for app in (a, b):
        app.config["TESTING"] = True
    item = make_callback("min_balance")
    store_a = get_state(a).store
    claim = store_a.claim(item["account_id"], item["callback_id"], "d", 300, 600)
    store_a.queue_many([(item["account_id"], item["callback_id"], claim.token, item)], 600)
    with b.app_context(), pytest.raises(JobRefused, match="namespace ''"):
        run_job(b, item["account_id"], item["callback_id"], "")
    b_plain = make_app(
        VOXCALLBACKS_STORE=redis_url,
        VOXCALLBACKS_ACCOUNT_ID=CHILD_ACCOUNT_ID,
        VOXCALLBACKS_API_KEY=CHILD_API_KEY,
        VOXCALLBACKS_SALT=CHILD_SALT,
        VOXCALLBACKS_ACCOUNTS={},
    )
    with b_plain.app_context(), pytest.raises(JobRefused, match="not configured for"):
        run_job(b_plain, item["account_id"], item["callback_id"], "")
    (kept,) = store_a.kept()
    assert kept.queued and kept.callback_id == item["callback_id"]


def test_the_namespace_names_the_redis_keys_the_sqlite_table_and_the_rq_queue(
    redis_url: str, tmp_path: Any
) -> None:
    import sqlite3

    import redis

    rq = "rq://" + redis_url[len("redis://") :]
    app = make_app(
        VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_NAMESPACE="billing", VOXCALLBACKS_QUEUE=rq
    )
    app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    client = redis.Redis.from_url(redis_url)
    keys = {key.decode() for key in client.keys("voxcallbacks:*")}
    client.close()
    assert keys and all(key.startswith("voxcallbacks:billing:") for key in keys)
    assert get_state(app).queue.queue.name == "voxcallbacks_billing"  # type: ignore[union-attr]
    sqlite_app = make_app(
        VOXCALLBACKS_STORE=f"sqlite:///{tmp_path}/vox.db", VOXCALLBACKS_NAMESPACE="billing"
    )
    sqlite_app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    db = sqlite3.connect(tmp_path / "vox.db")
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert tables == {"voxcallbacks_billing"}


@pytest.mark.parametrize("value", ["Billing", "a-b", "x" * 33, 5, "a b"])
def test_a_namespace_that_cannot_name_a_table_is_refused(value: Any) -> None:
    with pytest.raises(ConfigurationError) as refused:
        make_app(VOXCALLBACKS_NAMESPACE=value)
    assert str(refused.value) == (
        "VOXCALLBACKS_NAMESPACE must be lower-case letters, digits and _ (at most 32), such as"
        " 'billing'; or \"\" for none."
    )


# -- the smaller ones ---------------------------------------------------------------------------


def test_a_dedup_ttl_shorter_than_the_lease_is_refused() -> None:
    with pytest.raises(ConfigurationError) as refused:
        make_app(VOXCALLBACKS_DEDUP_TTL=60, VOXCALLBACKS_LEASE_SECONDS=300)
    assert str(refused.value) == (
        "VOXCALLBACKS_DEDUP_TTL (60 s) is shorter than VOXCALLBACKS_LEASE_SECONDS (300 s); a"
        " callback id must be remembered at least as long as a claim lasts: raise the TTL or"
        " lower the lease."
    )
    # As long as the lease is long enough.
    make_app(VOXCALLBACKS_DEDUP_TTL=300, VOXCALLBACKS_LEASE_SECONDS=300)


def test_a_new_redis_key_lives_at_least_as_long_as_its_lease(redis_url: str) -> None:
    from flask_voxcallbacks.store.redis import RedisStore

    store = RedisStore.from_url(redis_url)
    assert store.claim(1, 5, "d", lease_seconds=60, ttl=2).status == "claimed"
    assert store.client.pttl("voxcallbacks:cb:1:5") > 59_000
    store.close()


def test_a_number_that_overflows_to_infinity_is_refused(client: Any, seen: Any) -> None:
    item = make_callback("min_balance")
    body = json.dumps(make_batch(item)).replace('"balance": 4.5231', '"balance": 1e400')
    assert "1e400" in body
    response = client.post(ENDPOINT, data=body, content_type="application/json")
    assert response.status_code == 400
    assert "out of range" in response.get_json()["error"]
    assert seen.received == []


def test_the_memory_store_keeps_one_deadline_per_record() -> None:
    store = MemoryStore()
    for _ in range(5000):
        claim = store.claim(1, 5, "d", lease_seconds=300, ttl=600)
        store.fail(1, 5, claim.token, "boom", {"type": "min_balance"}, retention=3600)
    assert len(store._deadlines) <= 2
    claim = store.claim(1, 5, "d", lease_seconds=300, ttl=600)
    store.complete(1, 5, claim.token, ttl=600)
    assert len(store._deadlines) <= 2 and len(store._scheduled) == 1


@pytest.mark.parametrize("engine", ["celery", "rq"])
def test_a_broker_that_never_answers_gives_500_in_bounded_time_with_nothing_queued(
    engine: str, tmp_path: Any
) -> None:
    import time

    broker = SilentBroker()
    try:
        silent = f"127.0.0.1:{broker.port}/0"
        queue = "celery" if engine == "celery" else f"rq://{silent}"
        app = make_app(VOXCALLBACKS_STORE=f"sqlite:///{tmp_path}/vox.db", VOXCALLBACKS_QUEUE=queue)
        if engine == "celery":
            from celery import Celery

            app.extensions["celery"] = Celery("silent", broker=f"redis://{silent}")
        item = make_callback("min_balance")
        started = time.monotonic()
        response = app.test_client().post(ENDPOINT, json=make_batch(item))
        elapsed = time.monotonic() - started
        assert response.status_code == 500 and response.get_json()["failed"] == 1
        assert elapsed < 10, f"answered after {elapsed:.1f} s"
        assert broker.accepted, "the broker was never reached"
        assert get_state(app).store.kept() == []
    finally:
        broker.close()


@pytest.mark.subprocess
def test_a_malformed_chunked_body_under_gunicorn_is_a_400_with_one_log_line(
    tmp_path: Any,
) -> None:
    import socket

    from servers import BIN, free_port, start, stop

    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        server = start(
            [
                str(BIN / "gunicorn"),
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{port}",
                "example_app:create_app()",
            ],
            port,
            log,
        )
    try:
        request = (
            f"POST {ENDPOINT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            '5\r\n{"cal\r\nzz\r\nlbacks\r\n0\r\n\r\n'
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    finally:
        stop(server)
    status_line = answer.split(b"\r\n", 1)[0]
    assert b" 400 " in status_line, answer[:300]
    assert b"could not be read" in answer
    text = log_path.read_text()
    assert "Traceback" not in text
    assert text.count("batch refused: the request body could not be read") == 1


def test_the_documented_idempotent_receiver_sends_once_when_a_callback_runs_twice(
    tmp_path: Any,
) -> None:
    from servers import ROOT

    sys_path = str(ROOT / "docs" / "examples")
    import sys

    sys.path.insert(0, sys_path)
    try:
        import idempotent_receiver
    finally:
        sys.path.remove(sys_path)
    item = make_callback("min_balance")
    idempotent_receiver.sent.clear()
    try:
        # Two processes' memory stores: the second has forgotten the first one's done marker, as
        # when a worker dies before recording it.
        for _ in range(2):
            app = make_app(ALERTS_DATABASE=str(tmp_path / "alerts.db"))
            idempotent_receiver.connect(app)
            assert app.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 200
    finally:
        min_balance_reached.disconnect(idempotent_receiver.on_low_balance)
    assert idempotent_receiver.sent == [item["callback_id"]]


def test_an_rq_worker_of_another_application_neither_runs_nor_drops_its_jobs(
    redis_url: str,
) -> None:
    import dataclasses

    from rq import SimpleWorker
    from rq.registry import FailedJobRegistry

    base = "rq://" + redis_url[len("redis://") :].rsplit("/", 1)[0] + "/1"
    # A on its own default queue, B on a queue named alike by mistake: the jobs carry their
    # namespace, and B's worker refuses A's.
    a, b = two_apps(redis_url, VOXCALLBACKS_NAMESPACE="billing")
    for app, queue in ((a, f"{base}?queue=shared"), (b, f"{base}?queue=shared")):
        state = get_state(app)
        from flask_voxcallbacks.queue import open_queue

        # No retries: the refused job goes straight to RQ's failed jobs.
        settings = dataclasses.replace(state.settings, queue_retries=0)
        app.extensions["voxcallbacks"] = type(state)(
            settings, state.store, open_queue(queue, app, settings.namespace)
        )
    a_seen = listen(a)
    item = make_callback("min_balance")
    assert a.test_client().post(ENDPOINT, json=make_batch(item)).get_json()["queued"] == 1
    b_queue = get_state(b).queue
    with b.app_context():
        worker = SimpleWorker([b_queue.queue], connection=b_queue.connection)  # type: ignore[union-attr]
        worker.work(burst=True)
    failed = FailedJobRegistry(queue=b_queue.queue)  # type: ignore[union-attr]
    assert len(failed) == 1
    job = b_queue.queue.fetch_job(failed.get_job_ids()[0])  # type: ignore[union-attr]
    assert "JobRefused" in (job.latest_result().exc_string or "")
    (kept,) = get_state(a).store.kept()
    assert kept.queued and a_seen == []
    # A's replay runs it.
    replay = cli(a, "replay", str(item["callback_id"]))
    assert replay.exit_code == 0, replay.output
    assert ids(a_seen) == [item["callback_id"]]


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_the_receivers_that_succeeded_are_remembered_across_a_restart(
    kind: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    store_url = (
        f"sqlite:///{tmp_path}/vox.db"
        if kind == "sqlite"
        else str(request.getfixturevalue("redis_url"))
    )
    item = make_callback("min_balance")
    before = make_app(VOXCALLBACKS_STORE=store_url)
    first = Receivers(before)
    assert before.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 500
    get_state(before).store.close()
    # A new process: a new application and a new connection to the same store.
    after = make_app(VOXCALLBACKS_STORE=store_url)
    second = Receivers(after)
    second.down = False
    assert after.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 200
    assert first.mails == [item["callback_id"]] and second.mails == []
    assert second.crm == [item["callback_id"]]
    assert after.test_client().post(ENDPOINT, json=make_batch(item)).get_json()["duplicates"] == 1
