"""registry.py: how a payload class is registered under its wire type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pytest

from flask_voxcallbacks import registry
from flask_voxcallbacks.fields import integer
from flask_voxcallbacks.registry import (
    CALLBACK_TYPES,
    CURRENT,
    DEPRECATED,
    CallbackType,
    Payload,
    callback_type,
)


def _older(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"count": data.get("old_count")}


def test_callback_type_registers_the_class_with_its_declaration() -> None:
    @dataclass(frozen=True)
    class Plain(Payload):
        count: int | None = integer("A count.")

    @dataclass(frozen=True)
    class Deeper(Payload):
        count: int | None = integer("A count.")

    try:
        assert callback_type("test_plain")(Plain) is Plain
        assert (
            callback_type("test_deeper", DEPRECATED, nested=True, older_shape=_older)(Deeper)
            is Deeper
        )
        assert CALLBACK_TYPES["test_plain"] == CallbackType("test_plain", Plain, CURRENT, False)
        assert CALLBACK_TYPES["test_plain"].older_shape is None
        assert CALLBACK_TYPES["test_deeper"] == CallbackType(
            "test_deeper", Deeper, DEPRECATED, True, _older
        )
        assert (Plain.wire_type, Deeper.wire_type) == ("test_plain", "test_deeper")
    finally:
        registry._registry.pop("test_plain", None)
        registry._registry.pop("test_deeper", None)
    assert "test_plain" not in CALLBACK_TYPES


def test_the_registry_is_read_only_from_outside() -> None:
    with pytest.raises(TypeError):
        CALLBACK_TYPES["min_balance"] = CALLBACK_TYPES["min_balance"]  # type: ignore[index]
