"""How long Voximplant waits for the answer to a batch whose handlers are slow: inline, and in
queue mode with each engine.

Run with ``make bench`` (or ``python benchmarks/queue_latency.py``). A batch of 20 inbound SMS
whose handler takes 0.1 s is posted through Flask's test client to an application with a Redis
store on a private Redis server: handled inline, then queued for RQ and for Celery (the jobs are
only enqueued; no worker runs them here). Prints the answer times, PASS or FAIL for the target
below, and writes the ``queue_latency`` entry of ``benchmarks/results.json``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from celery import Celery  # noqa: E402
from flask import Flask  # noqa: E402
from results import save  # noqa: E402
from servers import RedisServer  # noqa: E402

from flask_voxcallbacks import VoxCallbacks, sms_received  # noqa: E402
from flask_voxcallbacks.testing import (  # noqa: E402
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    DEFAULT_SALT,
    make_batch,
    make_callback,
)

BATCH, HANDLER_SECONDS, ROUNDS = 20, 0.1, 5
#: Longest acceptable answer to the batch in queue mode, in seconds.
QUEUED_TARGET = 0.5


def application(store: str, queue: str, broker: str) -> Flask:
    app = Flask(f"bench-{queue or 'inline'}")
    app.config.update(
        VOXCALLBACKS_ACCOUNT_ID=DEFAULT_ACCOUNT_ID,
        VOXCALLBACKS_API_KEY=DEFAULT_API_KEY,
        VOXCALLBACKS_SALT=DEFAULT_SALT,
        VOXCALLBACKS_STORE=store,
        VOXCALLBACKS_QUEUE=queue,
    )
    if queue == "celery":
        celery = Celery(app.name)
        celery.conf.update(broker_url=broker, task_ignore_result=True)
        app.extensions["celery"] = celery
    VoxCallbacks(app)

    def slow(sender: Flask, callback: Any) -> None:
        time.sleep(HANDLER_SECONDS)

    sms_received.connect(slow, app, weak=False)
    return app


def answer_seconds(app: Flask) -> float:
    """The median time of ROUNDS answers to a batch of new callbacks."""
    client = app.test_client()
    times = []
    for _ in range(ROUNDS):
        body = make_batch(*(make_callback("sms_inbound") for _ in range(BATCH)))
        started = time.perf_counter()
        response = client.post("/voximplant/callbacks", json=body)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.get_data(as_text=True)
    return statistics.median(times)


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        redis = RedisServer(Path(scratch), appendfsync="everysec")
        redis.start()
        try:
            base = redis.url.rsplit("/", 1)[0]
            store, broker = f"{base}/0", f"{base}/1"
            modes = {
                "inline": "",
                "rq": f"rq://{broker[len('redis://') :]}",
                "celery": "celery",
            }
            seconds = {
                name: answer_seconds(application(store, queue, broker))
                for name, queue in modes.items()
            }
        finally:
            redis.stop()
    print(f"answer to a batch of {BATCH} callbacks whose handler takes {HANDLER_SECONDS} s:")
    for name, value in seconds.items():
        print(f"  {name:8s} {value * 1000:8.1f} ms")
    failed = 0
    for name in ("rq", "celery"):
        ok = seconds[name] <= QUEUED_TARGET
        failed += not ok
        print(f"queued ({name}) <= {QUEUED_TARGET} s: {'PASS' if ok else 'FAIL'}")
    save(
        "queue_latency",
        {
            "batch": BATCH,
            "handler_seconds": HANDLER_SECONDS,
            "answer_seconds": seconds,
            "target_queued_seconds": QUEUED_TARGET,
        },
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
