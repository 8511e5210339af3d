"""Signals: names, sender, keywords, order and handler isolation."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from helpers import ENDPOINT, make_app

import flask_voxcallbacks
from flask_voxcallbacks import (
    CALLBACK_TYPES,
    callback_received,
    callback_rejected,
    min_balance_reached,
    payloads,
    signal_for,
    signals,
    sms_received,
)
from flask_voxcallbacks.testing import make_batch, make_callback


def test_one_signal_per_known_type_and_all_exported() -> None:
    by_type = signals.type_signals()
    assert set(by_type) == set(CALLBACK_TYPES)
    names = payloads.signal_names()
    assert len(set(names.values())) == len(CALLBACK_TYPES)
    for type_name, name in names.items():
        assert getattr(flask_voxcallbacks, name) is signal_for(type_name)
        assert name in flask_voxcallbacks.__all__
    # Each type's signal is declared with its payload class; signals.py holds the machinery and
    # the signals of every callback.
    assert set(payloads.__all__) >= set(names.values())
    assert set(signals.__all__) == {
        "CallbackSignal",
        "Receiver",
        "VoxSignal",
        "callback_received",
        "callback_rejected",
        "callback_duplicate",
        "callback_completed",
        "callback_failed",
        "callback_in_progress",
        "callback_queued",
        "job_started",
        "signal_for",
        "type_signal",
        "type_signals",
    }


def test_readable_names() -> None:
    assert min_balance_reached is signal_for("min_balance")
    assert sms_received is signal_for("sms_inbound")
    assert min_balance_reached.name == "min_balance"


def test_sender_is_the_app_and_keyword_is_callback(app, client) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append((sender, kwargs))

    with min_balance_reached.connected_to(receiver):
        client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    ((sender, kwargs),) = calls
    assert sender is app
    assert set(kwargs) == {"callback"}
    assert kwargs["callback"].type == "min_balance"


def test_receivers_connected_to_another_app_are_not_called(app, client) -> None:
    other = make_app()
    calls: list[Any] = []
    mine: list[Any] = []
    with (
        callback_received.connected_to(lambda sender, callback: calls.append(callback), other),
        callback_received.connected_to(lambda sender, callback: mine.append(callback), app),
    ):
        client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert calls == []
    assert [c.type for c in mine] == ["min_balance"], "the app's own receiver ran"


def test_type_signal_then_callback_received(client) -> None:
    order: list[str] = []
    with (
        min_balance_reached.connected_to(lambda s, callback: order.append("type")),
        callback_received.connected_to(lambda s, callback: order.append("any")),
    ):
        client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert order == ["type", "any"]


def test_a_failing_receiver_does_not_stop_others_nor_the_batch(app, client, vox_log) -> None:
    seen: list[int] = []

    def explode(sender: Any, callback: Any) -> None:
        if callback.type == "min_balance":
            raise ValueError("boom")

    def record(sender: Any, callback: Any) -> None:
        seen.append(callback.callback_id)

    first, second = make_callback("min_balance"), make_callback("sms_inbound")
    with min_balance_reached.connected_to(explode), callback_received.connected_to(record):
        response = client.post(ENDPOINT, json=make_batch(first, second))
    assert response.status_code == 500
    assert response.get_json()["failed"] == 1
    assert response.get_json()["accepted"] == 1
    assert seen == [first["callback_id"], second["callback_id"]]
    failure = next(r for r in vox_log.records if r.exc_info)
    assert "boom" in vox_log.text and failure.exc_info[0] is ValueError


def build_app_with_receivers(style: str, calls: list[str]) -> Any:
    """An app factory connecting a closure, as a host application's factory does."""
    app = make_app()

    if style == "connect":

        def on_low_balance(sender: Any, callback: Any, **extra: Any) -> None:
            calls.append(style)

        min_balance_reached.connect(on_low_balance)
    elif style == "decorator":

        @min_balance_reached.connect
        def on_low_balance(sender: Any, callback: Any, **extra: Any) -> None:
            calls.append(style)
    elif style == "connect_sender":
        min_balance_reached.connect(lambda sender, callback: calls.append(style), sender=app)
    else:

        @min_balance_reached.connect_via(app)
        def on_low_balance(sender: Any, callback: Any, **extra: Any) -> None:
            calls.append(style)

    return app


