"""The documentation names exactly the config keys and signals the code has."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import ROOT

from flask_voxcallbacks import CALLBACK_TYPES, payloads, signals
from flask_voxcallbacks.config import CONFIG_KEYS
from flask_voxcallbacks.signals import VoxSignal

pytestmark = pytest.mark.subprocess

DOCS = ROOT / "docs"
SOURCES = [*DOCS.glob("*.rst"), ROOT / "README.rst", ROOT / "CHANGES.rst"]
KEYS = {key.name for key in CONFIG_KEYS}
LITERAL = '<code class="docutils literal notranslate"><span class="pre">{}</span></code>'
GENERAL = {name for name in signals.__all__ if isinstance(getattr(signals, name), VoxSignal)}
SIGNALS = set(payloads.signal_names().values()) | GENERAL


def sphinx(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(source), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    result = sphinx(DOCS, out)
    assert result.returncode == 0, result.stderr
    return out


def test_every_config_key_named_in_the_sources_exists() -> None:
    for path in SOURCES:
        named = set(re.findall(r"VOXCALLBACKS_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
        assert named <= KEYS, f"{path.name} names unknown keys {named - KEYS}"


def test_every_signal_named_in_the_sources_exists() -> None:
    for path in SOURCES:
        text = path.read_text()
        named = set(re.findall(r":voxsignal:`(\w+)`", text))
        named |= set(re.findall(r"import[^\n]*?\b(\w+_(?:reached|received|rejected))\b", text))
        assert named <= SIGNALS, f"{path.name} names unknown signals {named - SIGNALS}"


def test_built_configuration_page_lists_every_key(built: Path) -> None:
    page = (built / "configuration.html").read_text()
    table = page.split("<table", 1)[1].split("</table>", 1)[0]
    assert set(re.findall(LITERAL.format(r"(VOXCALLBACKS_\w+)"), table)) == KEYS


def test_built_signals_page_lists_every_signal_and_field(built: Path) -> None:
    page = (built / "signals.html").read_text().split('id="nested-items"')[0]
    headings = set(re.findall("<h3>" + LITERAL.format(r"(\w+)"), page))
    assert headings == set(payloads.signal_names().values())
    for type_name, spec in CALLBACK_TYPES.items():
        assert "Wire type " + LITERAL.format(type_name) in page
        for field_name, _ in spec.payload.wire_fields():
            assert LITERAL.format(field_name) in page
    assert len(GENERAL) == 8
    for general in GENERAL:
        assert LITERAL.format(general) in page


def test_a_misnamed_signal_fails_the_docs_build(tmp_path: Path) -> None:
    copy = tmp_path / "docs"
    shutil.copytree(DOCS, copy, ignore=shutil.ignore_patterns("_build"))
    for included in ("CHANGES.rst", "SECURITY.rst"):  # the changelog and security pages
        shutil.copy(ROOT / included, tmp_path)
    with (copy / "signals.rst").open("a") as page:
        page.write("\nSee also :voxsignal:`low_balance_reached`.\n")
    result = sphinx(copy, tmp_path / "out")
    assert result.returncode != 0
    assert "low_balance_reached" in result.stderr


def test_rejection_reasons_are_documented_where_signals_are() -> None:
    from flask_voxcallbacks.auth import REASONS

    for path in (DOCS / "signals.rst", ROOT / "README.rst"):
        text = path.read_text()
        assert all(f"``{reason}``" in text for reason in REASONS), path.name


@pytest.mark.parametrize("engine", ["celery", "rq"])
def test_the_queue_mode_project_works_as_the_page_says(
    engine: str, redis_url: str, tmp_path: Path
) -> None:
    import os
    import signal
    import time

    from servers import BIN, free_port, wait_for_port

    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs" / "examples" / "queue_project", project)
    page = (ROOT / "docs" / "queue.rst").read_text()
    base = redis_url.rsplit("/", 1)[0]
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(project),
        "REDIS_URL": base,
        "VOXCALLBACKS_ACCOUNT_ID": "1234567",
        "VOXCALLBACKS_API_KEY": "key-of-the-docs",
        "VOXCALLBACKS_SALT": "salt-of-the-docs",
    }
    if engine == "celery":
        assert "$ celery -A make_celery worker --loglevel INFO" in page
        worker = [str(BIN / "celery"), "-A", "make_celery", "worker", "--loglevel", "INFO"]
    else:
        assert "$ export VOXCALLBACKS_QUEUE=rq://localhost:6379/2" in page
        assert "$ flask --app yourapp voxcallbacks worker" in page
        env["VOXCALLBACKS_QUEUE"] = f"rq://{base[len('redis://') :]}/2"
        worker = [str(BIN / "flask"), "--app", "yourapp", "voxcallbacks", "worker"]
    port = free_port()
    web = [str(BIN / "flask"), "--app", "yourapp", "run", "--port", str(port)]
    log = tmp_path / "processes.log"
    processes = []
    try:
        with log.open("wb") as out:
            for command in (worker, web):
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=project,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        wait_for_port(port, processes[1])
        assert "$ flask --app yourapp voxcallbacks send min_balance" in page
        send = ["voxcallbacks", "send", "min_balance", "--url", f"http://127.0.0.1:{port}"]
        sent = subprocess.run(
            [str(BIN / "flask"), "--app", "yourapp", *send],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert '"queued": 1' in sent.stdout
        deadline = time.monotonic() + 60
        while "Low balance on 1234567: 4.5231 USD" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def test_the_quick_start_application_runs_as_the_page_shows() -> None:
    import sys

    from flask_voxcallbacks.testing import (
        DEFAULT_ACCOUNT_ID,
        DEFAULT_API_KEY,
        DEFAULT_SALT,
        make_batch,
        make_callback,
    )

    assert (
        "literalinclude:: examples/quickstart_app.py" in (ROOT / "docs/quickstart.rst").read_text()
    )
    sys.path.insert(0, str(ROOT / "docs" / "examples"))
    try:
        import quickstart_app
    finally:
        sys.path.pop(0)
    app = quickstart_app.create_app(
        {
            "TESTING": True,
            "VOXCALLBACKS_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
            "VOXCALLBACKS_API_KEY": DEFAULT_API_KEY,
            "VOXCALLBACKS_SALT": DEFAULT_SALT,
        }
    )
    stop = make_callback("sms_inbound", sms_body=" stop ", source_number="447700900123")
    try:
        response = app.test_client().post(
            "/voximplant/callbacks", json=make_batch(stop, make_callback("min_balance"))
        )
    finally:
        from flask_voxcallbacks import min_balance_reached, sms_received

        min_balance_reached.disconnect(quickstart_app.on_low_balance)
        sms_received.disconnect(quickstart_app.on_sms)
    assert response.status_code == 200 and response.get_json()["accepted"] == 2
    assert quickstart_app.unsubscribed == {"447700900123"}


def test_the_example_files_fit_the_width_of_a_code_block() -> None:
    # 76 characters fit a code block of the docs' theme at 1280 px without a scroll bar.
    long = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "docs" / "examples").rglob("*.py"))
        + sorted((ROOT / "docs" / "examples").rglob("*.yml"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > 76
    ]
    assert long == []


def test_the_readiness_probe_example_answers_503_while_the_store_is_down() -> None:
    from helpers import BASE_CONFIG

    assert "examples/readiness_probe.py" in (ROOT / "docs/deployment.rst").read_text()
    sys.path.insert(0, str(ROOT / "docs" / "examples"))
    try:
        import readiness_probe
    finally:
        sys.path.pop(0)
    up = readiness_probe.create_app(dict(BASE_CONFIG))
    assert up.test_client().get("/ready").get_json() == {"ready": True, "errors": []}
    down = readiness_probe.create_app(
        {**BASE_CONFIG, "VOXCALLBACKS_STORE": "redis://:hunter2@127.0.0.1:1/0"}
    )
    response = down.test_client().get("/ready")
    assert response.status_code == 503
    (error,) = response.get_json()["errors"]
    assert error.startswith("the store redis://***@127.0.0.1:1/0 cannot be read")
    assert "hunter2" not in response.get_data(as_text=True)
    down.extensions["voxcallbacks"].store.close()
