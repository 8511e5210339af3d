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

For each case it also reports where the time goes on the server side: the CPU time of the
gunicorn processes and of the store's server (Redis, PostgreSQL) per callback, read from
``/proc`` before and after the load, and for Redis the commands each callback costs (``INFO
commandstats``). The SQLite store's statements per batch are counted in process, through
SQLite's trace callback.

Then latency: each store and the guide answer one-callback requests paced at half the guide's
highest rate (16 connections, each waiting between its requests), and ``wrk --latency`` gives the
50th and 99th percentiles.

Prints tables with PASS or FAIL per target and writes the ``http`` entry of
``benchmarks/results.json``.
"""

from __future__ import annotations

import json
import os
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
    "memory, batch 1": 0.88,
    "sqlite, batch 10": 0.50,
    "redis, batch 10": 0.45,
    "postgres, batch 10": 0.40,
}
#: The 99th percentile of a one-callback request at half the guide's highest rate, as a multiple
#: of the guide's.
LATENCY_TARGETS = {"memory": 1.5, "sqlite": 3.0, "redis": 3.0}
#: The connections of the paced load of the latency cases (each waits between its requests).
PACED_CONNECTIONS = 16
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


def run_wrk(
    port: int, bodies: Path, connections: int = CONNECTIONS, pace_ms: int = 0
) -> dict[str, float]:
    """One wrk run: requests, requests per second and, for a paced run (``pace_ms``), the 50th
    and 99th percentiles of the latency in milliseconds."""
    env = {"VOX_BODIES": str(bodies), "VOX_THREADS": str(THREADS), "PATH": "/usr/bin:/bin"}
    if pace_ms:
        env["VOX_DELAY_MS"] = str(pace_ms)
    output = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{connections}",
            f"-d{SECONDS}s",
            "--timeout",
            "10s",
            *(["--latency"] if pace_ms else []),
            "-s",
            str(ROOT / "benchmarks" / "post_bodies.lua"),
            f"http://127.0.0.1:{port}/voximplant/callbacks",
        ],
        env=env,
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
    result = {"requests": requests, "requests_per_second": rate}
    for share in ("50", "99"):
        found = re.search(rf"^\s+{share}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if found:
            unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
            result[f"p{share}_ms"] = float(found.group(1)) * unit
    return result


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far (those gone count nothing)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def family(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's workers, PostgreSQL's backends)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found


def redis_commands(url: str) -> dict[str, tuple[int, int]]:
    """Calls and microseconds of each command the Redis server has run."""
    import redis

    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(value["calls"]), int(value["usec"]))
        for name, value in stats.items()
    }


def sqlite_statements(batch: int) -> int:
    """The SQL statements the SQLite store runs for one batch of ``batch`` new callbacks."""
    from apps import extension

    with tempfile.TemporaryDirectory() as scratch:
        os.environ["VOXCALLBACKS_STORE"] = f"sqlite:///{scratch}/vox.db"
        try:
            app = extension()
        finally:
            del os.environ["VOXCALLBACKS_STORE"]
        store = app.extensions["voxcallbacks"].store
        client = app.test_client()
        client.post("/voximplant/callbacks", json=make_batch(make_callback("min_balance")))
        statements: list[str] = []
        store._connection().set_trace_callback(statements.append)
        items = [make_callback(TYPES[i % len(TYPES)]) for i in range(batch)]
        answer = client.post("/voximplant/callbacks", json=make_batch(*items))
        assert answer.status_code == 200, answer.get_data()
        store.close()
    return len(statements)


def measure(
    target: str,
    store_url: str,
    batch: int,
    bodies: Path,
    log: Path,
    store_pid: int | None = None,
    pace_ms: int = 0,
) -> dict[str, float]:
    """One gunicorn run: callbacks per second, the CPU time per callback of gunicorn and of the
    store's server (the process ``store_pid`` and its children), Redis's commands per callback,
    and for a paced run (``pace_ms``) the latency percentiles."""
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
        workers = family(process.pid)
        store_pids = family(store_pid) if store_pid else []
        commands = redis_commands(store_url) if store_url.startswith("redis") else {}
        before = cpu_seconds(workers), cpu_seconds(store_pids)
        if pace_ms:
            result = run_wrk(port, bodies, PACED_CONNECTIONS, pace_ms)
        else:
            result = run_wrk(port, bodies)
        after = cpu_seconds(workers), cpu_seconds(store_pids)
        after_commands = redis_commands(store_url) if commands else {}
    except RuntimeError:
        stop(process)
        tail = log.read_text(errors="replace").splitlines()[-30:]
        print(f"{target} with {store_url or 'no store'}, gunicorn's log:", *tail, sep="\n")
        raise
    finally:
        stop(process)
    if result["requests"] > BODIES[batch]:
        raise RuntimeError(f"{result['requests']} requests, {BODIES[batch]} bodies: raise BODIES")
    callbacks = result["requests"] * batch
    figures = {
        "callbacks_per_second": result["requests_per_second"] * batch,
        "gunicorn_cpu_us": (after[0] - before[0]) / callbacks * 1e6,
        "store_cpu_us": (after[1] - before[1]) / callbacks * 1e6,
    }
    for name, (calls, usec) in after_commands.items():
        calls_before, usec_before = commands.get(name, (0, 0))
        if calls > calls_before:
            figures[f"redis {name} calls"] = (calls - calls_before) / callbacks
            figures[f"redis {name} us"] = (usec - usec_before) / callbacks
    figures.update({key: value for key, value in result.items() if key.startswith("p")})
    return figures


def main() -> int:
    stores = sys.argv[1:]
    if any(store not in {case[2] for case in CASES} for store in stores):
        print("usage: over_http.py [memory|sqlite|redis|postgres ...]: the stores to measure")
        return 2
    cases = [case for case in CASES if not stores or case[2] in ("", *stores)]
    if shutil.which("wrk") is None:
        print("wrk is not installed; `make bench` installs it")
        return 1
    best: dict[str, dict[str, float]] = {}
    paced: dict[str, dict[str, float]] = {}
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
        log = directory / "gunicorn.log"

        def store_for(store: str, run: str) -> tuple[str, int | None]:
            """A fresh store of this kind: its URL and the process id of its server."""
            if store == "sqlite":
                return f"sqlite:///{directory}/bench-{run}.db", None
            if store == "redis":
                redis.flush()
                assert redis.process is not None
                return redis.url, redis.process.pid
            if store == "postgres":
                postgres.execute("DROP TABLE IF EXISTS voxcallbacks", *create_table_statements())
                return postgres.url, postgres.pid()
            return "memory://", None

        try:
            for round_ in range(ROUNDS):
                for name, target, store, batch in cases:
                    url, pid = store_for(store, f"{round_}-{batch}")
                    figures = measure(target, url, batch, files[batch], log, pid)
                    rate = figures["callbacks_per_second"]
                    if rate > best.get(name, {}).get("callbacks_per_second", 0.0):
                        best[name] = figures
            # Latency at half the guide's highest rate, one callback per request.
            half = best["guide, batch 1"]["callbacks_per_second"] / 2
            pace_ms = max(1, round(PACED_CONNECTIONS * 1000 / half))
            for round_ in range(ROUNDS):
                for name, target, store, batch in cases:
                    if batch != 1:
                        continue
                    url, pid = store_for(store, f"paced-{round_}")
                    figures = measure(target, url, 1, files[1], log, pid, pace_ms=pace_ms)
                    if figures["p99_ms"] < paced.get(name, {}).get("p99_ms", float("inf")):
                        paced[name] = figures
        finally:
            redis.stop()
            postgres.stop()
    statements = {batch: sqlite_statements(batch) for batch in (1, 10)}
    failed = report(cases, best, paced, statements)
    save(
        "http",
        {
            "cases": best,
            "paced": paced,
            "sqlite_statements_per_batch": statements,
            "targets": TARGETS,
            "latency_targets": LATENCY_TARGETS,
        },
    )
    return 1 if failed else 0


def report(
    cases: list[tuple[str, str, str, int]],
    best: dict[str, dict[str, float]],
    paced: dict[str, dict[str, float]],
    statements: dict[int, int],
) -> int:
    """Print the tables; return how many targets were missed."""
    guide = {batch: best[f"guide, batch {batch}"]["callbacks_per_second"] for batch in (1, 10)}
    print(
        f"{'case (gunicorn -w 2, wrk -t2 -c16)':30s} {'callbacks/s':>12} {'of guide':>9}"
        f" {'CPU us per callback: gunicorn':>30} {'store':>6}"
    )
    for name, _, store, batch in cases:
        figures = best[name]
        rate = figures["callbacks_per_second"]
        store_cpu = f"{figures['store_cpu_us']:6.0f}" if store in ("redis", "postgres") else ""
        print(
            f"{name:30s} {rate:12.0f} {rate / guide[batch]:9.0%}"
            f" {figures['gunicorn_cpu_us']:30.0f} {store_cpu:>6}"
        )
    for name, _, store, _ in cases:
        if store == "redis":
            commands = sorted(
                (key.split()[1], best[name][key], best[name][f"redis {key.split()[1]} us"])
                for key in best[name]
                if key.startswith("redis ") and key.endswith(" calls")
            )
            listed = ", ".join(f"{cmd} {calls:.2f} ({us:.1f} us)" for cmd, calls, us in commands)
            print(f"Redis commands per callback, {name}: {listed}")
    print(
        "SQLite statements per batch: "
        + ", ".join(f"{n} for a batch of {batch}" for batch, n in statements.items())
    )
    failed = 0
    print(f"\n{'target':28s} {'measured':>9} {'limit':>6}")
    for name, limit in TARGETS.items():
        if name not in best:
            continue
        batch = next(b for n, _, _, b in CASES if n == name)
        ratio = best[name]["callbacks_per_second"] / guide[batch]
        ok = ratio >= limit
        failed += not ok
        print(f"{name + ' / guide':28s} {ratio:9.0%} {limit:6.0%}  {'PASS' if ok else 'FAIL'}")
    rate = paced["guide, batch 1"]["callbacks_per_second"]
    print(f"\none-callback requests at {rate:.0f}/s (half the guide's highest rate):")
    print(f"{'case':20s} {'requests/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'p99 of guide':>13}")
    guide_p99 = paced["guide, batch 1"]["p99_ms"]
    for name, figures in paced.items():
        store = name.split(",")[0]
        ratio = figures["p99_ms"] / guide_p99
        p99_limit = LATENCY_TARGETS.get(store)
        verdict = ""
        if p99_limit is not None:
            ok = ratio <= p99_limit
            failed += not ok
            verdict = f" (limit {p99_limit:.1f}x) {'PASS' if ok else 'FAIL'}"
        print(
            f"{store:20s} {figures['callbacks_per_second']:10.0f} {figures['p50_ms']:7.2f}"
            f" {figures['p99_ms']:7.2f} {ratio:12.2f}x{verdict}"
        )
    return failed


if __name__ == "__main__":
    sys.exit(main())
