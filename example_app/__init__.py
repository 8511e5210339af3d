"""A runnable example: ``flask --app example_app run`` (or ``make run``).

It starts with built-in demo credentials (those of the protocol's test vectors), so it works with
no set-up; set ``VOXCALLBACKS_ACCOUNT_ID``, ``VOXCALLBACKS_API_KEY``, ``VOXCALLBACKS_SALT`` (and
optionally ``VOXCALLBACKS_STORE``, ``VOXCALLBACKS_PATH``) in the environment to use your own.

With ``VOXCALLBACKS_QUEUE`` set (``celery`` with ``CELERY_BROKER_URL``, or ``rq://...``) the
handlers run on workers: ``QUEUE=rq make run-queue`` (or ``QUEUE=celery``) starts a private
Redis server, a worker and the app (see ``example_app/run_queue.py``).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from flask_voxcallbacks import (
    AccountIsFrozen,
    Callback,
    MinBalance,
    SmsInbound,
    VoxCallbacks,
    account_frozen,
    min_balance_reached,
    sms_received,
)

DEMO_CONFIG = {
    "VOXCALLBACKS_ACCOUNT_ID": 1234567,
    "VOXCALLBACKS_API_KEY": "d1f0c2a4-5b6e-4c7d-8e9f-0a1b2c3d4e5f",
    "VOXCALLBACKS_SALT": "example-salt-42",
}
ENVIRONMENT_KEYS = (
    "VOXCALLBACKS_ACCOUNT_ID",
    "VOXCALLBACKS_API_KEY",
    "VOXCALLBACKS_SALT",
    "VOXCALLBACKS_PATH",
    "VOXCALLBACKS_STORE",
    "VOXCALLBACKS_QUEUE",
)

vox = VoxCallbacks()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the example application; ``config`` overrides the demo and environment settings."""
    app = Flask(__name__)
    app.config.update(DEMO_CONFIG)
    app.config.update({key: os.environ[key] for key in ENVIRONMENT_KEYS if key in os.environ})
    app.config.update(config or {})
    if app.config.get("VOXCALLBACKS_QUEUE") == "celery":
        from .celery_setup import celery_init_app

        app.config.setdefault(
            "CELERY",
            {
                "broker_url": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1"),
                "task_ignore_result": True,
                "broker_connection_retry_on_startup": True,
            },
        )
        celery_init_app(app)
    vox.init_app(app)
    min_balance_reached.connect(on_low_balance, sender=app)
    sms_received.connect(on_sms, sender=app)
    account_frozen.connect(on_frozen, sender=app)

    @app.get("/")
    def index() -> str:
        path = app.config.get("VOXCALLBACKS_PATH", "/voximplant/callbacks")
        return f"POST Voximplant callbacks to {path}\n"

    return app


def on_low_balance(sender: Flask, callback: Callback[MinBalance], **extra: Any) -> None:
    print(
        f"Low balance on account {callback.account_id}: {callback.balance} {callback.currency}",
        flush=True,
    )


def on_sms(sender: Flask, callback: Callback[SmsInbound], **extra: Any) -> None:
    sms = callback.payload
    print(f"SMS from {sms.source_number} to {sms.destination_number}: {sms.sms_body}", flush=True)


def on_frozen(sender: Flask, callback: Callback[AccountIsFrozen], **extra: Any) -> None:
    print(f"Account {callback.account_id} was frozen", flush=True)
