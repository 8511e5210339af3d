"""What one hostile 1 MiB body costs a worker: CPU seconds and bytes of log output.

Run with ``make bench`` (or ``python benchmarks/hostile.py``). Each body is posted once to an
application with the default configuration and logging (the ``flask_voxcallbacks`` logger at its
default WARNING level, printed to stderr), in a fresh process whose CPU time and stderr are
measured:

* ``empty-items``: ``{"callbacks": [{}, {}, ...]}``, about 350,000 items in 1 MiB;
* ``forged-items``: 1,000 items shaped like real callbacks, each with a wrong hash, padded to
  1 MiB.

Targets: well under a second of CPU and under 4 KiB of log per body.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
CPU_TARGET_SECONDS = 0.5
LOG_TARGET_BYTES = 4096

WORKER = """
import resource, sys
sys.path[:0] = [{root!r}]
from flask import Flask
from flask_voxcallbacks import VoxCallbacks
from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, DEFAULT_SALT

app = Flask("hostile")
app.config.update(
    VOXCALLBACKS_ACCOUNT_ID=DEFAULT_ACCOUNT_ID,
    VOXCALLBACKS_API_KEY=DEFAULT_API_KEY,
    VOXCALLBACKS_SALT=DEFAULT_SALT,
)
VoxCallbacks(app)
client = app.test_client()
body = sys.stdin.buffer.read()
before = resource.getrusage(resource.RUSAGE_SELF)
status = client.post("/voximplant/callbacks", data=body).status_code
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(status, round(cpu, 3))
"""


def empty_items() -> bytes:
    count = (MIB - 20) // 3
    return b'{"callbacks": [' + b",".join([b"{}"] * count) + b"]}"


def forged_items() -> bytes:
    sys.path[:0] = [str(ROOT)]
    from flask_voxcallbacks.testing import make_callback

    items = [make_callback("sms_inbound", salt="guessed") for _ in range(1000)]
    padding = (MIB - len(json.dumps({"callbacks": items}))) // 1000 - 20
    for item in items:
        item["sms_inbound"]["sms_inbound"]["sms_body"] = "x" * padding
    return json.dumps({"callbacks": items}).encode()


def measure(body: bytes) -> tuple[int, float, int]:
    result = subprocess.run(
        [sys.executable, "-c", WORKER.format(root=str(ROOT))],
        input=body,
        capture_output=True,
        timeout=300,
        check=True,
    )
    status, cpu = result.stdout.split()
    return int(status), float(cpu), len(result.stderr)


def main() -> int:
    failed = False
    for name, body in (("empty-items", empty_items()), ("forged-items", forged_items())):
        status, cpu, log_bytes = measure(body)
        ok = cpu <= CPU_TARGET_SECONDS and log_bytes <= LOG_TARGET_BYTES
        failed |= not ok
        print(
            f"{name:13s} {len(body) / MIB:.2f} MiB -> {status}  cpu {cpu:.3f} s"
            f" (target {CPU_TARGET_SECONDS})  log {log_bytes} bytes (target {LOG_TARGET_BYTES})"
            f"  {'PASS' if ok else 'FAIL'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
