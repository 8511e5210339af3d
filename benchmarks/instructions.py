"""Instructions per callback, counted by ``valgrind --tool=callgrind``: a figure that does not
move with the machine's load, to compare two versions of the package where timings are too noisy.

``python benchmarks/instructions.py [CHECKOUT ...]`` runs the same workload (1,000 callbacks of
five types, in batches of 500 through Flask's test client, memory store, one receiver) once
without and once with the batches, under callgrind, for this checkout and for each CHECKOUT given
(another clone or ``git worktree`` of the project), and prints the instructions the batches
took, per callback. ``--batch SIZE`` sets the batch size (1,000 callbacks in all, or SIZE when it
is larger; at 1, the figure is per request). ``--same-work`` also counts the same work written by
hand (``benchmarks/same_work.py``, the in-process yardstick of ``make bench``) on the same
bodies, and prints the extension's ratio to it. ``--config KEY=VALUE`` (repeatable; VALUE read
as JSON when it parses) sets the application's configuration, e.g.
``--config VOXCALLBACKS_METRICS='"prometheus"'`` to measure what the metrics cost. Needs valgrind
(``apt-get install valgrind``); each run takes a minute or so.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLBACKS = 1000

WORKLOAD = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from flask import Flask
from flask_voxcallbacks import VoxCallbacks, callback_received
from flask_voxcallbacks.testing import (
    DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, DEFAULT_SALT, make_batch, make_callback,
)
size, batches = int(os.environ["VOX_BENCH_SIZE"]), int(os.environ["VOX_BENCH_BATCHES"])
if os.environ.get("VOX_BENCH_SAME_WORK"):
    sys.path.insert(0, os.environ["VOX_BENCH_SAME_WORK"])
    import same_work
    app = same_work.create_app()
    same_work.callback_received.connect(lambda sender, callback: None, app, weak=False)
else:
    app = Flask(__name__)
    app.config.update(
        VOXCALLBACKS_ACCOUNT_ID=DEFAULT_ACCOUNT_ID,
        VOXCALLBACKS_API_KEY=DEFAULT_API_KEY,
        VOXCALLBACKS_SALT=DEFAULT_SALT,
        VOXCALLBACKS_MAX_ITEMS=max(size, 1000),
        VOXCALLBACKS_MAX_CONTENT_LENGTH=64 * 1024 * 1024,
    )
    app.config.update(json.loads(os.environ.get("VOX_BENCH_CONFIG", "{}")))
    VoxCallbacks(app)
    callback_received.connect(lambda sender, callback: None, app, weak=False)
client = app.test_client()
types = ["min_balance", "sms_inbound", "renewed_subscriptions", "account_is_frozen", "card_payment"]
bodies = [
    json.dumps(make_batch(*(
        make_callback(types[i % 5], callback_id=10**12 + k * 10**6 + i) for i in range(size)
    )))
    for k in range(batches)
]
# One request first, so that what is set up on the first request is outside the count.
first = make_batch(make_callback("min_balance", callback_id=1))
client.post("/voximplant/callbacks", json=first)
for body in bodies[: int(sys.argv[2])]:
    answer = client.post("/voximplant/callbacks", data=body, content_type="application/json")
    assert answer.status_code == 200, answer.get_data()
"""


def instructions(checkout: Path, batches: int, script: Path) -> int:
    with tempfile.TemporaryDirectory() as folder:
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={folder}/callgrind.out",
                sys.executable,
                str(script),
                str(checkout),
                str(batches),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
        )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise RuntimeError(run.stderr[-2000:])
    return int(found.group(1))


def _options(args: list[str], name: str) -> list[str]:
    """Remove every ``name VALUE`` from ``args``; return the VALUEs, in order."""
    values = []
    while name in args:
        at = args.index(name)
        values.append(args[at + 1])
        del args[at : at + 2]
    return values


def main() -> int:
    args = sys.argv[1:]
    config = {}
    for option in _options(args, "--config"):
        key, _, value = option.partition("=")
        try:
            config[key] = json.loads(value)
        except ValueError:
            config[key] = value
    size = int((_options(args, "--batch") or ["500"])[-1])
    same = "--same-work" in args
    args = [arg for arg in args if arg != "--same-work"]
    batches = max(1, CALLBACKS // size)
    os.environ.update(
        VOX_BENCH_CONFIG=json.dumps(config),
        VOX_BENCH_SIZE=str(size),
        VOX_BENCH_BATCHES=str(batches),
    )
    checkouts = [ROOT, *(Path(arg).resolve() for arg in args)]
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "workload.py"
        script.write_text(WORKLOAD)

        def per_callback(checkout: Path) -> float:
            base = instructions(checkout, 0, script)
            total = instructions(checkout, batches, script)
            return (total - base) / (batches * size)

        yardstick = None
        if same:
            os.environ["VOX_BENCH_SAME_WORK"] = str(ROOT / "benchmarks")
            yardstick = per_callback(ROOT)
            del os.environ["VOX_BENCH_SAME_WORK"]
            print(f"{yardstick / 1000:8.1f} k instructions per callback  same work by hand")
        for checkout in checkouts:
            figure = per_callback(checkout)
            ratio = f"  ({figure / yardstick:.3f}x the same work)" if yardstick else ""
            line = f"{figure / 1000:8.1f} k instructions per callback  {checkout}{ratio}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
