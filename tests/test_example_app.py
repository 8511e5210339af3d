"""The bundled example, run as a user runs it, answering the README's curl sample."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from servers import BIN, ROOT, free_port, post, start, stop, voxcallbacks_cli, wait_for_port

pytestmark = pytest.mark.subprocess

README = (ROOT / "README.rst").read_text()


def readme_curl() -> list[str]:
    block = re.search(r"\.\. code-block:: console\n\n\s+\$ (curl .*?)\n\n", README, re.S)
    assert block, "README.rst has no curl sample"
    return shlex.split(block.group(1).replace("\\\n", " "))


def test_readme_curl_body_is_the_protocol_low_balance_vector() -> None:
    args = readme_curl()
    body = json.loads(args[args.index("--data") + 1])
    vectors = json.loads((ROOT / "tests" / "vectors.json").read_text())
    assert body == vectors["4.1"]


@pytest.fixture
def example_server(tmp_path: Path):
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = start(
            [str(BIN / "flask"), "--app", "example_app", "run", "--port", str(port)], port, log
        )
        try:
            yield port, log_path
        finally:
            stop(process)


def test_example_runs_and_accepts_the_readme_curl(example_server) -> None:
    port, log_path = example_server
    args = readme_curl()
    args[-1] = args[-1].replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    result = subprocess.run(
        [*args, "--silent", "--show-error"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accepted"] == 1
    deadline = time.monotonic() + 10
    while "Low balance on account 1234567: 4.5231 USD" not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)
    status, _ = post(f"http://127.0.0.1:{port}/voximplant/callbacks", b"{")
    assert status == 400


def test_cli_send_against_the_running_example(example_server) -> None:
    port, log_path = example_server
    result = voxcallbacks_cli(
        "example_app",
        "send",
        "min_balance",
        "--url",
        f"http://127.0.0.1:{port}/voximplant/callbacks",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("200 ")
    assert json.loads(result.stdout[4:])["accepted"] == 1
    deadline = time.monotonic() + 10
    while "Low balance on account 1234567" not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)


def test_chunked_body_over_the_cap_gets_413(example_server) -> None:
    import http.client

    port, _ = example_server
    chunk = b" " * 65536
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            "/voximplant/callbacks",
            body=iter([b'{"callbacks": [', *([chunk] * 32), b"]}"]),
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert response.status == 413
        assert b"1048576" in response.read()
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("the server closed the connection instead of answering 413")
    finally:
        connection.close()


@pytest.mark.parametrize("engine", ["rq", "celery"])
def test_run_queue_answers_at_once_and_the_worker_runs_the_handler(
    engine: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "run-queue.log"
    with log.open("wb") as out:
        runner = subprocess.Popen(
            [str(BIN / "python"), "-m", "example_app.run_queue", "--engine", engine],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    try:
        wait_for_port(port, runner)
        sent = voxcallbacks_cli(
            "example_app", "send", "min_balance", "--url", f"http://127.0.0.1:{port}"
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert '"queued": 1' in sent.stdout
        deadline = time.monotonic() + 60
        while "Low balance on account 1234567" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        runner.send_signal(signal.SIGINT)
        try:
            runner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    assert runner.returncode == 0, log.read_text()[-3000:]


def test_the_example_under_gunicorn_in_queue_mode(redis_url: str, tmp_path: Path) -> None:
    base = redis_url.rsplit("/", 1)[0]
    env = {
        "VOXCALLBACKS_STORE": f"{base}/0",
        "VOXCALLBACKS_QUEUE": f"rq://{base[len('redis://') :]}/1",
    }
    port = free_port()
    with (tmp_path / "gunicorn.log").open("wb") as log:
        server = start(
            [
                str(BIN / "gunicorn"),
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{port}",
                "example_app:create_app()",
            ],
            port,
            log,
            env,
        )
    try:
        args = readme_curl()
        args[-1] = args[-1].replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        result = subprocess.run(
            [*args, "--silent", "--show-error"], capture_output=True, text=True, timeout=30
        )
        assert json.loads(result.stdout)["queued"] == 1, result.stdout + result.stderr
    finally:
        stop(server)
    assert "Low balance" not in (tmp_path / "gunicorn.log").read_text()
    worker = voxcallbacks_cli("example_app", "worker", "--burst", env=env)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert "Low balance on account 1234567: 4.5231 USD" in worker.stdout + worker.stderr
