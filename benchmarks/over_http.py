"""Callbacks per second over loopback HTTP: gunicorn with two sync workers, loaded by ``wrk``.

Run with ``make bench`` (which installs wrk from the system packages when missing) or
``python benchmarks/over_http.py [STORE ...]`` (the guide and the stores named, or all). Each
case starts ``gunicorn -w 2`` on 127.0.0.1, warms it up, and lets ``wrk -t2 -c16`` post for a
few seconds; every request carries new callback ids (see ``post_bodies.lua``). Cases run
interleaved, twice, and the better run counts:

* the guide's route, and the extension with each store (memory, SQLite, Redis, PostgreSQL), in
  batches of 1 and of 10. SQLite, Redis and PostgreSQL run at the durability the docs recommend
  for production: SQLite in WAL mode with ``synchronous=NORMAL``, Redis with ``appendonly yes``
  and ``appendfsync everysec``, PostgreSQL with its defaults (``fsync`` and
  ``synchronous_commit`` on).

Prints a table with PASS or FAIL per target and writes the ``http`` entry of
``benchmarks/results.json``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from results import save  # noqa: E402
from servers import BIN, PostgresServer, RedisServer, free_port, post, start, stop  # noqa: E402

from flask_voxcallbacks.store.postgres import create_table_statements  # noqa: E402
from flask_voxcallbacks.testing import make_batch, make_callback, new_callback_id  # noqa: E402

SECONDS = 4
ROUNDS = 2
THREADS, CONNECTIONS = 2, 16
TYPES = ["min_balance", "sms_inbound", "renewed_subscriptions", "account_is_frozen", "card_payment"]
#: (case, gunicorn target, store, batch size)
CASES = [
    ("guide, batch 1", "apps:guide", "", 1),
    ("memory, batch 1", "apps:extension()", "memory", 1),
    ("sqlite, batch 1", "apps:extension()", "sqlite", 1),
    ("redis, batch 1", "apps:extension()", "redis", 1),
    ("postgres, batch 1", "apps:extension()", "postgres", 1),
    ("guide, batch 10", "apps:guide", "", 10),
    ("memory, batch 10", "apps:extension()", "memory", 10),
    ("sqlite, batch 10", "apps:extension()", "sqlite", 10),
    ("redis, batch 10", "apps:extension()", "redis", 10),
    ("postgres, batch 10", "apps:extension()", "postgres", 10),
]
#: The extension's callbacks per second as a share of the guide route's, at the same batch size.
TARGETS = {
    "memory, batch 1": 0.85,
    "sqlite, batch 10": 0.40,
    "redis, batch 10": 0.40,
    "postgres, batch 10": 0.40,
}
#: Bodies written for each batch size: more than the fastest case posts in SECONDS.
BODIES = {1: 50_000, 10: 20_000}


def write_bodies(path: Path, batch: int, count: int) -> None:
    """Bodies of ``batch`` callbacks with consecutive ids, as Voximplant numbers its callbacks (a
    sequence per account), from a random start so that no run meets the ids of another."""
    first = new_callback_id() % 2**62
    with path.open("w") as out:
        for n in range(count):
            items = [
                make_callback(TYPES[(n + i) % len(TYPES)], callback_id=first + n * batch + i)
                for i in range(batch)
            ]
            out.write(json.dumps(make_batch(*items)) + "\n")


def run_wrk(port: int, bodies: Path) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{SECONDS}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "benchmarks" / "post_bodies.lua"),
            f"http://127.0.0.1:{port}/voximplant/callbacks",
        ],
        env={"VOX_BODIES": str(bodies), "VOX_THREADS": str(THREADS), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=SECONDS + 60,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: .*", output)
    if errors or socket_errors:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    return {"requests": requests, "requests_per_second": rate}


def measure(target: str, store_url: str, batch: int, bodies: Path, log: Path) -> float:
    """Callbacks per second of one gunicorn run."""
    port = free_port()
    env = {"VOXCALLBACKS_STORE": store_url, "PYTHONPATH": f"{ROOT / 'benchmarks'}:{ROOT}"}
    args = [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    with log.open("ab") as out:
        process = start([*args, target], port, out, env)
    try:
        for _ in range(20):  # every worker imports and answers once before the load
            warm = json.dumps(make_batch(*(make_callback("min_balance") for _i in range(batch))))
            status, _ = post(f"http://127.0.0.1:{port}/voximplant/callbacks", warm.encode())
            assert status == 200, status
        result = run_wrk(port, bodies)
    except RuntimeError:
        stop(process)
        tail = log.read_text(errors="replace").splitlines()[-30:]
        print(f"{target} with {store_url or 'no store'}, gunicorn's log:", *tail, sep="\n")
        raise
    finally:
        stop(process)
    if result["requests"] > BODIES[batch]:
        raise RuntimeError(f"{result['requests']} requests, {BODIES[batch]} bodies: raise BODIES")
    return result["requests_per_second"] * batch


def main() -> int:
    stores = sys.argv[1:]
    if any(store not in {case[2] for case in CASES} for store in stores):
        print("usage: over_http.py [memory|sqlite|redis|postgres ...]: the stores to measure")
        return 2
    cases = [case for case in CASES if not stores or case[2] in ("", *stores)]
    if shutil.which("wrk") is None:
        print("wrk is not installed; `make bench` installs it")
        return 1
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        files = {}
        for batch, count in BODIES.items():
            files[batch] = directory / f"bodies-{batch}.jsonl"
            write_bodies(files[batch], batch, count)
        redis = RedisServer(directory, appendfsync="everysec")
        redis.start()
        postgres = PostgresServer()
        postgres.start()
        try:
            for round_ in range(ROUNDS):
                for name, target, store, batch in cases:
                    if store == "sqlite":
                        url = f"sqlite:///{directory}/bench-{round_}-{batch}.db"
                    elif store == "redis":
                        redis.flush()
                        url = redis.url
                    elif store == "postgres":
                        url = postgres.url
                        statements = create_table_statements()
                        postgres.execute("DROP TABLE IF EXISTS voxcallbacks", *statements)
                    else:
                        url = "memory://"
                    rate = measure(target, url, batch, files[batch], directory / "gunicorn.log")
                    best[name] = max(best.get(name, 0.0), rate)
        finally:
            redis.stop()
            postgres.stop()
    guide = {1: best["guide, batch 1"], 10: best["guide, batch 10"]}
    print(f"{'case (gunicorn -w 2, wrk -t2 -c16)':36s} {'callbacks/s':>12} {'of guide':>9}")
    for name, _, _, batch in cases:
        print(f"{name:36s} {best[name]:12.0f} {best[name] / guide[batch]:9.0%}")
    failed = 0
    print(f"\n{'target':28s} {'measured':>9} {'limit':>6}")
    ratios = {}
    for name, limit in TARGETS.items():
        if name not in best:
            continue
        batch = next(b for n, _, _, b in CASES if n == name)
        ratios[name] = best[name] / guide[batch]
        ok = ratios[name] >= limit
        failed += not ok
        verdict = "PASS" if ok else "FAIL"
        print(f"{name + ' / guide':28s} {ratios[name]:9.0%} {limit:6.0%}  {verdict}")
    save("http", {"callbacks_per_second": best, "share_of_guide": ratios, "targets": TARGETS})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
