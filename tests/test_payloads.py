"""payloads.py: every known type round-trips through the endpoint with all of its fields typed;
older shapes of some types are read, and a payload that cannot be read is flagged."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from helpers import ENDPOINT

from flask_voxcallbacks import CALLBACK_TYPES, UnknownPayload, signal_for
from flask_voxcallbacks.callbacks import build_callback
from flask_voxcallbacks.fields import FieldSpec, Record
from flask_voxcallbacks.registry import CURRENT, DEPRECATED, LEGACY
from flask_voxcallbacks.testing import make_batch, make_callback

SCALAR_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "integer or string": (int, str),
    "decimal": Decimal,
    "boolean": bool,
    "date": date,
}


def assert_typed(value: Any, spec: FieldSpec, where: str) -> None:
    assert value is not None, f"{where} is None"
    if spec.kind == "timestamp":
        assert isinstance(value, datetime), where
        assert value.utcoffset() == timedelta(0), where
    elif spec.item_type is not None:
        assert isinstance(value, tuple) and value, where
        for index, element in enumerate(value):
            assert_record(element, spec.item_type, f"{where}[{index}]")
    elif spec.kind.startswith("list of "):
        assert isinstance(value, tuple) and value, where
        element_type = SCALAR_TYPES[spec.kind[len("list of ") :]]
        assert all(isinstance(element, element_type) for element in value), where
    else:
        assert isinstance(value, SCALAR_TYPES[spec.kind]), where
        if spec.kind == "integer":
            assert not isinstance(value, bool), where


def assert_record(record: Any, cls: type[Record], where: str) -> None:
    assert type(record) is cls, where
    for name, spec in cls.wire_fields():
        assert_typed(getattr(record, name), spec, f"{where}.{name}")


def test_the_catalogue_has_the_46_types_of_the_protocol_and_classification_complete() -> None:
    statuses = [spec.status for spec in CALLBACK_TYPES.values()]
    assert len(CALLBACK_TYPES) == 47
    assert statuses.count(CURRENT) == 37
    assert statuses.count(DEPRECATED) == 3
    assert statuses.count(LEGACY) == 7, "the six of the protocol notes and classification_complete"
    nested = {name for name, spec in CALLBACK_TYPES.items() if spec.nested}
    assert nested == {
        "sms_inbound",
        "transcription_complete",
        "phone_number_activation_status_changed",
        "new_invoice",
        "classification_complete",
    }


@pytest.mark.parametrize("type_name", sorted(CALLBACK_TYPES))
def test_type_round_trips_with_every_field_typed(client, seen, type_name: str) -> None:
    per_type: list[Any] = []
    item = make_callback(type_name)
    with signal_for(type_name).connected_to(lambda sender, callback: per_type.append(callback)):
        response = client.post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 200, response.get_json()
    (callback,) = seen.received
    assert per_type == [callback]
    assert callback.type == type_name
    assert callback.known
    assert callback.invalid_fields == ()
    assert callback.raw == {key: value for key, value in item.items() if key != "hash"}
    assert_record(callback.payload, CALLBACK_TYPES[type_name].payload, type_name)
    assert callback.account_name == "acmecorp"
    assert callback.balance == Decimal("4.5231")


@pytest.mark.parametrize("type_name", sorted(CALLBACK_TYPES))
def test_missing_payload_gives_none_fields(client, seen, type_name: str) -> None:
    item = make_callback(type_name)
    del item[type_name]
    assert client.post(ENDPOINT, json=make_batch(item)).status_code == 200
    (callback,) = seen.received
    assert callback.invalid_fields == ()
    for name, _ in CALLBACK_TYPES[type_name].payload.wire_fields():
        assert getattr(callback.payload, name) is None


@pytest.mark.parametrize("shape", [{}, None, True])
def test_types_without_fields_accept_any_payload_shape(client, seen, shape: Any) -> None:
    item = make_callback("account_is_frozen", payload={})
    item["account_is_frozen"] = shape
    assert client.post(ENDPOINT, json=make_batch(item)).status_code == 200
    assert seen.received[0].type == "account_is_frozen"
    assert seen.received[0].invalid_fields == ()


@pytest.mark.parametrize(
    "type_name", ["sms_inbound", "transcription_complete", "phone_number_activation_status_changed"]
)
def test_double_nesting_is_optional(client, seen, type_name: str) -> None:
    nested = make_callback(type_name)
    flat = make_callback(type_name)
    flat[type_name] = flat[type_name][type_name]
    assert client.post(ENDPOINT, json=make_batch(nested, flat)).status_code == 200
    first, second = seen.received
    assert first.payload == second.payload
    assert first.invalid_fields == second.invalid_fields == ()


def test_unknown_type_is_dispatched_as_generic_payload(client, seen) -> None:
    item = make_callback("hologram_call_started", payload={"room": 12})
    response = client.post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 200
    (callback,) = seen.received
    assert not callback.known
    assert callback.payload == UnknownPayload({"hologram_call_started": {"room": 12}})
    with pytest.raises(KeyError, match="hologram_call_started"):
        signal_for("hologram_call_started")


def test_money_is_exact_decimal_from_numbers_and_strings(client, seen) -> None:
    item = make_callback("invoice_received", amount="100.10", tax_amount=20.02, balance=0.1)
    assert client.post(ENDPOINT, json=make_batch(item)).status_code == 200
    (callback,) = seen.received
    assert callback.payload.amount == Decimal("100.10")
    assert callback.payload.tax_amount == Decimal("20.02")
    assert callback.balance == Decimal("0.1")


def test_numbers_as_strings_and_uuid_batch_ids(client, seen) -> None:
    uuid = "5b0c5a1e-9f3e-4a44-9d1e-2d4cbbd0f001"
    items = [
        make_callback("batch_task_cancelling_completed", batch_id=uuid, cancelled_tasks_number="3"),
        make_callback("batch_task_cancelling_completed", batch_id=77),
    ]
    assert client.post(ENDPOINT, json=make_batch(*items)).status_code == 200
    first, second = seen.received
    assert first.payload.batch_id == uuid
    assert first.payload.cancelled_tasks_number == 3
    assert second.payload.batch_id == 77


def test_timestamps_are_utc_and_empty_strings_are_none(client, seen) -> None:
    items = [
        make_callback("call_history_report", order_date="2025-01-02 03:04:05"),
        make_callback("call_history_report", order_date=""),
        make_callback("expiring_agreement", expiration_date=""),
    ]
    assert client.post(ENDPOINT, json=make_batch(*items)).status_code == 200
    first, second, third = seen.received
    assert first.payload.order_date.isoformat() == "2025-01-02T03:04:05+00:00"
    assert second.payload.order_date is None
    assert third.payload.expiration_date is None
    assert first.invalid_fields == second.invalid_fields == third.invalid_fields == ()


def test_malformed_values_become_none_and_are_named(client, seen) -> None:
    item = make_callback(
        "renewed_subscriptions",
        balance="lots",
        account_name=["not", "a", "string"],
        subscriptions=[
            {"type": "PHONE_NUM", "cost": "free", "next_renewal": "tomorrow"},
            "not an object",
            {"details": {"type": "PHONE"}},
        ],
    )
    response = client.post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 200
    (callback,) = seen.received
    assert callback.balance is None
    assert callback.account_name is None
    first, second = callback.payload.subscriptions
    assert first.type == "PHONE_NUM"
    assert first.cost is None and first.next_renewal is None
    assert second.details is None
    assert set(callback.invalid_fields) == {
        "account_name",
        "balance",
        "renewed_subscriptions.subscriptions[0].cost",
        "renewed_subscriptions.subscriptions[0].next_renewal",
        "renewed_subscriptions.subscriptions[1]",
        "renewed_subscriptions.subscriptions[2].details",
    }
    assert callback.raw["balance"] == "lots"


def test_payload_of_wrong_shape_is_flagged(client, seen) -> None:
    item = make_callback("min_balance", payload={})
    item["min_balance"] = "yes"
    assert client.post(ENDPOINT, json=make_batch(item)).status_code == 200
    (callback,) = seen.received
    assert callback.payload.is_min_credit is None
    assert callback.invalid_fields == ("min_balance",)


@pytest.mark.parametrize(
    ("type_name", "payload"),
    [
        ("min_balance", {}),  # a type with fields, none of them sent
        ("account_is_frozen", {"note": "kept in raw"}),  # a type without fields, keys sent anyway
    ],
)
def test_payloads_that_can_be_read_are_not_flagged(type_name: str, payload: Any) -> None:
    item = make_callback(type_name)
    item[type_name] = payload
    callback = build_callback(item, 5, 6, type_name)
    assert callback.invalid_fields == ()
    assert callback.raw[type_name] == payload


def test_callbacks_are_immutable(client, seen) -> None:
    client.post(ENDPOINT, json=make_batch(make_callback("sms_inbound")))
    (callback,) = seen.received
    with pytest.raises(AttributeError):
        callback.balance = Decimal(0)
    with pytest.raises(AttributeError):
        callback.payload.sms_body = "changed"


def test_repr_shows_no_hash(client, seen) -> None:
    item = make_callback("min_balance")
    client.post(ENDPOINT, json=make_batch(item))
    assert item["hash"] not in repr(seen.received[0])


def test_authentic_item_without_a_type_is_delivered_as_unknown(client, seen) -> None:
    item = make_callback("min_balance")
    del item["type"]
    response = client.post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 200
    (callback,) = seen.received
    assert callback.type == "" and not callback.known
    assert isinstance(callback.payload, UnknownPayload)


def test_every_declared_field_is_documented_and_payloads_build_empty() -> None:
    from flask_voxcallbacks.fields import wire_fields
    from flask_voxcallbacks.payloads import SubscriptionDetails

    for spec in CALLBACK_TYPES.values():
        for name, field in wire_fields(spec.payload):
            assert field.doc and field.kind, f"{spec.name}.{name}"
        empty = spec.payload()
        assert all(getattr(empty, name) is None for name, _ in wire_fields(spec.payload))
    (kind,) = [f for name, f in wire_fields(SubscriptionDetails) if name == "type"]
    assert kind.choices == ("PHONE", "SIP_REGISTRATION")
    assert SubscriptionDetails.example()["type"] == "PHONE", "the first documented value"


def build(type_name: str, payload: Any) -> Any:
    item = make_callback(type_name)
    item[type_name] = payload
    return build_callback(item, item["callback_id"], item["account_id"], type_name)


def test_older_inbound_sms_as_a_list_of_one_item_is_read() -> None:
    sms = {"source_number": "1", "destination_number": "2", "sms_body": "hi"}
    callback = build("sms_inbound", {"sms_inbound": [sms]})
    assert (callback.payload.source_number, callback.payload.sms_body) == ("1", "hi")
    assert callback.invalid_fields == ()


@pytest.mark.parametrize(
    "payload",
    [
        {"sms_inbound": [{"sms_body": "a"}, {"sms_body": "b"}]},
        {"sms_inbound": []},
        {"sms_inbound": "hi"},
        {"text": "hi", "from": "1"},
    ],
    ids=["two-items", "empty-list", "string", "unknown-keys"],
)
def test_an_inbound_sms_that_cannot_be_read_is_flagged_not_empty(payload: Any) -> None:
    callback = build("sms_inbound", payload)
    assert callback.payload.sms_body is None
    assert callback.invalid_fields == ("sms_inbound",)


def test_older_single_sip_registration_failure_is_read() -> None:
    callback = build(
        "sip_registration_fail",
        {"sip_registration_id": 7001, "status_code": "403", "error_message": "Forbidden"},
    )
    (failure,) = callback.payload.sip_registrations
    assert (failure.sip_registration_id, failure.status_code, failure.error_message) == (
        7001,
        "403",
        "Forbidden",
    )
    assert callback.invalid_fields == ()


def test_document_callbacks_carry_is_individual() -> None:
    for type_name in ("account_document_uploaded", "account_document_verified"):
        item = make_callback(type_name, is_individual=True)
        callback = build_callback(item, item["callback_id"], item["account_id"], type_name)
        assert callback.payload.is_individual is True and callback.invalid_fields == ()


def test_classification_complete_is_a_legacy_type_with_its_fields() -> None:
    callback = build(
        "classification_complete",
        {
            "classification_complete": {
                "record_id": 5,
                "classification_info": [{"type": "amd", "info": "human", "error_code": ""}],
                "classification_cost": "0.02",
            }
        },
    )
    assert callback.payload.record_id == 5
    assert callback.payload.classification_info[0].info == "human"
    assert callback.payload.classification_cost == Decimal("0.02")
    assert CALLBACK_TYPES["classification_complete"].status == LEGACY
