"""A host application in queue mode, set up from the environment, for test_queue.py.

``VOXCALLBACKS_STORE`` and ``VOXCALLBACKS_QUEUE`` choose the store and the engine; with
``VOXCALLBACKS_QUEUE=celery`` the Celery app of Flask's Celery pattern uses ``VOX_BROKER``. Every
handler run is written to the SQLite ledger ``VOX_LEDGER``. The handlers of ``sms_inbound``
sleep ``VOX_SLEEP`` seconds; the first attempt of a ``js_fail`` callback hangs (so that a test
can kill its worker in the middle of it); the first attempt of a ``call_history_report`` fails,
after a receiver of its own signal has written ``notified`` to the ledger (it succeeds at once, so
it never runs again). With ``VOX_TRACE_FILE`` set, callbacks are traced with OpenTelemetry and
the finished spans written to that file, one JSON object per line.

Run it as the Flask CLI's app (``--app queue_app:create_app``), under gunicorn
(``queue_app:create_app()``) or as a Celery worker (``celery -A queue_app:celery_app worker``).
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask
from multiproc_app import ledger

from example_app.celery_setup import celery_init_app
from flask_voxcallbacks import Callback, VoxCallbacks, call_history_report_ready, callback_received
from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, DEFAULT_SALT

HANG_SECONDS = 60


def record(sender: Flask, callback: Callback[Any], **extra: Any) -> None:
    db = ledger()
    try:
        cid = callback.callback_id
        (prior,) = db.execute(
            "SELECT COUNT(*) FROM attempts WHERE callback_id = ? AND outcome != 'notified'",
            (cid,),
        ).fetchone()
        if callback.type == "sms_inbound":
            time.sleep(float(os.environ.get("VOX_SLEEP", "0")))
        if prior == 0 and callback.type == "js_fail":
            db.execute("INSERT INTO attempts VALUES (?, ?, 'started')", (cid, os.getpid()))
            time.sleep(HANG_SECONDS)
        if prior == 0 and callback.type == "call_history_report":
            db.execute("INSERT INTO attempts VALUES (?, ?, 'failed')", (cid, os.getpid()))
            raise RuntimeError(f"first attempt of {cid} fails")
        db.execute("INSERT INTO attempts VALUES (?, ?, 'succeeded')", (cid, os.getpid()))
    finally:
        db.close()


def notify(sender: Flask, callback: Callback[Any], **extra: Any) -> None:
    db = ledger()
    try:
        db.execute("INSERT INTO attempts VALUES (?, ?, 'notified')", (callback.callback_id, 0))
    finally:
        db.close()


def _trace_to_file(path: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    exporter = ConsoleSpanExporter(
        out=open(path, "a"),  # noqa: SIM115 - open for the life of the process
        formatter=lambda span: span.to_json(indent=None) + "\n",
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def create_app() -> Flask:
    app = Flask(__name__)
    if os.environ.get("VOX_TRACE_FILE"):
        _trace_to_file(os.environ["VOX_TRACE_FILE"])
        app.config["VOXCALLBACKS_TRACING"] = "opentelemetry"
    app.config.update(
        VOXCALLBACKS_ACCOUNT_ID=DEFAULT_ACCOUNT_ID,
        VOXCALLBACKS_API_KEY=DEFAULT_API_KEY,
        VOXCALLBACKS_SALT=DEFAULT_SALT,
        VOXCALLBACKS_STORE=os.environ["VOXCALLBACKS_STORE"],
        VOXCALLBACKS_QUEUE=os.environ["VOXCALLBACKS_QUEUE"],
        VOXCALLBACKS_LEASE_SECONDS=int(os.environ.get("VOX_LEASE_SECONDS", "300")),
        VOXCALLBACKS_QUEUE_RETRIES=int(os.environ.get("VOX_RETRIES", "0")),
        CELERY={
            "broker_url": os.environ.get("VOX_BROKER", ""),
            "task_ignore_result": True,
            "broker_connection_retry_on_startup": True,
            "worker_prefetch_multiplier": 1,
            "broker_transport_options": {
                "visibility_timeout": int(os.environ.get("VOX_VISIBILITY", "3600"))
            },
        },
    )
    if app.config["VOXCALLBACKS_QUEUE"] == "celery":
        celery_init_app(app)
    VoxCallbacks(app)
    call_history_report_ready.connect(notify, sender=app)
    callback_received.connect(record, sender=app)
    return app


def _celery_app() -> Any:
    return create_app().extensions["celery"] if os.environ.get("VOX_CELERY") else None


#: For ``celery -A queue_app:celery_app worker`` (the worker's environment sets VOX_CELERY=1).
celery_app = _celery_app()
