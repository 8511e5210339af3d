"""Throughput and latency of the callback endpoint, with the targets the project holds itself to.

Run with ``make bench``. Three measurements:

* in-process: the Flask test client posting to an app with the memory store, batches of 1 and 10
  callbacks (the cost of parse, authenticate, build, claim, dispatch and record);
* over loopback HTTP: gunicorn with 4 workers on the SQLite store, then on a private Redis server,
  16 client threads each posting single-callback batches.

Each line is compared with its target; the script exits with status 1 when one is missed. The
machine this runs on is shared, so targets sit well below typical figures.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from flask import Flask  # noqa: E402
from servers import BIN, RedisServer, free_port, post, start, stop  # noqa: E402

from flask_voxcallbacks import VoxCallbacks, callback_received  # noqa: E402
from flask_voxcallbacks.testing import (  # noqa: E402
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    DEFAULT_SALT,
    make_batch,
    make_callback,
)

#: Minimum callbacks per second for each measurement.
TARGETS = {
    "in-process, batch of 1": 1500.0,
    "in-process, batch of 10": 3000.0,
    "gunicorn -w 4, sqlite": 400.0,
    "gunicorn -w 4, redis": 400.0,
}
#: Highest acceptable 99th percentile latency over HTTP, in milliseconds.
P99_TARGET_MS = 100.0


def in_process(batch_size: int, total: int) -> float:
    app = Flask("bench")
    app.config.update(
        VOXCALLBACKS_ACCOUNT_ID=DEFAULT_ACCOUNT_ID,
        VOXCALLBACKS_API_KEY=DEFAULT_API_KEY,
        VOXCALLBACKS_SALT=DEFAULT_SALT,
    )
    VoxCallbacks(app)
    client = app.test_client()
    types = ["min_balance", "sms_inbound", "renewed_subscriptions", "account_is_frozen"]
    bodies = [
        json.dumps(make_batch(*(make_callback(types[i % len(types)]) for i in range(batch_size))))
        for _ in range(total // batch_size)
    ]
    handled = []
    with callback_received.connected_to(lambda sender, callback: handled.append(1), app):
        started = time.perf_counter()
        for body in bodies:
            response = client.post("/voximplant/callbacks", data=body)
            assert response.status_code == 200
        elapsed = time.perf_counter() - started
    assert len(handled) == len(bodies) * batch_size
    return len(handled) / elapsed


def over_http(store_url: str, total: int, log: Path) -> tuple[float, list[float]]:
    port = free_port()
    env = {"VOXCALLBACKS_STORE": store_url, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = start(
            [
                str(BIN / "gunicorn"),
                "-w",
                "4",
                "-b",
                f"127.0.0.1:{port}",
                "example_app:create_app()",
            ],
            port,
            out,
            env,
        )
    url = f"http://127.0.0.1:{port}/voximplant/callbacks"
    bodies = [json.dumps(make_batch(make_callback("js_fail"))).encode() for _ in range(total)]

    def timed(body: bytes) -> float:
        begun = time.perf_counter()
        status, _ = post(url, body)
        assert status == 200, status
        return time.perf_counter() - begun

    try:
        for body in bodies[:50]:  # warm up every worker
            timed(body)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            latencies = list(pool.map(timed, bodies[50:]))
        elapsed = time.perf_counter() - started
    finally:
        stop(process)
    return len(latencies) / elapsed, latencies


def main() -> int:
    results: list[tuple[str, float, str]] = []
    results.append(("in-process, batch of 1", in_process(1, 3000), ""))
    results.append(("in-process, batch of 10", in_process(10, 5000), ""))
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        # Both stores at the durability the docs recommend for production: SQLite in WAL mode
        # with synchronous=NORMAL, Redis with appendonly yes and appendfsync everysec.
        redis = RedisServer(directory, appendfsync="everysec")
        redis.start()
        try:
            for name, url in (
                ("gunicorn -w 4, sqlite", f"sqlite:///{directory}/bench.db"),
                ("gunicorn -w 4, redis", redis.url),
            ):
                rate, latencies = over_http(url, 3050, directory / "gunicorn.log")
                cuts = statistics.quantiles(latencies, n=100)
                p50, p99 = cuts[49] * 1000, cuts[98] * 1000
                results.append((name, rate, f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
                if p99 > P99_TARGET_MS:
                    results.append((f"{name} p99", -1.0, f"{p99:.1f} ms > {P99_TARGET_MS} ms"))
        finally:
            redis.stop()
    missed = 0
    print(
        f"{'measurement':<28} {'callbacks/s':>12} {'target':>8}  notes   (cpus: {os.cpu_count()})"
    )
    for name, rate, notes in results:
        target = TARGETS.get(name)
        ok = rate >= 0 and (target is None or rate >= target)
        missed += not ok
        shown = f"{rate:12.0f}" if rate >= 0 else f"{'-':>12}"
        print(f"{name:<28} {shown} {target or 0:8.0f}  {notes}{'' if ok else '  MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
