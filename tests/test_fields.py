"""fields.py: each kind of field converts a wire value or names the field it could not read, and
the compiled converters build what the dataclass would."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from flask_voxcallbacks import CALLBACK_TYPES
from flask_voxcallbacks.callbacks import build_callback
from flask_voxcallbacks.fields import Record
from flask_voxcallbacks.testing import make_callback

CONVERSIONS = [
    # (type, field, wire value, converted value or INVALID)
    ("call_history_report", "history_report_id", 7, 7),
    ("call_history_report", "history_report_id", "42", 42),
    ("call_history_report", "history_report_id", "-3", -3),
    ("call_history_report", "history_report_id", 8.0, 8),
    ("call_history_report", "history_report_id", 1.5, "INVALID"),
    ("call_history_report", "history_report_id", True, "INVALID"),
    ("call_history_report", "history_report_id", "1.5", "INVALID"),
    ("call_history_report", "history_report_id", "1" * 41, "INVALID"),
    ("call_history_report", "history_report_id", "١٢", "INVALID"),  # non-ASCII digits
    ("call_history_report", "history_report_id", "X5", "INVALID"),
    ("call_history_report", "history_report_id", "1" * 40, int("1" * 40)),
    ("min_balance", "is_min_credit", True, True),
    ("min_balance", "is_min_credit", 0, False),
    ("min_balance", "is_min_credit", 1, True),
    ("min_balance", "is_min_credit", "TRUE", True),
    ("min_balance", "is_min_credit", "false", False),
    ("min_balance", "is_min_credit", 2, "INVALID"),
    ("min_balance", "is_min_credit", "yes", "INVALID"),
    ("min_balance", "is_min_credit", 1.0, "INVALID"),
    ("card_payment", "amount", "12.50", Decimal("12.50")),
    ("card_payment", "amount", 3, Decimal(3)),
    ("card_payment", "amount", 0.1, Decimal("0.1")),
    ("card_payment", "amount", "NaN", "INVALID"),
    ("card_payment", "amount", "Infinity", "INVALID"),
    ("card_payment", "amount", False, "INVALID"),
    ("card_payment", "amount", "1" * 101, "INVALID"),
    ("card_payment", "transaction_type", 12, "12"),
    ("card_payment", "transaction_type", 1.5, "INVALID"),
    ("card_payment", "transaction_type", False, "INVALID"),
    ("expiring_agreement", "expiration_date", "2025-04-01", date(2025, 4, 1)),
    ("expiring_agreement", "expiration_date", "2025-04-01 10:00:00", date(2025, 4, 1)),
    ("expiring_agreement", "expiration_date", "2025-04-01T10:00:00", date(2025, 4, 1)),
    ("expiring_agreement", "expiration_date", "2025-04-01 ", date(2025, 4, 1)),
    ("expiring_agreement", "expiration_date", "2025-04-01X", "INVALID"),
    ("expiring_agreement", "expiration_date", "", None),
    ("expiring_agreement", "expiration_date", "2025-13-01", "INVALID"),
    ("expiring_agreement", "expiration_date", 20250401, "INVALID"),
    (
        "call_history_report",
        "order_date",
        "2025-03-14 09:26:53",
        datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone.utc),
    ),
    (
        "call_history_report",
        "order_date",
        "2025-03-14T12:26:53+03:00",
        datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone.utc),
    ),
    (
        "call_history_report",
        "order_date",
        "2025-3-4 9:26:53",
        datetime(2025, 3, 4, 9, 26, 53, tzinfo=timezone.utc),
    ),
    ("call_history_report", "order_date", "14/03/2025", "INVALID"),
    ("call_history_report", "order_date", "2025-03-14 25:26:53", "INVALID"),
    ("batch_task_cancelling_completed", "batch_id", "6f1c-uuid", "6f1c-uuid"),
    ("batch_task_cancelling_completed", "batch_id", 5, 5),
    ("batch_task_cancelling_completed", "batch_id", True, "INVALID"),
    ("batch_task_cancelling_completed", "batch_id", 1.5, "INVALID"),
]


@pytest.mark.parametrize(("type_name", "field", "wire", "expected"), CONVERSIONS)
def test_each_field_kind_converts_or_flags(type_name, field, wire, expected) -> None:
    item = make_callback(type_name, **{field: wire})
    callback = build_callback(item, item["callback_id"], item["account_id"], type_name)
    value = getattr(callback.payload, field)
    if expected == "INVALID":
        assert value is None
        assert callback.invalid_fields == (f"{type_name}.{field}",)
    else:
        assert value == expected and type(value) is type(expected)
        if isinstance(value, datetime):
            assert value.tzinfo is timezone.utc
        assert callback.invalid_fields == ()


def _records(cls: type[Record], seen: set[type[Record]]) -> None:
    if cls not in seen:
        seen.add(cls)
        for _, spec in cls.wire_fields():
            if spec.item_type is not None:
                _records(spec.item_type, seen)


ALL_RECORDS: set[type[Record]] = set()


for _type in CALLBACK_TYPES.values():
    _records(_type.payload, ALL_RECORDS)


@pytest.mark.parametrize("cls", sorted(ALL_RECORDS, key=lambda c: c.__qualname__))
def test_compiled_converters_build_what_the_dataclass_would(cls: type[Record]) -> None:
    # Every field set, as in the examples, then every field of the wrong kind.
    wire = cls.example()
    built, invalid = cls.from_wire(wire)
    assert invalid == []
    assert built == cls(**{name: getattr(built, name) for name, _ in cls.wire_fields()})
    assert type(built) is cls
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.anything = 1  # type: ignore[attr-defined]
    wrong = {name: {"not": "this"} for name, _ in cls.wire_fields()}
    empty, invalid = cls.from_wire(wrong, "p.")
    assert invalid == [f"p.{name}" for name, _ in cls.wire_fields()]
    assert all(getattr(empty, name) is None for name, _ in cls.wire_fields())


def test_a_string_field_keeps_the_string_and_converts_numbers() -> None:
    item = make_callback("min_balance", account_name="acme", currency=840)
    callback = build_callback(item, item["callback_id"], item["account_id"], "min_balance")
    assert callback.account_name == "acme" and callback.currency == "840"
    assert callback == dataclasses.replace(callback)
