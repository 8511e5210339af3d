"""parsing.py: what a body that is not a callback batch is told, word for word."""

from __future__ import annotations

import pytest

from flask_voxcallbacks.parsing import BadBatch, parse_batch


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"callbacks": [{"type": "\xff"}]}', "the body is not UTF-8 text"),
        (
            b'{"callbacks": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "invalid JSON: nested too deeply",
        ),
        (
            b'{"callbacks": [{"balance": 1' + b"0" * 50 + b"e400}]}",
            "invalid JSON: the number 1" + "0" * 39 + " is out of range",
        ),
        (
            b'{"callbacks": [{"balance": ' + b"7" * 5000 + b"}]}",
            "invalid JSON: a number is too long",
        ),
    ],
    ids=["not-utf8", "too-deep", "overflow", "too-long"],
)
def test_a_body_that_cannot_be_read_is_told_why(body: bytes, message: str) -> None:
    with pytest.raises(BadBatch) as raised:
        parse_batch(body)
    assert str(raised.value) == message


def test_a_byte_order_mark_is_skipped() -> None:
    assert parse_batch(b'\xef\xbb\xbf{"callbacks": [{"type": "min_balance"}]}') == [
        {"type": "min_balance"}
    ]
