"""Queue mode with real parts: a Redis server as store and broker, real Celery and RQ worker
processes, and the application under gunicorn."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from helpers import ENDPOINT
from servers import BIN, ROOT, free_port, post, start, stop, voxcallbacks_cli

from flask_voxcallbacks.testing import make_batch, make_callback

ENGINES = ["celery", "rq"]
TESTS = Path(__file__).resolve().parent


class Engine:
    """One engine set up against the test Redis server: store on db 0, broker on db 1."""

    def __init__(self, name: str, redis_url: str, tmp_path: Path) -> None:
        self.name = name
        base = redis_url.rsplit("/", 1)[0]
        self.store = f"{base}/0"
        self.broker = f"{base}/1"
        self.ledger = tmp_path / "ledger.db"
        self.log = tmp_path / "worker.log"
        self.queue = "celery" if name == "celery" else f"rq://{self.broker[len('redis://') :]}"
        self.workers: list[subprocess.Popen[bytes]] = []

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "VOXCALLBACKS_STORE": self.store,
            "VOXCALLBACKS_QUEUE": self.queue,
            "VOX_BROKER": self.broker,
            "VOX_LEDGER": str(self.ledger),
            "PYTHONPATH": f"{TESTS}:{ROOT}",
            **extra,
        }

    def app(self, **extra: str) -> Any:
        """The queue application in this process, set up from ``env``."""
        saved = dict(os.environ)
        os.environ.update(self.env(**extra))
        try:
            import queue_app

            return queue_app.create_app()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def start_worker(self, burst: bool = False, **extra: str) -> subprocess.Popen[bytes]:
        if self.name == "celery":
            args = [str(BIN / "celery"), "-A", "queue_app:celery_app", "worker", "--pool=solo"]
            args += ["--loglevel=INFO", "--without-gossip", "--without-mingle"]
            extra = {"VOX_CELERY": "1", **extra}
        else:
            args = [str(BIN / "flask"), "--app", "queue_app:create_app", "voxcallbacks", "worker"]
            args += ["--burst"] if burst else []
        with self.log.open("ab") as log:
            worker = subprocess.Popen(
                args,
                cwd=TESTS,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env(**extra)},
                start_new_session=True,
            )
        self.workers.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen[bytes]) -> None:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.kill(worker)

    def attempts(self) -> list[tuple[int, str]]:
        if not self.ledger.exists():
            return []
        db = sqlite3.connect(self.ledger, timeout=60)
        try:
            return db.execute("SELECT callback_id, outcome FROM attempts").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    def wait_for(self, done: Callable[[], bool], seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; worker log:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = Engine(request.param, redis_url, tmp_path)
    yield engine
    engine.stop_workers()


def succeeded(engine: Engine) -> list[int]:
    return sorted(cid for cid, outcome in engine.attempts() if outcome == "succeeded")


@pytest.mark.subprocess
def test_500_callbacks_posted_three_times_at_once_are_each_handled_once(engine: Engine) -> None:
    port = free_port()
    with (engine.log.parent / "gunicorn.log").open("wb") as log:
        server = start(
            [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "queue_app:create_app()"],
            port,
            log,
            {**engine.env(), "PYTHONPATH": f"{TESTS}:{ROOT}"},
        )
    items = [make_callback(("min_balance", "account_is_frozen")[n % 2]) for n in range(500)]
    bodies = [json.dumps(make_batch(*items[n : n + 10])).encode() for n in range(0, 500, 10)]
    url = f"http://127.0.0.1:{port}{ENDPOINT}"
    try:
        if engine.name == "celery":
            engine.start_worker()  # handles jobs while they are being posted
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda body: post(url, body), bodies * 3))
    finally:
        stop(server)
    summaries = [json.loads(body) for _, body in answers]
    assert {status for status, _ in answers} == {200}, answers[:3]
    assert sum(s["queued"] for s in summaries) == 500
    assert sum(s["queued"] + s["duplicates"] for s in summaries) == 1500
    if engine.name == "rq":
        engine.start_worker(burst=True).wait(timeout=300)
    engine.wait_for(lambda: len(engine.attempts()) >= 500)
    time.sleep(1)  # anything run twice would show now
    assert succeeded(engine) == sorted(item["callback_id"] for item in items)
    listing = voxcallbacks_cli("queue_app:create_app", "failed", env=engine.env())
    assert "No failed or queued callbacks." in listing.stdout, listing.stdout + listing.stderr


@pytest.mark.subprocess
def test_a_slow_handler_does_not_slow_the_answer(engine: Engine) -> None:
    app = engine.app(VOX_SLEEP="2")
    items = [make_callback("sms_inbound") for _ in range(20)]
    started = time.perf_counter()
    response = app.test_client().post(ENDPOINT, json=make_batch(*items))
    answered = time.perf_counter() - started
    assert response.status_code == 200
    assert response.get_json()["queued"] == 20
    assert answered < 1.5, f"answered in {answered:.2f} s"
    worker = engine.start_worker(VOX_SLEEP="0.05")
    engine.wait_for(lambda: len(succeeded(engine)) == 20)
    engine.kill(worker)


@pytest.mark.subprocess
def test_a_job_killed_with_its_worker_is_recovered_by_replay_and_runs_once(
    engine: Engine,
) -> None:
    env = {"VOX_LEASE_SECONDS": "2", "VOX_VISIBILITY": "4"}
    # The web application keeps the default lease, which RQ takes as the job's timeout; the
    # worker's claim lasts the 2 s lease that the test waits out.
    app = engine.app(VOX_VISIBILITY="4")
    item = make_callback("js_fail")
    assert app.test_client().post(ENDPOINT, json=make_batch(item)).get_json()["queued"] == 1
    worker = engine.start_worker(**env)
    engine.wait_for(lambda: engine.attempts() == [(item["callback_id"], "started")])
    engine.kill(worker)
    time.sleep(2.5)  # the lease of the killed job runs out
    listing = voxcallbacks_cli("queue_app:create_app", "failed", env=engine.env(**env))
    assert f"{item['callback_id']}  account=" in listing.stdout
    assert "queued" in listing.stdout and "its job may be lost" in listing.stdout
    replay = voxcallbacks_cli("queue_app:create_app", "replay", "--all", env=engine.env(**env))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "1 replayed, 0 still failing." in replay.stdout
    assert succeeded(engine) == [item["callback_id"]]
    # The lost job comes back (Celery redelivers unacknowledged tasks; RQ keeps the job): it
    # finds the callback done and dispatches nothing.
    if engine.name == "celery":
        time.sleep(5)  # past the broker's visibility timeout
        worker = engine.start_worker(**env)
        engine.wait_for(lambda: "handled already" in engine.log.read_text(), seconds=60)
    else:
        from queue_app import create_app  # noqa: F401 - the job function's module is importable

        rq_app = engine.app(**env)
        with rq_app.app_context():
            from flask_voxcallbacks.queue.rq import run_callback

            assert run_callback(item["account_id"], item["callback_id"]) == "duplicate"
    assert succeeded(engine) == [item["callback_id"]]


@pytest.mark.subprocess
def test_a_worker_whose_store_cannot_be_read_refuses_to_start(engine: Engine) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    worker = engine.start_worker(burst=True, VOXCALLBACKS_STORE=unreachable)
    assert worker.wait(timeout=60) != 0
    log = engine.log.read_text()
    assert f"the store {unreachable} cannot be read: ConnectionError" in log
    assert "Traceback" not in log


@pytest.mark.subprocess
def test_the_workers_span_links_to_the_span_of_the_request_that_queued_it(
    engine: Engine, tmp_path: Path
) -> None:
    """The web application traces in this process (an in-memory exporter); the worker process
    writes its spans to a file: its callback's span links to the request's span."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    spans = tmp_path / "spans.jsonl"
    app = engine.app(VOX_TRACE_FILE=str(tmp_path / "web-spans.jsonl"))
    item = make_callback("min_balance")
    with trace.get_tracer("test").start_as_current_span("POST callbacks") as request:
        response = app.test_client().post(ENDPOINT, json=make_batch(item))
    assert response.get_json()["queued"] == 1
    engine.start_worker(VOX_TRACE_FILE=str(spans))
    engine.wait_for(lambda: spans.exists() and "process min_balance" in spans.read_text())
    (span,) = [json.loads(line) for line in spans.read_text().splitlines()]
    assert span["kind"] == "SpanKind.CONSUMER"
    assert (
        span["attributes"]["messaging.message.id"] == f"{item['account_id']}:{item['callback_id']}"
    )
    (link,) = span["links"]
    context = request.get_span_context()
    assert link["context"]["trace_id"] == f"0x{context.trace_id:032x}"
    assert link["context"]["span_id"] == f"0x{context.span_id:016x}"


