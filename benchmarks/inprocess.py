"""The extension against a hand-written route that does the same work, in one process.

Run with ``make bench`` (or ``python benchmarks/inprocess.py``). Four applications answer the
same bodies, measured interleaved (each round runs them all, the best of the rounds counts): the
extension with the memory store and one receiver; the same work written by hand
(``same_work.py``: constant-time md5, the SHA-256 pin, a claim and a completion in a dict, a
frozen dataclass per callback, one signal with the same receiver, a JSON summary), which is the
yardstick; the guide's
route (parse, md5, compare), which does far less (no pin, no deduplication, no typed object);
and a bare route that only parses the JSON. Bodies mix five callback types. Each is measured through
Flask's test client, as a test suite calls it, and by a direct WSGI call, without the client's
work of building each request; the targets are checked on the test client's figures.
It also times the memory store's claim + complete with 1,000 and 1,000,000 remembered ids.

Prints a table with PASS or FAIL per target and writes ``benchmarks/results.json`` (the
``inprocess`` entry). The targets are ratios, so that they hold on machines of any speed.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

sys.path[:0] = [str(ROOT / "benchmarks")]

from apps import PATH, _bare, _guide, extension, same_work  # noqa: E402
from flask import Flask  # noqa: E402
from results import save  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from flask_voxcallbacks.store.memory import MemoryStore  # noqa: E402
from flask_voxcallbacks.testing import make_batch, make_callback  # noqa: E402

TYPES = ["min_balance", "sms_inbound", "renewed_subscriptions", "account_is_frozen", "card_payment"]
#: (batch size, batches per round); about 2,000 callbacks a round above batch 1.
SIZES = [(1, 1000), (10, 200), (100, 20), (1000, 2), (10000, 1)]
ROUNDS = 3

#: Targets of the performance work: the extension's cost per request (batch 1) or per callback
#: against the same work written by hand, the growth from batch 1,000 to 10,000, the memory
#: store's cost at 1M remembered ids against 1k, and the peak memory against the guide route's.
TARGETS = {
    "batch 1 / same work": 1.05,
    "batch 1000 / same work": 1.30,
    "batch 10000 / batch 1000": 1.2,
    "memory store 1M / 1k": 1.5,
    "peak RSS, batch 10000 / guide": 1.3,
}


def bodies(batch: int, count: int) -> list[bytes]:
    return [
        json.dumps(make_batch(*(make_callback(TYPES[i % 5]) for i in range(batch)))).encode()
        for _ in range(count)
    ]


def timed(app: Flask, payloads: list[bytes]) -> float:
    """Seconds to post every payload through the test client."""
    client = app.test_client()
    gc.collect()
    started = time.perf_counter()
    for payload in payloads:
        assert client.post(PATH, data=payload).status_code == 200
    return time.perf_counter() - started


def timed_wsgi(app: Flask, payloads: list[bytes]) -> float:
    """Seconds for the application to answer every payload, called as a WSGI server would (the
    environ of each request is built beforehand)."""
    environs = [
        EnvironBuilder(path=PATH, method="POST", data=payload).get_environ() for payload in payloads
    ]
    statuses: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        statuses.append(status)

    gc.collect()
    started = time.perf_counter()
    for environ in environs:
        body = app.wsgi_app(environ, start_response)
        for _chunk in body:
            pass
        getattr(body, "close", lambda: None)()
    elapsed = time.perf_counter() - started
    assert statuses == ["200 OK"] * len(payloads), set(statuses)
    return elapsed


def per_callback(batch: int, count: int) -> dict[str, dict[str, float]]:
    """Best seconds per callback of each route, through the test client and by a direct WSGI
    call, over interleaved rounds (fresh ids each time)."""
    apps: dict[str, Callable[[], Flask]] = {
        "extension": extension,
        "same work": same_work,
        "guide": _guide,
        "bare": _bare,
    }
    ways = {"client": timed, "wsgi": timed_wsgi}
    best = {way: {name: float("inf") for name in apps} for way in ways}
    for _ in range(ROUNDS):
        for way, measure in ways.items():
            for name, build in apps.items():
                app = build()
                measure(app, bodies(batch, 2))  # warm up
                seconds = measure(app, bodies(batch, count)) / (batch * count)
                best[way][name] = min(best[way][name], seconds)
    return best


def memory_store_cost(remembered: int, probes: int = 20_000) -> float:
    store = MemoryStore()
    for callback_id in range(remembered):
        claim = store.claim(1, callback_id, "d", 300, 604_800)
        store.complete(1, callback_id, claim.token, 604_800)
    started = time.perf_counter()
    for callback_id in range(remembered, remembered + probes):
        claim = store.claim(1, callback_id, "d", 300, 604_800)
        store.complete(1, callback_id, claim.token, 604_800)
    return (time.perf_counter() - started) / probes


FACTORIES = {"extension": "extension", "guide": "_guide"}


def peak_rss(name: str) -> dict[str, float]:
    """Peak resident memory, in MiB, of a fresh process that answers one 10,000-callback batch
    with the ``name`` application: the whole process and the growth during the request."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    script = (
        "import json, re, sys;"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'benchmarks')!r}];"
        "import inprocess as b;"
        "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]);"
        f"app = b.{FACTORIES[name]}();"
        "body = b.bodies(10_000, 1)[0]; client = app.test_client();"
        "client.post(b.PATH, data=b.bodies(1, 1)[0]);"
        "before = hwm();"
        "assert client.post(b.PATH, data=body).status_code == 200;"
        "after = hwm();"
        "print(json.dumps([after / 1024, (after - before) / 1024]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    total, growth = json.loads(output)
    return {"peak_mib": total, "growth_mib": growth}


