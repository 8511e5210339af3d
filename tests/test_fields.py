"""fields.py: each kind of field converts a wire value or names the field it could not read, and
the compiled converters build what the dataclass would."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

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
    ("card_payment", "amount", "1" * 100, Decimal("1" * 100)),
    ("card_payment", "amount", float("inf"), "INVALID"),
    ("card_payment", "amount", float("nan"), "INVALID"),
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
    # Without a path, each invalid field is named by its own name.
    assert cls.from_wire(wrong)[1] == [name for name, _ in cls.wire_fields()]


def test_a_string_field_keeps_the_string_and_converts_numbers() -> None:
    item = make_callback("min_balance", account_name="acme", currency=840)
    callback = build_callback(item, item["callback_id"], item["account_id"], "min_balance")
    assert callback.account_name == "acme" and callback.currency == "840"
    assert callback == dataclasses.replace(callback)


def _spec(declared: Any) -> Any:
    """The FieldSpec a declaration helper puts in its dataclass field."""
    from flask_voxcallbacks.fields import spec_of

    assert declared.default is None, "every wire field may be missing"
    return spec_of(declared)


def test_each_declaration_helper_describes_converts_and_samples_its_kind() -> None:
    """What the docs' tables, the samples and the converters read from a declaration."""
    from flask_voxcallbacks import fields as f

    scalars = [
        (f.text("Doc."), "string", "example", f.to_str),
        (f.text("Doc.", "a value"), "string", "a value", f.to_str),
        (f.integer("Doc."), "integer", 1001, f.to_int),
        (f.identifier("Doc."), "integer or string", 1001, f.to_identifier),
        (f.money("Doc."), "decimal", 12.5, f.to_decimal),
        (f.boolean("Doc."), "boolean", False, f.to_bool),
        (f.timestamp("Doc."), "timestamp", "2025-03-14 09:26:53", f.to_datetime),
        (f.date_field("Doc."), "date", "2025-04-01", f.to_date),
    ]
    for declared, kind, example, scalar in scalars:
        spec = _spec(declared)
        assert (spec.kind, spec.doc, spec.example, spec.choices) == (kind, "Doc.", example, ())
        assert (spec.scalar, spec.convert, spec.item_type) == (scalar, None, None)
    chosen = _spec(f.text("Doc.", "ignored", choices=["first", "second"]))
    assert (chosen.example, chosen.choices) == ("first", ("first", "second"))
    texts, numbers = _spec(f.text_list("Doc.")), _spec(f.integer_list("Doc."))
    assert (texts.kind, texts.doc, texts.example, texts.scalar) == (
        "list of string",
        "Doc.",
        ["example"],
        None,
    )
    assert (numbers.kind, numbers.doc, numbers.example) == ("list of integer", "Doc.", [1001])
    assert _spec(f.text_list("Doc.", ("a", "b"))).example == ["a", "b"]
    assert _spec(f.integer_list("Doc.", (7,))).example == [7]
    assert texts.convert(["a", 5, {}, "b"], "names") == (("a", "5", "b"), ["names[2]"])
    assert numbers.convert([1, "2", "x"], "ids") == ((1, 2), ["ids[2]"])
    with pytest.raises(f.Invalid):
        numbers.convert("1, 2", "ids")


def test_items_declare_a_list_of_nested_records() -> None:
    from dataclasses import dataclass

    from flask_voxcallbacks import fields as f

    @dataclass(frozen=True)
    class Phone(f.Record):
        phone_id: int | None = f.integer("Its id.", 7)
        number: str | None = f.text("Its number.", "+100")

    spec = _spec(f.items(Phone, "The phones."))
    assert (spec.kind, spec.doc, spec.item_type, spec.scalar) == (
        "list of Phone",
        "The phones.",
        Phone,
        None,
    )
    assert spec.example == [{"phone_id": 7, "number": "+100"}]
    phones, invalid = spec.convert(
        [{"phone_id": "8", "number": "+1"}, 5, {"phone_id": "x"}], "phones"
    )
    assert phones == (Phone(8, "+1"), Phone(None, None))
    assert invalid == ["phones[1]", "phones[2].phone_id"]
    assert f.spec_of(dataclasses.field(default=None)) is None
    assert f.spec_of(dataclasses.field(default=None, metadata={"vox": "not a spec"})) is None