@pytest.mark.parametrize("style", ["connect", "decorator", "connect_sender", "connect_via"])
def test_receivers_connected_in_a_factory_survive_garbage_collection(style: str) -> None:
    calls: list[str] = []
    app = build_app_with_receivers(style, calls)
    gc.collect()
    try:
        response = app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
        assert response.status_code == 200
        assert calls == [style], "the receiver connected in the factory ran"
    finally:
        for receiver in list(min_balance_reached.receivers.values()):
            min_balance_reached.disconnect(receiver)  # type: ignore[arg-type]


def test_weak_receivers_only_when_asked_for() -> None:
    app = make_app()
    calls: list[int] = []
    min_balance_reached.connect(lambda sender, callback: calls.append(1), sender=app, weak=True)
    gc.collect()
    app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert calls == []


def test_a_callback_no_receiver_takes_is_a_warning(client, vox_log) -> None:
    item = make_callback("card_expired")
    response = client.post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 200
    warnings = [r.getMessage() for r in vox_log.records if r.levelname == "WARNING"]
    assert warnings == [
        f"callback {item['callback_id']} type=card_expired has no receiver: connect one to its"
        " signal or to callback_received; it is marked handled"
    ]


def test_no_warning_when_a_receiver_takes_it(app, client, vox_log) -> None:
    with callback_received.connected_to(lambda sender, callback: None, sender=app):
        client.post(ENDPOINT, json=make_batch(make_callback("card_expired")))
    assert not [r for r in vox_log.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("catch_all", ["this app", "another app"])
def test_no_warning_when_the_type_signal_takes_it(app, client, vox_log, catch_all: str) -> None:
    """Receivers of the type's signal count with those of callback_received, whoever those
    listen to."""
    other = make_app()
    sender = app if catch_all == "this app" else other
    ran: list[str] = []
    with (
        min_balance_reached.connected_to(lambda sender, callback: ran.append("type"), app),
        callback_received.connected_to(lambda sender, callback: ran.append("all"), sender),
    ):
        client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert ran == (["type", "all"] if catch_all == "this app" else ["type"])
    assert not [r for r in vox_log.records if r.levelname == "WARNING"]


def test_a_failing_receiver_does_not_stop_the_next_one_of_the_same_signal(app, client) -> None:
    calls: list[str] = []

    def first(sender: Any, callback: Any, **extra: Any) -> None:
        calls.append("first")
        raise RuntimeError("first fails")

    def second(sender: Any, callback: Any, **extra: Any) -> None:
        calls.append("second")

    with (
        min_balance_reached.connected_to(first, sender=app),
        min_balance_reached.connected_to(second, sender=app),
    ):
        response = client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert sorted(calls) == ["first", "second"]
    assert response.status_code == 500 and response.get_json()["failed"] == 1


def test_the_documented_async_receiver_runs(app, client) -> None:
    import sys

    from servers import ROOT

    sys.path.insert(0, str(ROOT / "docs" / "examples"))
    try:
        import async_receiver
    finally:
        sys.path.pop(0)
    async_receiver.replies.clear()
    async_receiver.connect(app)
    try:
        response = client.post(ENDPOINT, json=make_batch(make_callback("sms_inbound")))
    finally:
        sms_received.disconnect(async_receiver.reply_to_sms)
    assert response.status_code == 200 and response.get_json()["accepted"] == 1
    assert async_receiver.replies == ["447700900123"]


def test_a_failing_receiver_of_callback_rejected_changes_no_answer(app, client, vox_log) -> None:
    calls: list[str] = []

    def broken(sender: Any, callback: Any, reason: str, **extra: Any) -> None:
        calls.append(reason)
        raise RuntimeError("alerting is down")

    with callback_rejected.connected_to(broken, sender=app):
        response = client.post(ENDPOINT, json=make_batch(make_callback("js_fail", salt="x")))
    assert response.status_code == 403 and response.get_json()["rejected"] == 1
    assert calls == ["hash_mismatch"]
    name = "test_signals.test_a_failing_receiver_of_callback_rejected_changes_no_answer"
    failures = [r for r in vox_log.records if r.exc_info]
    assert [r.getMessage() for r in failures] == [
        f"receiver {name}.<locals>.broken of callback_rejected failed"
    ]


def test_lifecycle_signals_tell_completed_failed_and_replayed_callbacks_apart() -> None:
    from flask_voxcallbacks import callback_completed, callback_failed, job_started

    app = make_app()
    events: list[tuple[str, Any]] = []
    broken = [True]

    def on_sms(sender: Any, callback: Any, **extra: Any) -> None:
        if broken[0]:
            raise ConnectionError("crm down api_key=" + "s3cr3t")

    def on_completed(sender: Any, callback: Any, duration: float, **extra: Any) -> None:
        assert duration >= 0
        events.append(("completed", callback.callback_id))

    def on_failed(sender: Any, **extra: Any) -> None:
        events.append(("failed", (extra["callback_id"], extra["type"], extra["errors"])))

    def on_started(sender: Any, **extra: Any) -> None:
        events.append(("started", (extra["callback_id"], extra["replay"])))

    def raising(sender: Any, **extra: Any) -> None:
        raise RuntimeError("a metrics backend that is down")

    low, sms = make_callback("min_balance"), make_callback("sms_inbound")
    with (
        flask_voxcallbacks.sms_received.connected_to(on_sms, sender=app),
        callback_completed.connected_to(on_completed, sender=app),
        callback_completed.connected_to(raising, sender=app),
        callback_failed.connected_to(on_failed, sender=app),
        job_started.connected_to(on_started, sender=app),
    ):
        response = app.test_client().post(ENDPOINT, json=make_batch(low, sms))
        assert response.get_json()["accepted"] == 1 and response.get_json()["failed"] == 1
        broken[0] = False
        result = app.test_cli_runner().invoke(args=["voxcallbacks", "replay", "--all"])
        assert result.exit_code == 0, result.output
    (error,) = events[1][1][2]
    assert error.startswith("sms_inbound:test_signals.") and "ConnectionError: crm down" in error
    assert "s3cr3t" not in error
    assert events == [
        ("completed", low["callback_id"]),
        ("failed", (sms["callback_id"], "sms_inbound", (error,))),
        ("started", (sms["callback_id"], True)),
        ("completed", sms["callback_id"]),
    ]


def test_receiver_names_of_functions_methods_and_callable_objects() -> None:
    from flask_voxcallbacks.dispatch import receiver_name

    class Handler:
        def on_callback(self, sender: Any, **extra: Any) -> None:
            pass

        def __call__(self, sender: Any, **extra: Any) -> None:
            pass

    def anonymous(sender: Any, **extra: Any) -> None:
        pass

    anonymous.__module__ = None  # type: ignore[assignment]
    here = f"{__name__}.test_receiver_names_of_functions_methods_and_callable_objects.<locals>"
    assert receiver_name(Handler().on_callback) == f"{here}.Handler.on_callback"
    assert receiver_name(Handler()) == f"{here}.Handler"
    assert receiver_name(anonymous) == "?" + here[len(__name__) :] + ".anonymous"


def test_dispatch_reports_no_error_and_no_receiver_to_remember_when_all_succeed() -> None:
    from flask_voxcallbacks.callbacks import build_callback
    from flask_voxcallbacks.dispatch import Dispatched, dispatch

    app = make_app()
    item = make_callback("min_balance")
    callback = build_callback(item, item["callback_id"], item["account_id"], "min_balance")
    with callback_received.connected_to(lambda sender, **extra: None, app):
        assert dispatch(app, callback) == Dispatched([], ())


def test_callback_in_progress_tells_the_application_of_a_callback_busy_elsewhere() -> None:
    from flask_voxcallbacks import callback_in_progress
    from flask_voxcallbacks.pinning import body_digest
    from flask_voxcallbacks.state import get_state

    app = make_app()
    item = make_callback("min_balance")
    store = get_state(app).store
    store.claim(item["account_id"], item["callback_id"], body_digest(item), 60, 60)  # elsewhere
    told: list[tuple[Any, Any, Any]] = []

    def on_busy(sender: Any, **extra: Any) -> None:
        told.append((sender, extra["callback_id"], extra["type"]))

    with callback_in_progress.connected_to(on_busy, sender=app):
        response = app.test_client().post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 503
    assert told == [(app, item["callback_id"], "min_balance")]