def main() -> int:
    rows: dict[str, dict[str, float]] = {}
    wsgi_rows: dict[str, dict[str, float]] = {}
    print("us per callback: test client | direct WSGI call")
    columns = f"{'extension':>10} {'same':>7} {'guide':>7} {'bare':>7} {'ext/same':>8}"
    print(f"{'batch':>6} {columns} | {columns}")
    for batch, count in SIZES:
        best = per_callback(batch, count)
        rows[str(batch)] = {name: seconds * 1e6 for name, seconds in best["client"].items()}
        wsgi_rows[str(batch)] = {name: seconds * 1e6 for name, seconds in best["wsgi"].items()}
        print(
            f"{batch:6d}"
            + " |".join(
                f" {figures['extension']:10.1f} {figures['same work']:7.1f}"
                f" {figures['guide']:7.1f} {figures['bare']:7.1f}"
                f" {figures['extension'] / figures['same work']:8.2f}"
                for figures in (rows[str(batch)], wsgi_rows[str(batch)])
            )
        )
    small, large = memory_store_cost(1_000), memory_store_cost(1_000_000)
    print(f"memory store claim + complete: {small * 1e6:.1f} us at 1k, {large * 1e6:.1f} us at 1M")
    rss = {name: peak_rss(name) for name in ("extension", "guide")}
    for name, figures in rss.items():
        print(
            f"peak RSS for a 10,000-callback batch, {name}: {figures['peak_mib']:.1f} MiB"
            f" ({figures['growth_mib']:.1f} MiB during the request)"
        )
    measured = {
        "batch 1 / same work": rows["1"]["extension"] / rows["1"]["same work"],
        "batch 1000 / same work": rows["1000"]["extension"] / rows["1000"]["same work"],
        "batch 10000 / batch 1000": rows["10000"]["extension"] / rows["1000"]["extension"],
        "memory store 1M / 1k": large / small,
        "peak RSS, batch 10000 / guide": rss["extension"]["peak_mib"] / rss["guide"]["peak_mib"],
    }
    failed = 0
    print(f"\n{'target':32s} {'measured':>9} {'limit':>6}")
    for name, limit in TARGETS.items():
        ok = measured[name] <= limit
        failed += not ok
        print(f"{name:32s} {measured[name]:9.2f} {limit:6.2f}  {'PASS' if ok else 'FAIL'}")
    save(
        "inprocess",
        {
            "us_per_callback": rows,
            "us_per_callback_wsgi": wsgi_rows,
            "memory_store_us": {"1k": small * 1e6, "1M": large * 1e6},
            "peak_rss": rss,
            "ratios": measured,
            "targets": TARGETS,
        },
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
