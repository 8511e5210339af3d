"""A host application as the documentation shows it: a factory, a child account, a SQLite
store in the instance folder, and typed handlers connected per application."""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_voxcallbacks import (
    Callback,
    MinBalance,
    Payload,
    SmsInbound,
    VoxCallbacks,
    callback_received,
    min_balance_reached,
    sms_received,
)

vox = VoxCallbacks()
unsubscribed: list[str] = []
low_balances: list[tuple[int, str]] = []
seen_types: list[str] = []


def on_low_balance(sender: Flask, callback: Callback[MinBalance], **extra: Any) -> None:
    credit: bool | None = callback.payload.is_min_credit
    low_balances.append((callback.account_id, "credit" if credit else "balance"))


def on_sms(sender: Flask, callback: Callback[SmsInbound], **extra: Any) -> None:
    sms = callback.payload
    if (sms.sms_body or "").strip().upper() == "STOP" and sms.source_number:
        unsubscribed.append(sms.source_number)


def on_any(sender: Flask, callback: Callback[Payload], **extra: Any) -> None:
    seen_types.append(callback.type)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        VOXCALLBACKS_ACCOUNT_ID=1234567,
        VOXCALLBACKS_API_KEY="main-api-key",
        VOXCALLBACKS_SALT="main-salt",
        VOXCALLBACKS_ACCOUNTS={7654321: {"api_key": "child-api-key", "salt": "child-salt"}},
        VOXCALLBACKS_STORE="sqlite:///voxcallbacks.db",
    )
    app.config.update(config or {})
    vox.init_app(app)
    min_balance_reached.connect(on_low_balance, sender=app)
    sms_received.connect(on_sms, sender=app)
    callback_received.connect(on_any, sender=app)
    return app
