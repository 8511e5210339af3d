"""The application of the chaos soak (``benchmarks/chaos.py``), set up from the environment.

``VOXCALLBACKS_STORE`` and ``VOXCALLBACKS_QUEUE`` choose the store and the mode; with
``VOXCALLBACKS_QUEUE=celery`` the Celery app uses the broker ``CHAOS_BROKER``. Its one receiver
takes ``CHAOS_RECEIVER_MS`` milliseconds (5 by default), as a handler that calls a database would,
and then appends the callback id to the ledger file ``CHAOS_LEDGER``, one line per run, with
one ``write`` on a file opened for appending (a line is never torn by a kill).
``CHAOS_RECORD_EVERY`` sets another bound of the crash window, in seconds, to compare bounds.

Run it under gunicorn (``chaos_app:create_app()``), as the Flask CLI's app
(``--app chaos_app:create_app``) or as a Celery worker (``celery -A chaos_app:celery_app worker``).
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask

from flask_voxcallbacks import Callback, VoxCallbacks, callback_received
from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, DEFAULT_SALT

_ledger: tuple[int, int] = (0, -1)


def _ledger_fd() -> int:
    """This process's descriptor of the ledger (opened again after a fork)."""
    global _ledger
    pid = os.getpid()
    if _ledger[0] != pid:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        _ledger = (pid, os.open(os.environ["CHAOS_LEDGER"], flags, 0o600))
    return _ledger[1]


def handle(sender: Flask, callback: Callback[Any], **extra: Any) -> None:
    time.sleep(int(os.environ.get("CHAOS_RECEIVER_MS", "5")) / 1000)
    os.write(_ledger_fd(), f"{callback.callback_id}\n".encode())


def create_app() -> Flask:
    app = Flask(__name__)
    queue = os.environ.get("VOXCALLBACKS_QUEUE", "")
    app.config.update(
        VOXCALLBACKS_ACCOUNT_ID=DEFAULT_ACCOUNT_ID,
        VOXCALLBACKS_API_KEY=DEFAULT_API_KEY,
        VOXCALLBACKS_SALT=DEFAULT_SALT,
        VOXCALLBACKS_STORE=os.environ["VOXCALLBACKS_STORE"],
        VOXCALLBACKS_QUEUE=queue,
        # A killed worker's claims are taken over after the lease: short, so that the soak ends.
        VOXCALLBACKS_LEASE_SECONDS=int(os.environ.get("CHAOS_LEASE_SECONDS", "2")),
        VOXCALLBACKS_QUEUE_RETRIES=0,
        CELERY={
            "broker_url": os.environ.get("CHAOS_BROKER", ""),
            "task_ignore_result": True,
            "broker_connection_retry_on_startup": True,
            "worker_prefetch_multiplier": 1,
            "broker_transport_options": {"visibility_timeout": 10},
        },
    )
    if queue == "celery":
        from example_app.celery_setup import celery_init_app

        celery_init_app(app)
    VoxCallbacks(app)
    callback_received.connect(handle, sender=app)
    if "CHAOS_RECORD_EVERY" in os.environ:
        # To measure other bounds of the crash window (python benchmarks/chaos.py --record-every).
        from flask_voxcallbacks import handling

        handling.RECORD_EVERY = float(os.environ["CHAOS_RECORD_EVERY"])
    return app


def _celery_app() -> Any:
    return create_app().extensions["celery"] if os.environ.get("CHAOS_CELERY") else None


#: For ``celery -A chaos_app:celery_app worker`` (the worker's environment sets CHAOS_CELERY=1).
celery_app = _celery_app()
