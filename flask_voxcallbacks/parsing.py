"""Parsing a request body into the list of callback items it carries."""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

EXPECTED = 'expected a JSON object {"callbacks": [...]}'


class BadBatch(ValueError):
    """The body is not a callback batch; the message says what is wrong, for a 400 response."""


def _reject_constant(name: str) -> NoReturn:
    raise BadBatch(f"invalid JSON: {name} is not a JSON value")


def _finite(text: str) -> float:
    """A JSON number with a fraction or an exponent, refused when it overflows to infinity
    (``1e400``), as ``NaN`` and ``Infinity`` are."""
    value = float(text)
    if math.isinf(value):
        raise BadBatch(f"invalid JSON: the number {text[:40]} is out of range")
    return value


#: Built once: ``json.loads`` with any option builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite)


def parse_batch(body: bytes) -> list[dict[str, Any]]:
    """The items of ``{"callbacks": [...]}``, whatever the Content-Type said."""
    if not body.strip():
        raise BadBatch(f"empty body; {EXPECTED}")
    try:
        # JSON exchanged between systems is UTF-8 (RFC 8259); json.loads would guess UTF-16 and
        # UTF-32 from bytes, so the text is decoded here, strictly.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBatch("the body is not UTF-8 text") from None
    try:
        data = _DECODER.decode(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as error:
        raise BadBatch(
            f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise BadBatch("invalid JSON: nested too deeply") from None
    except ValueError as error:
        if isinstance(error, BadBatch):
            raise
        raise BadBatch("invalid JSON: a number is too long") from None
    if not isinstance(data, dict):
        raise BadBatch(f"the top level is a JSON {_json_kind(data)}; {EXPECTED}")
    if "callbacks" not in data:
        raise BadBatch(f'"callbacks" is missing; {EXPECTED}')
    items = data["callbacks"]
    if not isinstance(items, list):
        raise BadBatch(f'"callbacks" is a JSON {_json_kind(items)}; expected a list of objects')
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadBatch(f"callbacks[{index}] is a JSON {_json_kind(item)}; expected an object")
    return items


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