@pytest.mark.subprocess
def test_a_broker_that_is_down_gives_500_and_loses_nothing(engine: Engine) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/1"
    down = Engine(engine.name, engine.store.rsplit("/", 1)[0] + "/0", engine.ledger.parent)
    down.broker = dead
    down.queue = "celery" if engine.name == "celery" else f"rq://{dead[len('redis://') :]}"
    item = make_callback("min_balance")
    started = time.perf_counter()
    response = down.app().test_client().post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 500
    assert response.get_json()["failed"] == 1
    assert time.perf_counter() - started < 5
    # Nothing queued, nothing claimed: the redelivery, once the broker is back, is queued and run.
    app = engine.app()
    with app.app_context():
        from flask_voxcallbacks.state import get_state

        assert get_state(app).store.kept() == []
    again = app.test_client().post(ENDPOINT, json=make_batch(item))
    assert again.status_code == 200 and again.get_json()["queued"] == 1
    engine.start_worker(burst=True)
    engine.wait_for(lambda: succeeded(engine) == [item["callback_id"]])


@pytest.mark.subprocess
def test_a_failed_job_is_retried_by_its_queue_and_runs_once_after_success(
    engine: Engine,
) -> None:
    app = engine.app(VOX_RETRIES="2")
    item = make_callback("call_history_report")
    assert app.test_client().post(ENDPOINT, json=make_batch(item)).get_json()["queued"] == 1
    engine.start_worker(VOX_RETRIES="2")
    # The first attempt fails; the queue's retry (after 10 s) succeeds, and runs only the
    # receiver that failed: the one that wrote "notified" is not run again.
    engine.wait_for(lambda: succeeded(engine) == [item["callback_id"]], seconds=60)
    assert [o for _, o in engine.attempts()] == ["notified", "failed", "succeeded"]
    with app.app_context():
        from flask_voxcallbacks.state import get_state

        assert get_state(app).store.kept() == []


