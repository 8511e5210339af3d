"""Signals: names, sender, keywords, order and handler isolation."""

from __future__ import annotations

from typing import Any

from conftest import ENDPOINT, make_app

import flask_voxcallbacks
from flask_voxcallbacks import (
    CALLBACK_TYPES,
    callback_received,
    min_balance_reached,
    signal_for,
    signals,
    sms_received,
)
from flask_voxcallbacks.testing import make_batch, make_callback


def test_one_signal_per_known_type_and_all_exported() -> None:
    by_type = signals.type_signals()
    assert set(by_type) == set(CALLBACK_TYPES)
    names = signals.signal_names()
    assert len(set(names.values())) == 46
    for type_name, name in names.items():
        assert getattr(flask_voxcallbacks, name) is signal_for(type_name)
        assert name in flask_voxcallbacks.__all__
    assert set(signals.__all__) == {
        *names.values(),
        "callback_received",
        "callback_rejected",
        "callback_duplicate",
        "signal_for",
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


def test_receivers_connected_to_another_app_are_not_called(client) -> None:
    other = make_app()
    calls: list[Any] = []
    with callback_received.connected_to(lambda sender, callback: calls.append(callback), other):
        client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert calls == []


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
