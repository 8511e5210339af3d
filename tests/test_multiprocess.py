"""Gunicorn with several workers on one store: each callback handled once, none lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from multiproc_app import FAIL_EVERY
from servers import BIN, ROOT, free_port, post, start, stop, voxcallbacks_cli

from flask_voxcallbacks.testing import make_batch, make_callback

pytestmark = pytest.mark.subprocess

TYPES = ["min_balance", "sms_inbound", "account_is_frozen", "renewed_subscriptions", "card_payment"]


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def environment(request, tmp_path: Path) -> dict[str, str]:
    store = (
        f"sqlite:///{tmp_path}/store.db"
        if request.param == "sqlite"
        else request.getfixturevalue(f"{request.param}_url")
    )
    return {
        "VOXCALLBACKS_STORE": store,
        "VOX_LEDGER": str(tmp_path / "ledger.db"),
        "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}",
    }


def gunicorn(env: dict[str, str], workers: int, log_path: Path):
    port = free_port()
    with log_path.open("wb") as log:
        process = start(
            [
                str(BIN / "gunicorn"),
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "120",
                "multiproc_app:create_app()",
            ],
            port,
            log,
            env,
        )
    return process, f"http://127.0.0.1:{port}/voximplant/callbacks"


def attempts(env: dict[str, str]) -> list[tuple[int, int, str]]:
    with closing(sqlite3.connect(env["VOX_LEDGER"], timeout=60)) as db:
        return db.execute("SELECT callback_id, pid, outcome FROM attempts").fetchall()


def flask_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return voxcallbacks_cli("multiproc_app:create_app", *args, env=env)


def test_500_callbacks_three_times_each_four_workers(environment, tmp_path: Path) -> None:
    ids = list(range(70_001, 70_501))
    bodies = [
        json.dumps(make_batch(make_callback(TYPES[i % len(TYPES)], callback_id=cid))).encode()
        for i, cid in enumerate(ids)
    ]
    process, url = gunicorn(environment, 4, tmp_path / "gunicorn.log")
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            futures = [pool.submit(post, url, body) for body in bodies for _ in range(3)]
            statuses = Counter(future.result()[0] for future in futures)
    finally:
        stop(process)
    assert set(statuses) <= {200, 500, 503}, statuses
    assert statuses[500] >= 1, "some first attempts failed"

    replay = flask_cli(environment, "replay", "--all")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    listing = flask_cli(environment, "failed")
    assert "No failed or queued callbacks." in listing.stdout, listing.stdout + listing.stderr

    rows = attempts(environment)
    succeeded = Counter(cid for cid, _, outcome in rows if outcome == "succeeded")
    failed = Counter(cid for cid, _, outcome in rows if outcome == "failed")
    assert set(succeeded) == set(ids), "every callback was handled"
    assert set(succeeded.values()) == {1}, "no callback was handled twice"
    assert set(failed) == {cid for cid in ids if cid % FAIL_EVERY == 0}
    assert set(failed.values()) == {1}
    assert len({pid for _, pid, _ in rows}) > 2, "the work was spread over several processes"


def test_killed_worker_callback_is_handled_after_the_lease(environment, tmp_path: Path) -> None:
    # The post right after the kill must land within the lease: 12 s leaves room on a busy machine.
    environment["VOX_LEASE_SECONDS"] = "12"
    body = json.dumps(make_batch(make_callback("js_fail", callback_id=80_001))).encode()
    process, url = gunicorn(environment, 2, tmp_path / "gunicorn.log")
    try:
        hung = threading.Thread(target=post, args=(url, body), daemon=True)
        hung.start()
        deadline = time.monotonic() + 30
        while not (
            started := [
                pid for _, pid, outcome in attempts_or_none(environment) if outcome == "started"
            ]
        ):
            assert time.monotonic() < deadline, "the handler never started"
            time.sleep(0.05)
        os.kill(started[0], signal.SIGKILL)
        hung.join(timeout=30)

        status, answer = post(url, body)
        assert status == 503, answer
        assert json.loads(answer)["in_progress"] == 1

        deadline = time.monotonic() + 60
        while status != 200:
            assert time.monotonic() < deadline, f"still {status} after the lease"
            time.sleep(0.25)
            status, answer = post(url, body)
        assert json.loads(answer)["accepted"] == 1
        status, answer = post(url, body)
        assert json.loads(answer)["duplicates"] == 1
    finally:
        stop(process)
    outcomes = [outcome for cid, _, outcome in attempts(environment) if cid == 80_001]
    assert outcomes == ["started", "succeeded"]


def attempts_or_none(env: dict[str, str]) -> list[tuple[int, int, str]]:
    try:
        return attempts(env)
    except sqlite3.OperationalError:
        return []


def test_gunicorn_refuses_a_chunked_body_over_the_cap(environment, tmp_path: Path) -> None:
    import http.client

    process, url = gunicorn(environment, 2, tmp_path / "gunicorn.log")
    port = int(url.split(":")[2].split("/")[0])
    try:
        for body, expected in (([b" " * 65536] * 20, 413), ([b'{"callbacks": []}'], 200)):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request(
                "POST",
                "/voximplant/callbacks",
                body=iter(body),
                headers={"Transfer-Encoding": "chunked"},
                encode_chunked=True,
            )
            assert connection.getresponse().status == expected
            connection.close()
    finally:
        stop(process)
