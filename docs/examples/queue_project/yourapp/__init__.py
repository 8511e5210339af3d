"""A Flask project whose Voximplant handlers run on workers."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task  # type: ignore[import-untyped]
from flask import Flask

from flask_voxcallbacks import (
    Callback,
    MinBalance,
    VoxCallbacks,
    min_balance_reached,
)

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379")


def create_app() -> Flask:
    app = Flask(__name__)
    env = os.environ
    app.config.from_mapping(
        VOXCALLBACKS_ACCOUNT_ID=int(env["VOXCALLBACKS_ACCOUNT_ID"]),
        VOXCALLBACKS_API_KEY=env["VOXCALLBACKS_API_KEY"],
        VOXCALLBACKS_SALT=env["VOXCALLBACKS_SALT"],
        # Store and queue shared by the web app and every worker.
        VOXCALLBACKS_STORE=f"{REDIS_URL}/0",
        VOXCALLBACKS_QUEUE=env.get("VOXCALLBACKS_QUEUE", "celery"),
        CELERY={
            "broker_url": f"{REDIS_URL}/1",
            "task_ignore_result": True,
            # A silent broker fails an enqueue after 5 s instead of never.
            "broker_transport_options": {
                "socket_timeout": 5,
                "socket_connect_timeout": 5,
            },
        },
    )
    if app.config["VOXCALLBACKS_QUEUE"] == "celery":
        celery_init_app(app)
    VoxCallbacks(app)
    min_balance_reached.connect(on_low_balance, app)
    return app


def celery_init_app(app: Flask) -> Celery:
    """Flask's Celery pattern: tasks run in the application's context."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def on_low_balance(
    sender: Flask,
    callback: Callback[MinBalance],
    **extra: Any,
) -> None:
    # Runs on a worker: a slow CRM or e-mail call keeps nobody waiting.
    amount = f"{callback.balance} {callback.currency}"
    print(f"Low balance on {callback.account_id}: {amount}")
