"""Instructions per callback, counted by ``valgrind --tool=callgrind``: a figure that does not
move with the machine's load, to compare two versions of the package where timings are too noisy.

``python benchmarks/instructions.py [CHECKOUT ...]`` runs the same workload (1,000 callbacks of
five types in two batches of 500, through Flask's test client, memory store, one receiver) once
without and once with the batches, under callgrind, for this checkout and for each CHECKOUT given
(another clone or ``git worktree`` of the project), and prints the instructions the batches
took, per callback. ``--config KEY=VALUE`` (repeatable; VALUE read as JSON when it parses)
sets the application's configuration, e.g. ``--config VOXCALLBACKS_METRICS='"prometheus"'``
to measure what the metrics cost. Needs valgrind (``apt-get install valgrind``); each run takes a
minute or so.
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
BATCHES, SIZE = 2, 500

WORKLOAD = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from flask import Flask
from flask_voxcallbacks import VoxCallbacks, callback_received
from flask_voxcallbacks.testing import (
    DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, DEFAULT_SALT, make_batch, make_callback,
)
app = Flask(__name__)
app.config.update(
    VOXCALLBACKS_ACCOUNT_ID=DEFAULT_ACCOUNT_ID,
    VOXCALLBACKS_API_KEY=DEFAULT_API_KEY,
    VOXCALLBACKS_SALT=DEFAULT_SALT,
)
app.config.update(json.loads(os.environ.get("VOX_BENCH_CONFIG", "{}")))
VoxCallbacks(app)
callback_received.connect(lambda sender, callback: None, app, weak=False)
client = app.test_client()
types = ["min_balance", "sms_inbound", "renewed_subscriptions", "account_is_frozen", "card_payment"]
bodies = [
    json.dumps(make_batch(*(
        make_callback(types[i % 5], callback_id=10**12 + k * 10**6 + i) for i in range(SIZE)
    )))
    for k in range(BATCHES)
]
# One request first, so that what is set up on the first request is outside the count.
first = make_batch(make_callback("min_balance", callback_id=1))
client.post("/voximplant/callbacks", json=first)
for body in bodies[: int(sys.argv[2])]:
    answer = client.post("/voximplant/callbacks", data=body, content_type="application/json")
    assert answer.status_code == 200, answer.get_data()
""".replace("SIZE", str(SIZE)).replace("BATCHES", str(BATCHES))


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


def main() -> int:
    args = sys.argv[1:]
    config = {}
    while "--config" in args:
        at = args.index("--config")
        key, _, value = args[at + 1].partition("=")
        try:
            config[key] = json.loads(value)
        except ValueError:
            config[key] = value
        del args[at : at + 2]
    os.environ["VOX_BENCH_CONFIG"] = json.dumps(config)
    checkouts = [ROOT, *(Path(arg).resolve() for arg in args)]
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "workload.py"
        script.write_text(WORKLOAD)
        for checkout in checkouts:
            base = instructions(checkout, 0, script)
            total = instructions(checkout, BATCHES, script)
            per_callback = (total - base) / (BATCHES * SIZE)
            print(f"{per_callback / 1000:8.1f} k instructions per callback  {checkout}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
