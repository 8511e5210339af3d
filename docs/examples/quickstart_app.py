"""The quick start: a low-balance alert and an SMS unsubscribe."""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from flask import Flask

from flask_voxcallbacks import (
    Callback,
    MinBalance,
    SmsInbound,
    VoxCallbacks,
    min_balance_reached,
    sms_received,
)

logger = logging.getLogger(__name__)
vox = VoxCallbacks()
unsubscribed: set[str] = set()


def notify_finance(account: int, balance: object, currency: object) -> None:
    logger.warning("account %s is low: %s %s", account, balance, currency)


def unsubscribe(number: str) -> None:
    unsubscribed.add(number)


def on_low_balance(
    sender: Flask,
    callback: Callback[MinBalance],
    **extra: Any,
) -> None:
    notify_finance(callback.account_id, callback.balance, callback.currency)


def on_sms(
    sender: Flask,
    callback: Callback[SmsInbound],
    **extra: Any,
) -> None:
    sms = callback.payload
    text = (sms.sms_body or "").strip().upper()
    if text == "STOP" and sms.source_number:
        unsubscribe(sms.source_number)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application; tests give ``config`` instead of the environment."""
    app = Flask(__name__)
    if config is None:
        env = os.environ
        config = {
            "VOXCALLBACKS_ACCOUNT_ID": env["VOXCALLBACKS_ACCOUNT_ID"],
            "VOXCALLBACKS_API_KEY": env["VOXCALLBACKS_API_KEY"],
            "VOXCALLBACKS_SALT": env["VOXCALLBACKS_SALT"],
            # A file in the application's instance folder:
            "VOXCALLBACKS_STORE": "sqlite:///voxcallbacks.db",
        }
    app.config.update(config)
    vox.init_app(app)
    min_balance_reached.connect(on_low_balance, sender=app)
    sms_received.connect(on_sms, sender=app)
    return app