def test_a_refused_job_crosses_process_boundaries_with_its_message() -> None:
    """Celery and RQ pickle a job's exception to store it as the job's result."""
    import pickle

    from flask_voxcallbacks.queue import JobRefused

    refused = JobRefused("the job of callback 5 (account 1) belongs to the namespace 'billing'")
    copy = pickle.loads(pickle.dumps(refused))
    assert type(copy) is JobRefused and str(copy) == str(refused)
    assert copy.args == refused.args


def test_each_namespace_has_its_own_default_rq_queue() -> None:
    from flask_voxcallbacks.queue.base import DEFAULT_RQ_QUEUE, default_rq_queue

    assert default_rq_queue("") == DEFAULT_RQ_QUEUE == "voxcallbacks"
    assert default_rq_queue("billing") == "voxcallbacks_billing"


def test_an_rq_url_names_its_redis_server_and_its_queue() -> None:
    from flask import Flask

    from flask_voxcallbacks.queue import open_queue

    app = Flask(__name__)
    queue = open_queue("rq://127.0.0.1:6390/2?queue=calls", app)
    plain = open_queue("rq://127.0.0.1:6390/2", app)
    billing = open_queue("rq://127.0.0.1:6390/2", app, namespace="billing")
    try:
        kwargs = queue.connection.connection_pool.connection_kwargs  # type: ignore[union-attr]
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 2)
        assert queue.queue.name == "calls"  # type: ignore[union-attr]
        assert plain.queue.name == "voxcallbacks"  # type: ignore[union-attr]
        assert billing.queue.name == "voxcallbacks_billing"  # type: ignore[union-attr]
    finally:
        for opened in (queue, plain, billing):
            opened.close()  # type: ignore[union-attr]
