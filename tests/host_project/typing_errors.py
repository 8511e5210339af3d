"""Receivers that do not match their signal: mypy --strict must report each marked line."""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_voxcallbacks import (
    Callback,
    MinBalance,
    SmsInbound,
    callback_received,
    min_balance_reached,
)


def on_sms(sender: Flask, callback: Callback[SmsInbound], **extra: Any) -> None: ...


def on_low_balance(sender: Flask, callback: Callback[MinBalance], **extra: Any) -> None:
    body: str | None = callback.payload.sms_body  # E: "MinBalance" has no attribute "sms_body"
    print(body)


min_balance_reached.connect(on_sms)  # E: arg-type
callback_received.connect(on_low_balance)  # E: arg-type
min_balance_reached.connect_via(Flask(__name__))(on_sms)  # E: arg-type
