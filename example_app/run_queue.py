"""``QUEUE=rq make run-queue`` (or ``QUEUE=celery``): the example app in queue mode.

Starts a private Redis server (store and broker, data in ``instance/queue-redis``), one worker
of the chosen engine and the app on ``PORT`` (5000), and stops all three on Ctrl-C. Post samples
with ``flask --app example_app voxcallbacks send min_balance``: the app answers at once with a
``queued`` count and the worker prints what the handlers print.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing answers on port {port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["rq", "celery"], default="rq")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    engine = parser.parse_args().engine
    port = parser.parse_args().port
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SystemExit("redis-server is needed: `make run-queue` installs it")
    data = ROOT / "instance" / "queue-redis"
    data.mkdir(parents=True, exist_ok=True)
    redis_port = free_port()
    redis = f"redis://127.0.0.1:{redis_port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VOXCALLBACKS_STORE": f"{redis}/0"}
    if engine == "rq":
        env["VOXCALLBACKS_QUEUE"] = f"rq://127.0.0.1:{redis_port}/1"
        worker = [str(BIN / "flask"), "--app", "example_app", "voxcallbacks", "worker"]
    else:
        env["VOXCALLBACKS_QUEUE"] = "celery"
        env["CELERY_BROKER_URL"] = f"{redis}/1"
        worker = [str(BIN / "celery"), "-A", "example_app.make_celery", "worker", "--pool=solo"]
    store = ["--dir", str(data), "--appendonly", "yes", "--save", ""]
    commands = [
        [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", *store],
        worker,
        [str(BIN / "flask"), "--app", "example_app", "run", "--port", str(port)],
    ]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            # The commands are this script's own, with paths of this machine's programs.
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env))  # noqa: S603
            if command[0] == redis_server:
                wait_for(redis_port)
        print(f"Queue mode ({engine}): POST callbacks to http://127.0.0.1:{port}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        # Ctrl-C stops everything, even when this was started with SIGINT ignored (as a
        # shell's background job is).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # The app and the worker together, within 15 s; then Redis, which the worker needs to
        # sign off.
        _stop(processes[1:])
        _stop(processes[:1])


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
