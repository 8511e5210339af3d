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


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.name == "flask_voxcallbacks"
    ]


def test_a_callback_that_cannot_be_built_is_logged_and_kept_as_failed(
    monkeypatch: pytest.MonkeyPatch, vox_log: pytest.LogCaptureFixture
) -> None:
    def broken(self: Arrival) -> Any:
        raise RuntimeError("x" * 400)

    monkeypatch.setattr(Arrival, "callback", broken)
    app = make_app()
    item = make_callback("min_balance")
    assert app.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 500
    cid, account = item["callback_id"], item["account_id"]
    message = "RuntimeError: " + "x" * 286  # cut to 300 characters
    assert (
        "ERROR",
        f"callback {cid} type=min_balance account={account} cannot be built ({message});"
        " it is kept as failed",
    ) in _lines(vox_log)
    (kept,) = get_state(app).store.kept()
    assert kept.error == "the callback could not be built: see the log"


def test_the_summary_line_names_the_first_five_callbacks_and_counts_the_others(
    vox_log: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    items = [make_callback("min_balance", callback_id=n) for n in range(1, 8)]

    def fail(sender: Any, callback: Any, **extra: Any) -> None:
        raise ConnectionError("down")

    with callback_received.connected_to(fail, app):
        app.test_client().post(ENDPOINT, json=make_batch(*items))
    assert ("WARNING", "batch of 7: 7 failed (callback 1, 2, 3, 4, 5 and 2 more)") in _lines(
        vox_log
    )
    vox_log.clear()
    with callback_received.connected_to(fail, app):
        app.test_client().post(ENDPOINT, json=make_batch(*items[:6]))
    assert ("WARNING", "batch of 6: 6 failed (callback 1, 2, 3, 4, 5 and 1 more)") in _lines(
        vox_log
    )
    vox_log.clear()
    with callback_received.connected_to(fail, app):
        app.test_client().post(ENDPOINT, json=make_batch(*items[:5]))
    assert ("WARNING", "batch of 5: 5 failed (callback 1, 2, 3, 4, 5)") in _lines(vox_log)


def test_a_batch_of_duplicates_only_is_an_info_line_and_with_more_a_warning(
    vox_log: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    done = make_callback("min_balance")
    client = app.test_client()
    client.post(ENDPOINT, json=make_batch(done))
    vox_log.clear()
    client.post(ENDPOINT, json=make_batch(done))
    assert ("INFO", "batch of 1: 1 duplicate(s)") in _lines(vox_log)
    vox_log.clear()
    forged = {**make_callback("min_balance"), "hash": "0" * 32}
    client.post(ENDPOINT, json=make_batch(done, forged))
    levels = [level for level, line in _lines(vox_log) if line.startswith("batch of 2:")]
    assert levels == ["WARNING"]


def test_an_account_named_by_a_forged_item_is_cut_to_40_characters_in_the_log(
    vox_log: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    forged = {**make_callback("min_balance"), "account_id": "7" * 60}
    app.test_client().post(ENDPOINT, json=make_batch(forged))
    (line,) = [line for _, line in _lines(vox_log) if line.startswith("batch of 1:")]
    assert f"from account {'7' * 40})" in line and "7" * 41 not in line


def test_a_failure_the_store_cannot_record_is_logged_with_its_callback(
    monkeypatch: pytest.MonkeyPatch, vox_log: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    store = get_state(app).store

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("store down")

    monkeypatch.setattr(store, "fail", refuse)
    item = make_callback("min_balance")

    def fail(sender: Any, callback: Any, **extra: Any) -> None:
        raise RuntimeError("crm down")

    with callback_received.connected_to(fail, app):
        assert app.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 500
    assert (
        "ERROR",
        f"store error while recording the failure of callback {item['callback_id']}",
    ) in _lines(vox_log)


def test_a_replay_that_fails_again_is_a_warning_naming_the_callback(
    vox_log: pytest.LogCaptureFixture,
) -> None:
    from flask_voxcallbacks import job_started

    app = make_app()
    item = make_callback("min_balance")

    def fail(sender: Any, callback: Any, **extra: Any) -> None:
        raise RuntimeError("crm down")

    started: list[dict[str, Any]] = []
    with callback_received.connected_to(fail, app), job_started.connected_to(
        lambda sender, **extra: started.append(extra), app
    ):
        app.test_client().post(ENDPOINT, json=make_batch(item))
        (kept,) = get_state(app).store.kept()
        vox_log.clear()
        with app.app_context():
            outcome = handling.handle_kept(app, get_state(app), kept, replay=True)
    assert outcome == "failed"
    assert started[0]["kept_at"] == kept.kept_at and started[0]["replay"] is True
    cid, account = item["callback_id"], item["account_id"]
    assert ("WARNING", f"callback {cid} type=min_balance account={account} failed") in _lines(
        vox_log
    )
    vox_log.clear()
    ok = make_app()
    with ok.app_context(), callback_received.connected_to(lambda sender, **extra: None, ok):
        assert handling.handle_kept(ok, get_state(ok), kept, replay=True) == "accepted"
    assert ("INFO", f"callback {cid} type=min_balance account={account} accepted") in _lines(
        vox_log
    )
    assert not [line for level, line in _lines(vox_log) if level == "WARNING"]


def test_kept_callbacks_of_other_accounts_are_named_in_one_warning(
    vox_log: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    store = get_state(app).store
    claim = store.claim(999, 1, "d", 60, 60)
    store.fail(999, 1, claim.token, "boom", {"type": "min_balance"}, 60)
    mine, others = handling.kept_callbacks(get_state(app))
    assert (mine, others) == ([], 1)
    assert (
        "WARNING",
        "1 failed or queued callback(s) of accounts this application is not configured for are"
        " left untouched: another application shares this store; give each its own"
        " VOXCALLBACKS_NAMESPACE",
    ) in _lines(vox_log)


def test_a_job_of_another_application_is_refused_with_a_message_saying_why() -> None:
    from flask_voxcallbacks.queue import JobRefused

    app = make_app(VOXCALLBACKS_NAMESPACE="billing")
    where = "the job of callback 5 (account 1234567)"
    cases = [
        (
            {"account_id": 1234567, "namespace": "crm"},
            f"{where} belongs to the namespace 'crm', and this worker's application has"
            " VOXCALLBACKS_NAMESPACE = 'billing': give each application its own queue",
        ),
        (
            {"account_id": 42, "namespace": "billing"},
            "the job of callback 5 (account 42) belongs to an account this worker's application"
            " is not configured for: give each application its own queue"
            " (VOXCALLBACKS_NAMESPACE)",
        ),
        (
            {"account_id": 1234567, "namespace": "billing", "store": "sqlite:////elsewhere.db"},
            f"{where} was queued by an application whose store is sqlite:////elsewhere.db, and"
            f" this worker's store is {get_state(app).store.identity}: start the worker with the"
            " web application's VOXCALLBACKS_STORE",
        ),
    ]
    for arguments, message in cases:
        with app.app_context(), pytest.raises(JobRefused) as refused:
            handling.run_job(app, callback_id=5, **arguments)  # type: ignore[arg-type]
        assert str(refused.value) == message


def test_a_queued_callback_keeps_no_trace_context_without_tracing(redis_url: str) -> None:
    rq_url = "rq://" + redis_url[len("redis://") :].rsplit("/", 1)[0] + "/1?queue=vox-notrace"
    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=rq_url)
    item = make_callback("min_balance")
    assert app.test_client().post(ENDPOINT, json=make_batch(item)).get_json()["queued"] == 1
    (kept,) = get_state(app).store.kept()
    assert (kept.queued, kept.trace) == (True, "")


def test_completions_are_recorded_once_record_every_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Exactly RECORD_EVERY after the last recording is late enough."""
    now = [0.0]
    monkeypatch.setattr(handling, "clock", lambda: now[0])
    app = make_app(VOXCALLBACKS_STORE="memory://")
    store = get_state(app).store
    items = [make_callback("min_balance") for _ in range(2)]
    done_before: list[bool] = []

    def exact(sender: Any, callback: Any, **extra: Any) -> None:
        first = items[0]
        claim = store.claim(first["account_id"], first["callback_id"], body_digest(first), 60, 60)
        done_before.append(claim.status == DONE)
        now[0] += RECORD_EVERY

    with callback_received.connected_to(exact, sender=app):
        arrivals = [Arrival(dict(i), i["account_id"], i["callback_id"], i["type"]) for i in items]
        with app.app_context():
            assert handle_batch(app, get_state(app), arrivals) == ["accepted"] * 2
    assert done_before == [False, True]


def test_a_store_error_while_recording_completions_is_logged_and_the_batch_accepted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The handlers ran: the batch is answered as accepted (a redelivery would run them again),
    and one line says how many callbacks stay claimed until their lease ends."""
    app = make_app(VOXCALLBACKS_STORE="memory://")
    store = get_state(app).store

    def broken(claimed: Any, ttl: int) -> None:
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(store, "complete_many", broken)
    caplog.set_level(logging.ERROR, logger="flask_voxcallbacks")
    items = [make_callback("min_balance") for _ in range(2)]
    answer = app.test_client().post(ENDPOINT, json=make_batch(*items))
    assert answer.status_code == 200 and answer.get_json()["accepted"] == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line == (
        "store error while recording 2 handled callback(s) as done; they are answered as"
        " accepted, and stay claimed until their lease ends"
    )


def test_the_summary_line_names_each_kind_of_unfinished_callback(
    vox_log: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    failing = make_callback("min_balance", callback_id=11)
    busy = make_callback("sms_inbound", callback_id=12)
    store = get_state(app).store
    store.claim(busy["account_id"], 12, body_digest(busy), 60, 60)  # running elsewhere

    def fail(sender: Any, callback: Any, **extra: Any) -> None:
        raise ConnectionError("crm down")

    with callback_received.connected_to(fail, app):
        app.test_client().post(ENDPOINT, json=make_batch(failing, busy))
    assert (
        "WARNING",
        "batch of 2: 1 failed (callback 11), 1 in progress (callback 12)",
    ) in _lines(vox_log)
