"""metrics.py: Prometheus metrics from the lifecycle signals and the store, in process, through
promtool, and under gunicorn with several workers scraped by a real Prometheus server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from helpers import ENDPOINT, make_app, without_extra
from servers import BIN, ROOT, free_port, post, start, stop, wait_for_port

from flask_voxcallbacks import ConfigurationError, sms_received
from flask_voxcallbacks.testing import make_batch, make_callback

EXAMPLES = ROOT / "docs" / "examples" / "prometheus"


def value(registry: Any, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else float(found)


def test_callbacks_are_counted_by_type_and_outcome_with_bounded_labels() -> None:
    registry = prometheus_client.CollectorRegistry()
    app = make_app(VOXCALLBACKS_METRICS="prometheus", VOXCALLBACKS_METRICS_REGISTRY=registry)
    low, sms = make_callback("min_balance"), make_callback("sms_inbound")
    forged = {**make_callback("min_balance"), "type": "x" * 40, "hash": "0" * 32}
    unknown = {**make_callback("min_balance"), "type": "brand_new_type"}  # the hash holds

    def broken(sender: Any, callback: Any, **extra: Any) -> None:
        raise ConnectionError("down")

    client = app.test_client()
    with sms_received.connected_to(broken, sender=app):
        client.post(ENDPOINT, json=make_batch(low, sms, forged, unknown, low))
    total = "voxcallbacks_callbacks_total"
    assert value(registry, total, type="min_balance", outcome="accepted") == 1
    assert value(registry, total, type="min_balance", outcome="duplicate") == 1
    assert value(registry, total, type="sms_inbound", outcome="failed") == 1
    # Types a sender chooses are "other": a label never takes an attacker's value.
    assert value(registry, total, type="other", outcome="accepted") == 1
    assert value(registry, total, type="other", outcome="rejected") == 1
    assert value(registry, "voxcallbacks_rejections_total", reason="hash_mismatch") == 1
    duration = "voxcallbacks_handler_duration_seconds_count"
    assert value(registry, duration, type="sms_inbound") == 1
    assert value(registry, duration, type="min_balance") == 1
    assert value(registry, "voxcallbacks_kept_callbacks", state="failed") == 1
    assert value(registry, "voxcallbacks_store_up") == 1
    replay = app.test_cli_runner().invoke(args=["voxcallbacks", "replay", "--all"])
    assert replay.exit_code == 0, replay.output
    assert value(registry, "voxcallbacks_replays_total", outcome="accepted") == 1
    assert value(registry, total, type="sms_inbound", outcome="accepted") == 1
    assert value(registry, "voxcallbacks_kept_callbacks", state="failed") == 0
    labels = {
        sample.labels.get("type")
        for family in registry.collect()
        for sample in family.samples
        if "type" in sample.labels
    }
    assert labels == {"min_balance", "sms_inbound", "other"}


def test_a_store_that_does_not_answer_is_down_and_the_scrape_still_works() -> None:
    registry = prometheus_client.CollectorRegistry()
    make_app(
        VOXCALLBACKS_METRICS="prometheus",
        VOXCALLBACKS_METRICS_REGISTRY=registry,
        VOXCALLBACKS_STORE="redis://127.0.0.1:1/0",
    )
    assert value(registry, "voxcallbacks_store_up") == 0
    assert b"voxcallbacks_store_up 0.0" in prometheus_client.generate_latest(registry)


def test_metrics_need_their_extra_and_import_nothing_when_off() -> None:
    said = without_extra("prometheus_client", "VOXCALLBACKS_METRICS", "prometheus")
    assert "needs the prometheus_client package" in said
    assert "flask-voxcallbacks[prometheus]" in said


def test_a_bad_metrics_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match='VOXCALLBACKS_METRICS must be "prometheus"'):
        make_app(VOXCALLBACKS_METRICS="statsd")


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make test` installs prometheus from the system packages"
    return found


@pytest.mark.subprocess
def test_the_exposition_passes_promtool_check_metrics() -> None:
    registry = prometheus_client.CollectorRegistry()
    app = make_app(VOXCALLBACKS_METRICS="prometheus", VOXCALLBACKS_METRICS_REGISTRY=registry)
    app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    exposition = prometheus_client.generate_latest(registry)
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=exposition, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def query(port: int, expression: str) -> float | None:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    results = answer["data"]["result"]
    return float(results[0]["value"][1]) if results else None


def wait_for(port: int, expression: str, expected: float, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    seen = None
    while time.monotonic() < deadline:
        seen = query(port, expression)
        if seen == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{expression} = {seen}, expected {expected}")


@pytest.mark.subprocess
def test_prometheus_counts_every_callback_under_two_gunicorn_workers(tmp_path: Path) -> None:
    """N callbacks over two workers (and a worker killed and replaced): a real Prometheus server
    scraping the app sees exactly N, before and after the kill."""
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is missing: `make test` installs it"
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    app_port, prom_port = free_port(), free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "PYTHONPATH": f"{EXAMPLES}:{ROOT}",
        "VOX_VOXCALLBACKS_ACCOUNT_ID": "1234567",
        "VOX_VOXCALLBACKS_API_KEY": '"4f0b4a8e-5b4d-4c1a-9a3e-1c2d3e4f5a6b"',
        "VOX_VOXCALLBACKS_SALT": '"s3cret-salt"',
        "VOX_VOXCALLBACKS_STORE": f'"sqlite:///{tmp_path}/vox.db"',
    }
    gunicorn = [str(BIN / "gunicorn"), "-c", str(EXAMPLES / "gunicorn_conf.py")]
    gunicorn += ["-b", f"127.0.0.1:{app_port}", "metrics_app:create_app()"]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: vox\n    static_configs: [{{targets: ['127.0.0.1:{app_port}']}}]\n"
    )
    with (tmp_path / "gunicorn.log").open("wb") as log:
        server = start(gunicorn, app_port, log, env=env)
    prom_log = (tmp_path / "prometheus.log").open("wb")
    prom = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=prom_log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(prom_port, prom)
        from flask_voxcallbacks.testing import sign

        def signed(kind: str) -> dict[str, Any]:
            item = make_callback(kind, account_id=1234567)
            item["hash"] = sign(
                "s3cret-salt", 1234567, "4f0b4a8e-5b4d-4c1a-9a3e-1c2d3e4f5a6b", item["callback_id"]
            )
            return item

        url = f"http://127.0.0.1:{app_port}{ENDPOINT}"
        n = 40
        for _ in range(n):
            status, _ = post(url, json.dumps(make_batch(signed("min_balance"))).encode())
            assert status == 200
        accepted = 'sum(voxcallbacks_callbacks_total{outcome="accepted"})'
        wait_for(prom_port, accepted, n)
        pids = [
            int(p)
            for p in subprocess.run(
                ["pgrep", "-P", str(server.pid)], capture_output=True, text=True
            ).stdout.split()
        ]
        assert len(pids) == 2
        os.kill(pids[0], signal.SIGKILL)
        for _ in range(5):
            status, _ = post(url, json.dumps(make_batch(signed("sms_inbound"))).encode())
            assert status == 200
        wait_for(prom_port, accepted, n + 5)
        wait_for(prom_port, "voxcallbacks_store_up", 1)
    finally:
        stop(prom)
        prom_log.close()
        stop(server)


@pytest.mark.subprocess
def test_the_documented_alert_rules_are_valid_and_fire_when_they_should(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "alerts.yml", tmp_path)
    shutil.copy(ROOT / "tests" / "alerts_test.yml", tmp_path)
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        result = subprocess.run(
            [promtool(), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
