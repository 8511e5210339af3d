"""Conversion is total: any JSON value in any field of any type gives a value or an entry in
``invalid_fields``, never an exception."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flask_voxcallbacks.callbacks import Callback, build_callback
from flask_voxcallbacks.fields import FieldSpec, Record, wire_fields
from flask_voxcallbacks.payloads import CALLBACK_TYPES

#: Any JSON value, finite numbers of any size included.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

_OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _edge_text(moment: datetime, zone: timezone | None, separator: str) -> str:
    if zone is None:
        return moment.isoformat(sep=separator)
    return moment.replace(tzinfo=zone).isoformat(sep=separator)


#: Date-time texts across the whole calendar, the first and last days included, with and without
#: offsets, in the ISO and the documented forms, and the unpadded form strptime reads.
DATE_TIMES = st.one_of(
    st.builds(
        _edge_text,
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        st.none() | _OFFSETS,
        st.sampled_from(["T", " "]),
    ),
    st.builds(
        _edge_text,
        st.sampled_from(
            [datetime(1, 1, 1), datetime(1, 1, 1, 23, 59), datetime(9999, 12, 31, 23, 59, 59)]
        ),
        _OFFSETS,
        st.sampled_from(["T", " "]),
    ),
    st.builds(
        lambda y, mo, d, h, mi: f"{y}-{mo}-{d} {h}:{mi}:00",
        st.integers(1, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
    ),
)


def _paths(cls: type[Any], prefix: str) -> list[tuple[str, list[str], FieldSpec]]:
    """Every wire field of ``cls`` and of its nested items: (path, keys to reach it, spec)."""
    found = []
    for name, spec in wire_fields(cls):
        found.append((f"{prefix}{name}", [name], spec))
        if spec.item_type is not None:
            for path, keys, nested in _paths(spec.item_type, ""):
                found.append((f"{prefix}{name}[0].{path}", [name, *keys], nested))
    return found


def _targets() -> list[tuple[str, str, list[Any], FieldSpec]]:
    """(type, path, keys from the item, spec) for every field of every known type."""
    targets = []
    for path, keys, spec in _paths(Callback, ""):
        targets.append(("min_balance", path, keys, spec))
    for type_name, spec_of_type in sorted(CALLBACK_TYPES.items()):
        base: list[Any] = [type_name, type_name] if spec_of_type.nested else [type_name]
        for path, keys, spec in _paths(spec_of_type.payload, ""):
            targets.append((type_name, f"{type_name}.{path}", [*base, *keys], spec))
    return targets


TARGETS = _targets()


def _item_with(type_name: str, keys: list[Any], value: Any) -> dict[str, Any]:
    """A complete sample item of ``type_name`` with ``value`` at ``keys``."""
    spec = CALLBACK_TYPES[type_name]
    example = spec.payload.example()
    item: dict[str, Any] = {
        "callback_id": 1,
        "account_id": 2,
        "type": type_name,
        type_name: {type_name: [example]} if spec.nested else example,
    }
    node: Any = item
    for key in keys[:-1]:
        node = node[key]
        if isinstance(node, list):
            node = node[0] if node else {}
    node[keys[-1]] = value
    return item


def test_every_field_of_every_type_is_targeted() -> None:
    # Each of the 47 known types contributes its fields; the common fields come once.
    covered = {type_name for type_name, _, _, _ in TARGETS}
    assert covered >= set(CALLBACK_TYPES) - {
        name for name, spec in CALLBACK_TYPES.items() if not spec.payload.wire_fields()
    }
    assert any(spec.kind == "timestamp" for _, _, _, spec in TARGETS)


def _check(target: tuple[str, str, list[Any], FieldSpec], value: Any) -> None:
    type_name, _path, keys, _ = target
    item = _item_with(type_name, keys, value)
    before = json.dumps(item, sort_keys=True)
    callback = build_callback(item, 1, 2, type_name)
    # Never raises; the item is left as it was; a field that is not converted is named.
    assert json.dumps(item, sort_keys=True) == before
    assert isinstance(callback.invalid_fields, tuple)
    assert all(isinstance(name, str) for name in callback.invalid_fields)


@settings(max_examples=3000, deadline=None)
@given(target=st.sampled_from(TARGETS), value=JSON_VALUES)
def test_any_json_value_in_any_field_converts_or_is_named(
    target: tuple[str, str, list[Any], FieldSpec], value: Any
) -> None:
    _check(target, value)


TIME_TARGETS = [t for t in TARGETS if t[3].kind in ("timestamp", "date")]


@settings(max_examples=1500, deadline=None)
@given(target=st.sampled_from(TIME_TARGETS), value=DATE_TIMES)
def test_any_date_time_converts_to_utc_or_is_named(
    target: tuple[str, str, list[Any], FieldSpec], value: str
) -> None:
    _check(target, value)


def test_the_first_day_with_a_positive_offset_is_invalid_not_an_error() -> None:
    # Year 1 at +01:00 is the last hour of year 0 in UTC, which datetime cannot hold.
    item = _item_with(
        "call_history_report", ["call_history_report", "order_date"], "0001-01-01T00:00:00+01:00"
    )
    callback = build_callback(item, 1, 2, "call_history_report")
    assert callback.invalid_fields == ("call_history_report.order_date",)
    assert callback.payload.order_date is None  # type: ignore[attr-defined]
    assert callback.raw["call_history_report"]["order_date"] == "0001-01-01T00:00:00+01:00"
    late = _item_with(
        "call_history_report", ["call_history_report", "order_date"], "9999-12-31T23:59:59-01:00"
    )
    assert build_callback(late, 1, 2, "call_history_report").invalid_fields == (
        "call_history_report.order_date",
    )


def test_records_build_from_any_mapping() -> None:
    # Every nested item type converts any mapping.
    for spec in CALLBACK_TYPES.values():
        for _, field in spec.payload.wire_fields():
            if field.item_type is not None:
                record, invalid = field.item_type.from_wire({"x": [1]}, "p.")
                assert isinstance(record, Record) and invalid == []
