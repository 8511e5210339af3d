"""Queue mode in one process: set-up errors, the answer, the store's queued state and RQ jobs
run by an in-process RQ worker (test_queue.py runs real worker processes)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest
from helpers import ENDPOINT, make_app

from flask_voxcallbacks import ConfigurationError, callback_duplicate, callback_received
from flask_voxcallbacks.handling import run_job
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.testing import make_batch, make_callback


@pytest.fixture
def rq_url(redis_url: str) -> str:
    return "rq://" + redis_url[len("redis://") :].rsplit("/", 1)[0] + "/1?queue=vox-tests"


@pytest.fixture(params=["redis", "postgres"])
def queue_store(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The store the web application and its workers share: Redis, or PostgreSQL beside a Redis
    broker."""
    return redis_url if request.param == "redis" else str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def app(queue_store: str, rq_url: str):
    return make_app(VOXCALLBACKS_STORE=queue_store, VOXCALLBACKS_QUEUE=rq_url)


def run_jobs(app) -> int:
    """Run every queued RQ job in this process; return how many ran."""
    from rq import SimpleWorker

    queue = get_state(app).queue
    waiting = queue.queue.count  # type: ignore[union-attr]
    with app.app_context():
        worker = SimpleWorker([queue.queue], connection=queue.connection)  # type: ignore[union-attr]
        worker.work(burst=True)
    assert queue.queue.count == 0  # type: ignore[union-attr]
    return int(waiting)


def received(app) -> list[Any]:
    seen: list[Any] = []
    callback_received.connect(lambda s, callback: seen.append(callback), app, weak=False)
    return seen


def test_the_answer_counts_queued_callbacks_and_the_jobs_run_them_once(app) -> None:
    seen = received(app)
    first, second = make_callback("min_balance"), make_callback("sms_inbound")
    forged = {**make_callback("min_balance"), "hash": "0" * 32}
    client = app.test_client()
    response = client.post(ENDPOINT, json=make_batch(first, second, first, forged))
    assert response.status_code == 200
    assert response.get_json() == {
        "accepted": 0,
        "rejected": 1,
        "duplicates": 1,
        "in_progress": 0,
        "failed": 0,
        "queued": 2,
    }
    assert seen == []
    queued = get_state(app).store.kept()
    assert sorted((r.callback_id, r.queued) for r in queued) == sorted(
        [(first["callback_id"], True), (second["callback_id"], True)]
    )
    # The items are kept as received, without their hash.
    items = {r.callback_id: r.item for r in queued}
    for sent in (first, second):
        assert items[sent["callback_id"]] == {k: v for k, v in sent.items() if k != "hash"}
    assert run_jobs(app) == 2
    assert [c.callback_id for c in seen] == [first["callback_id"], second["callback_id"]]
    assert seen[1].payload.sms_body == second["sms_inbound"]["sms_inbound"]["sms_body"]
    assert get_state(app).store.kept() == []
    # A job that runs again, or a redelivery, dispatches nothing.
    assert run_job(app, first["account_id"], first["callback_id"]) == "duplicate"
    again = client.post(ENDPOINT, json=make_batch(first))
    assert again.get_json()["duplicates"] == 1 and run_jobs(app) == 0
    assert len(seen) == 2


def test_a_redelivery_of_a_queued_callback_is_a_duplicate_and_a_forgery_is_refused(app) -> None:
    item = make_callback("min_balance")
    duplicates: list[Any] = []
    callback_duplicate.connect(lambda s, callback: duplicates.append(callback), app, weak=False)
    client = app.test_client()
    assert client.post(ENDPOINT, json=make_batch(item)).get_json()["queued"] == 1
    again = client.post(ENDPOINT, json=make_batch(item))
    assert again.status_code == 200 and again.get_json()["duplicates"] == 1
    assert [c.callback_id for c in duplicates] == [item["callback_id"]]
    forged = client.post(ENDPOINT, json=make_batch({**item, "balance": 10**6}))
    assert forged.status_code == 403 and forged.get_json()["rejected"] == 1
    assert run_jobs(app) == 1  # one job: the redelivery enqueued nothing


def test_a_failed_enqueue_forgets_the_callbacks_and_answers_500(
    app, rq_url: str, monkeypatch, vox_log
) -> None:
    from flask_voxcallbacks.queue import QueueError

    queue = get_state(app).queue
    reason = "broker unreachable\n" + "x" * 400

    def refuse(*args: Any) -> None:
        raise QueueError(reason)

    done = make_callback("min_balance")
    app.test_client().post(ENDPOINT, json=make_batch(done))
    run_jobs(app)
    items = [make_callback("min_balance"), make_callback("min_balance")]
    monkeypatch.setattr(queue, "enqueue", refuse)
    response = app.test_client().post(ENDPOINT, json=make_batch(*items, done))
    assert response.status_code == 500
    assert response.get_json() == {
        "accepted": 0,
        "rejected": 0,
        "duplicates": 1,
        "in_progress": 0,
        "failed": 2,
        "queued": 0,
    }
    assert get_state(app).store.kept() == []
    shown = ("broker unreachable?" + "x" * 400)[:300]
    assert (
        f"could not enqueue 2 callback(s) on {rq_url} ({shown}): answering 500 so that the"
        " sender redelivers them"
    ) in vox_log.messages
    for item in items:
        line = f"callback {item['callback_id']} type=min_balance account=1234567 failed"
        assert line in vox_log.messages
    monkeypatch.undo()
    again = app.test_client().post(ENDPOINT, json=make_batch(*items))
    assert again.status_code == 200 and again.get_json()["queued"] == 2
    for item in items:
        line = f"callback {item['callback_id']} type=min_balance account=1234567 queued"
        assert line in vox_log.messages
    assert run_jobs(app) == 2


def test_a_job_with_nothing_queued_says_so_and_warns_when_the_store_never_saw_it(
    app, vox_log
) -> None:
    assert run_job(app, 1234567, 42) == "duplicate"
    (warning,) = [r.getMessage() for r in vox_log.records if r.levelname == "WARNING"]
    assert warning == (
        "job for callback 42 account=1234567: the store has no record of it, so nothing runs;"
        " it was pruned or expired (VOXCALLBACKS_FAILURE_RETENTION), the store was emptied, or"
        " this worker does not use the web application's VOXCALLBACKS_STORE"
    )
    item = make_callback("min_balance")
    app.test_client().post(ENDPOINT, json=make_batch(item))
    run_jobs(app)
    vox_log.clear()
    assert run_job(app, item["account_id"], item["callback_id"]) == "duplicate"
    assert vox_log.messages == [
        f"job for callback {item['callback_id']} account=1234567: handled already"
    ]


def test_a_job_queued_on_another_store_is_refused_by_the_worker(
    redis_url: str, rq_url: str
) -> None:
    from flask_voxcallbacks.queue import JobRefused
    from flask_voxcallbacks.queue.rq import run_callback

    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=rq_url)
    item = make_callback("min_balance")
    app.test_client().post(ENDPOINT, json=make_batch(item))
    other_db = redis_url.rsplit("/", 1)[0] + "/5"
    worker_app = make_app(
        VOXCALLBACKS_STORE=other_db, VOXCALLBACKS_QUEUE=get_state(app).queue.description
    )  # type: ignore[union-attr]
    job = get_state(app).queue.queue.jobs[0]  # type: ignore[union-attr]
    assert job.args[3] == get_state(app).store.identity
    assert job.args[3].endswith("/0#voxcallbacks:") and "***" not in job.args[3]
    with worker_app.app_context(), pytest.raises(JobRefused) as refused:
        run_callback(*job.args)
    assert f"whose store is {job.args[3]}, and this worker's store is" in str(refused.value)
    assert "/5#voxcallbacks:" in str(refused.value)
    (kept,) = get_state(app).store.kept()
    assert kept.queued, "the callback stays queued for its own workers"


def test_a_job_whose_handler_fails_records_the_failure_and_raises(app) -> None:
    from flask_voxcallbacks.queue import JobFailed
    from flask_voxcallbacks.queue.rq import run_callback

    def fail(sender: Any, callback: Any) -> None:
        raise ConnectionError("crm down")

    callback_received.connect(fail, app, weak=False)
    item = make_callback("min_balance")
    app.test_client().post(ENDPOINT, json=make_batch(item))
    with app.app_context(), pytest.raises(JobFailed, match=str(item["callback_id"])) as raised:
        run_callback(item["account_id"], item["callback_id"])
    import pickle

    assert str(raised.value) == (
        f"handlers of callback {item['callback_id']} (account {item['account_id']}) failed;"
        " see `flask voxcallbacks failed`"
    )
    copy = pickle.loads(pickle.dumps(raised.value))
    assert type(copy) is JobFailed and str(copy) == str(raised.value)
    assert (copy.account_id, copy.callback_id) == (item["account_id"], item["callback_id"])
    (record,) = get_state(app).store.kept()
    assert (record.queued, record.attempts) == (False, 1)
    assert "ConnectionError: crm down" in record.error


def test_jobs_carry_the_retries_of_the_configuration(redis_url: str, rq_url: str) -> None:
    from rq import Queue

    app = make_app(
        VOXCALLBACKS_STORE=redis_url,
        VOXCALLBACKS_QUEUE=rq_url,
        VOXCALLBACKS_QUEUE_RETRIES=2,
        VOXCALLBACKS_LEASE_SECONDS=420,
    )
    app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    queue: Queue = get_state(app).queue.queue  # type: ignore[union-attr]
    assert queue.name == "vox-tests"
    (job,) = queue.get_jobs()
    assert job.func_name == "flask_voxcallbacks.queue.rq.run_callback"
    assert (job.retries_left, job.retry_intervals) == (2, [10, 40])
    assert job.result_ttl == 0
    assert job.timeout == 420, "a job may run as long as its lease"
    assert job.description == f"voximplant callback {job.args[1]} of account {job.args[0]}"
    no_retries = make_app(
        VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=rq_url, VOXCALLBACKS_QUEUE_RETRIES=0
    )
    no_retries.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert [job.retries_left for job in queue.get_jobs()] == [2, None]


def test_an_rq_queue_that_does_not_answer_fails_the_request(redis_url: str, vox_log) -> None:
    from servers import free_port

    port = free_port()
    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=f"rq://127.0.0.1:{port}/1")
    response = app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert response.status_code == 500
    assert (
        f"(the RQ queue's Redis server took no job: Error 111 connecting to 127.0.0.1:{port}."
        " Connection refused.)" in vox_log.text
    )
    assert "rq://127.0.0.1:" in vox_log.text and get_state(app).store.kept() == []


def test_retry_delays_grow_fourfold_up_to_an_hour() -> None:
    from flask_voxcallbacks.queue import retry_delays

    assert retry_delays(0) == []
    assert retry_delays(6) == [10, 40, 160, 640, 2560, 3600]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"VOXCALLBACKS_QUEUE": "kafka"},
            'VOXCALLBACKS_QUEUE must be "celery", an RQ URL such as'
            r' rq://localhost:6379/0\?queue=name, or "" to run the handlers in the request\.$',
        ),
        ({"VOXCALLBACKS_QUEUE": 1}, 'VOXCALLBACKS_QUEUE must be "celery"'),
        ({"VOXCALLBACKS_QUEUE_RETRIES": -1}, "VOXCALLBACKS_QUEUE_RETRIES must be a whole number"),
        ({"VOXCALLBACKS_QUEUE_RETRIES": True}, "VOXCALLBACKS_QUEUE_RETRIES must be a whole number"),
        ({"VOXCALLBACKS_QUEUE": "rq://localhost/0"}, "needs a store its workers share"),
        ({"VOXCALLBACKS_QUEUE": "celery"}, "VOXCALLBACKS_QUEUE needs a store its workers share"),
    ],
)
def test_bad_queue_settings_are_named(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_app(TESTING=False, **config)


def test_an_rq_url_that_redis_cannot_read_is_named_without_its_password() -> None:
    with pytest.raises(ConfigurationError) as raised:
        make_app(TESTING=True, VOXCALLBACKS_QUEUE="rq://user:secret@localhost:notaport/0")
    message = str(raised.value)
    assert message.startswith(
        "VOXCALLBACKS_QUEUE=rq://***@localhost:notaport/0 is not a valid URL: "
    )
    assert "secret" not in message


def test_open_queue_names_a_url_of_another_scheme_without_its_password() -> None:
    from flask_voxcallbacks.queue import open_queue

    with pytest.raises(ConfigurationError) as raised:
        open_queue("amqp://user:secret@broker:5672/", make_app())
    assert str(raised.value) == (
        "VOXCALLBACKS_QUEUE must be 'celery' or an RQ URL such as"
        " rq://localhost:6379/0?queue=name, not 'amqp://***@broker:5672/'"
    )


def test_the_memory_store_with_a_queue_is_accepted_when_testing(rq_url: str) -> None:
    app = make_app(TESTING=True, VOXCALLBACKS_QUEUE=rq_url)
    assert get_state(app).queue is not None
    assert get_state(app).queue.description == rq_url  # type: ignore[union-attr]
    make_app(VOXCALLBACKS_QUEUE_RETRIES=0)


@pytest.mark.parametrize(
    ("queue", "package", "shown"),
    [("celery", "celery", "'celery'"), ("rq://h:1/0", "rq", "rq://h:1/0")],
)
def test_a_missing_engine_package_is_named(
    queue: str, package: str, shown: str, monkeypatch
) -> None:
    for name in list(sys.modules):
        if (
            name == package
            or name.startswith(f"{package}.")
            or name.startswith("flask_voxcallbacks.queue.")
        ):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ConfigurationError) as raised:
        make_app(TESTING=True, VOXCALLBACKS_QUEUE=queue)
    assert str(raised.value) == (
        f"VOXCALLBACKS_QUEUE={shown} needs the {package} package:"
        f" pip install 'flask-voxcallbacks[{package}]'"
    )


def test_celery_mode_without_a_celery_app_fails_the_request_and_the_check(redis_url: str) -> None:
    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    response = app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert response.status_code == 500
    check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert "Queue: celery" in check.output and check.exit_code == 1
    assert (
        'Error: VOXCALLBACKS_QUEUE is "celery" but app.extensions["celery"] holds no Celery'
        " app: set it up as in Flask's Celery pattern (celery_init_app)\n" in check.output
    )


def test_the_task_finds_its_application(redis_url: str) -> None:
    from celery import Celery

    from flask_voxcallbacks.queue.celery import _flask_app

    first = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    second = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    celery_a, celery_b = Celery("a"), Celery("b")
    first.extensions["celery"], second.extensions["celery"] = celery_a, celery_b
    assert _flask_app(celery_b) is second and _flask_app(celery_a) is first
    with second.app_context():
        assert _flask_app(celery_a) is second, "the pattern's app context wins"
    with pytest.raises(RuntimeError, match="cannot tell which of"):
        _flask_app(Celery("c"))


def test_the_worker_command_runs_rq_jobs_only(app, redis_url: str) -> None:
    inline = make_app(VOXCALLBACKS_STORE=redis_url)
    result = inline.test_cli_runner().invoke(args=["voxcallbacks", "worker", "--burst"])
    assert result.exit_code == 1 and "is not an rq:// URL" in result.output
    from flask_voxcallbacks.pinning import body_digest
    from flask_voxcallbacks.store import DONE

    item = make_callback("min_balance")
    app.test_client().post(ENDPOINT, json=make_batch(item))
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert "until none is left" in result.output
    # The job ran in the worker's forked process: the store says it is done.
    store = get_state(app).store
    assert store.kept() == []
    claim = store.claim(item["account_id"], item["callback_id"], body_digest(item), 60, 60)
    assert claim.status == DONE


def test_send_counts_queued_samples_as_accepted(app) -> None:
    from flask_voxcallbacks.cli import _summary_of

    body = app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance"))).data
    assert _summary_of(body)["queued"] == 1


def test_the_plugins_memory_store_handles_callbacks_inline(app) -> None:
    from flask_voxcallbacks.testing import use_memory_store

    use_memory_store(app)
    seen = received(app)
    response = app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert response.get_json() == {
        "accepted": 1,
        "rejected": 0,
        "duplicates": 0,
        "in_progress": 0,
        "failed": 0,
    }
    assert len(seen) == 1 and get_state(app).queue is None


def test_check_names_the_queue_and_warns_when_its_broker_does_not_answer(
    app, redis_url: str
) -> None:
    from rq import Worker
    from servers import free_port

    check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert "Queue: rq://" in check.output and "does not answer" not in check.output
    assert "Workers listening: 0" in check.output
    assert "Warning: no worker listens on the queue" in check.output
    assert check.exit_code == 0
    queue = get_state(app).queue
    worker = Worker([queue.queue], connection=queue.connection)  # type: ignore[union-attr]
    worker.register_birth()
    try:
        check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    finally:
        worker.register_death()
    assert "Workers listening: 1" in check.output and "no worker listens" not in check.output
    dead = make_app(
        VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=f"rq://127.0.0.1:{free_port()}/1"
    )
    check = dead.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert "Error: the RQ queue's Redis server does not answer" in check.output
    assert check.exit_code == 1 and not check.output.rstrip().endswith("OK")


def test_check_fails_without_a_celery_app_or_with_its_broker_down(redis_url: str) -> None:
    from servers import free_port

    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert check.exit_code == 1
    assert 'Error: VOXCALLBACKS_QUEUE is "celery" but app.extensions["celery"]' in check.output
    celery_app_for(app, f"redis://127.0.0.1:{free_port()}/1")
    check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert check.exit_code == 1
    assert "Error: the Celery broker cannot be reached" in check.output
    assert "no answer within" not in check.output, "refused at once, not after the deadline"
    celery = celery_app_for(app, redis_url.rsplit("/", 1)[0] + "/1")
    check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert check.exit_code == 0, check.output
    assert "Workers listening: 0" in check.output
    # A worker in a thread of this process answers the ping.
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert "Workers listening: 1" in check.output and "no worker listens" not in check.output


def celery_app_for(app, broker: str) -> Any:
    from celery import Celery

    celery = Celery(app.name)
    celery.conf.update(broker_url=broker, task_ignore_result=True)
    app.extensions["celery"] = celery
    return celery


def test_celery_tasks_name_the_callback_and_run_it_in_its_application(redis_url: str) -> None:
    import base64

    import redis

    from flask_voxcallbacks.queue import TASK_NAME

    broker = redis_url.rsplit("/", 1)[0] + "/1"
    app = make_app(
        VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery", VOXCALLBACKS_QUEUE_RETRIES=2
    )
    celery = celery_app_for(app, broker)
    seen = received(app)
    items = [make_callback("min_balance"), make_callback("sms_inbound")]
    response = app.test_client().post(ENDPOINT, json=make_batch(*items))
    assert response.status_code == 200 and response.get_json()["queued"] == 2
    with redis.Redis.from_url(broker) as client:
        messages = [json.loads(raw) for raw in reversed(client.lrange("celery", 0, -1))]
    sent = []
    for message in messages:
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        sent.append((message["headers"]["task"], args, kwargs))
    assert sent == [
        (
            TASK_NAME,
            [item["account_id"], item["callback_id"]],
            {"retries": 2, "namespace": "", "store": get_state(app).store.identity},
        )
        for item in items
    ]
    assert seen == []
    task = celery.tasks[TASK_NAME]
    for _, args, kwargs in sent:
        assert task.apply(args=args, kwargs=kwargs).get() == "accepted"
    assert [c.callback_id for c in seen] == [item["callback_id"] for item in items]
    assert task.apply(args=sent[0][1], kwargs=sent[0][2]).get() == "duplicate"
    assert len(seen) == 2


def test_a_failing_celery_task_is_retried_then_raises(redis_url: str) -> None:
    from flask_voxcallbacks.queue import TASK_NAME, JobFailed

    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    celery = celery_app_for(app, redis_url.rsplit("/", 1)[0] + "/1")
    attempts: list[int] = []

    def fail(sender: Any, callback: Any) -> None:
        attempts.append(callback.callback_id)
        raise ConnectionError("crm down")

    callback_received.connect(fail, app, weak=False)
    item = make_callback("min_balance")
    app.test_client().post(ENDPOINT, json=make_batch(item))
    task = celery.tasks[TASK_NAME]
    args = (item["account_id"], item["callback_id"])
    # Run eagerly, a retry runs at once: two retries make three attempts, then the task raises.
    result = task.apply(args=args, kwargs={"retries": 2}, throw=False)
    assert isinstance(result.result, JobFailed)
    assert len(attempts) == 3
    assert get_state(app).store.kept()[0].attempts == 3
    callback_received.disconnect(fail, app)
    assert task.apply(args=args, kwargs={"retries": 0}).get() == "accepted"


def test_a_celery_broker_that_does_not_answer_fails_the_request_at_once(
    redis_url: str, vox_log
) -> None:
    import time

    from servers import free_port

    port = free_port()
    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    celery_app_for(app, f"redis://127.0.0.1:{port}/1")
    started = time.perf_counter()
    response = app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert response.status_code == 500 and response.get_json()["failed"] == 1
    assert time.perf_counter() - started < 3
    assert get_state(app).store.kept() == []
    assert (
        "on celery (the Celery broker took no job: OperationalError: Error 111 connecting to"
        f" 127.0.0.1:{port}. Connection refused.)" in vox_log.text
    )


def test_the_task_falls_back_to_the_only_application(redis_url: str, monkeypatch) -> None:
    import weakref

    from celery import Celery

    from flask_voxcallbacks.queue import celery as engine

    monkeypatch.setattr(engine, "_apps", weakref.WeakSet())
    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    assert engine._flask_app(Celery("elsewhere")) is app
    other = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    with pytest.raises(RuntimeError) as raised:
        engine._flask_app(Celery("elsewhere"))
    assert str(raised.value) == (
        "cannot tell which of 2 Flask applications runs the task flask_voxcallbacks.run_callback:"
        ' keep each Celery app in its application\'s extensions["celery"]'
    )
    other.extensions["celery"] = mine = Celery("mine")
    assert engine._flask_app(mine) is other


def test_a_callback_queued_before_a_switch_to_inline_handling_is_left_to_its_job(
    app, queue_store: str
) -> None:
    item = make_callback("min_balance")
    assert app.test_client().post(ENDPOINT, json=make_batch(item)).get_json()["queued"] == 1
    inline = make_app(VOXCALLBACKS_STORE=queue_store)
    ran: list[Any] = []
    with callback_received.connected_to(lambda sender, callback: ran.append(callback), inline):
        answer = inline.test_client().post(ENDPOINT, json=make_batch(item)).get_json()
    assert (answer["accepted"], answer["duplicates"], ran) == (0, 1, [])
    seen = received(app)
    assert run_jobs(app) == 1
    assert [callback.callback_id for callback in seen] == [item["callback_id"]]


def test_lifecycle_signals_follow_a_queued_callback_to_its_job(app) -> None:
    from flask_voxcallbacks import callback_completed, callback_queued, job_started

    events: list[tuple[str, Any]] = []
    item = make_callback("min_balance")
    key = (item["account_id"], item["callback_id"])

    def on_queued(sender: Any, **extra: Any) -> None:
        events.append(("queued", (extra["account_id"], extra["callback_id"], extra["type"])))

    def on_started(sender: Any, **extra: Any) -> None:
        events.append(("started", (extra["account_id"], extra["callback_id"], extra["replay"])))
        assert 0 <= time.time() - extra["kept_at"] < 60

    def on_completed(sender: Any, callback: Any, duration: float, **extra: Any) -> None:
        events.append(("completed", (callback.account_id, callback.callback_id)))

    with (
        callback_queued.connected_to(on_queued, sender=app),
        job_started.connected_to(on_started, sender=app),
        callback_completed.connected_to(on_completed, sender=app),
    ):
        assert app.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 200
        assert events == [("queued", (*key, "min_balance"))]
        assert run_jobs(app) == 1
    assert events[1:] == [("started", (*key, False)), ("completed", key)]


def test_a_silent_celery_broker_fails_the_request_at_the_deadline_on_a_daemon_thread(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker that accepts connections and never answers: the request is answered 500 after
    ENQUEUE_TIMEOUT, the callbacks stay for the redelivery, and the thread left waiting on the
    broker is a daemon one, named for what it does, that keeps no process from exiting."""
    import threading

    from helpers import SilentBroker

    from flask_voxcallbacks.queue import celery as celery_queue

    monkeypatch.setattr(celery_queue, "ENQUEUE_TIMEOUT", 0.5)
    silent = SilentBroker()
    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    celery_app_for(app, f"redis://127.0.0.1:{silent.port}/1")
    try:
        answer = app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
        check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
        waiting = {t.name: t.daemon for t in threading.enumerate() if t.name.startswith("vox")}
    finally:
        silent.close()
    assert answer.status_code == 500
    assert "Error: the Celery broker cannot be reached: no answer within 0.5 s" in check.output
    assert waiting == {"voxcallbacks-enqueue": True, "voxcallbacks-check": True}


def test_a_silent_rq_redis_fails_the_request_after_the_socket_timeout(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RQ queue's Redis server accepts the connection and never answers: the request is
    answered 500 once the socket's timeout ends (ENQUEUE_TIMEOUT, not redis-py's default, which
    is 5 s or none at all depending on its version), and the callback is left for the
    redelivery."""
    import time

    from helpers import SilentBroker

    from flask_voxcallbacks.queue import rq as rq_queue

    monkeypatch.setattr(rq_queue, "ENQUEUE_TIMEOUT", 0.5)
    silent = SilentBroker()
    try:
        app = make_app(
            VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=f"rq://127.0.0.1:{silent.port}/1"
        )
        item = make_callback("min_balance")
        started = time.monotonic()
        answer = app.test_client().post(ENDPOINT, json=make_batch(item))
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert answer.status_code == 500
    assert elapsed < 3, f"answered after {elapsed:.1f} s"
    assert get_state(app).store.find_kept(item["account_id"], item["callback_id"]) is None


def test_a_celery_broker_with_socket_timeouts_leaves_no_thread_waiting_on_a_silent_broker(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transport options the docs give a Redis broker: the enqueue the request gave up on
    ends by itself once the socket's timeout passes."""
    import threading
    from pathlib import Path

    example = Path(__file__).parent.parent / "docs/examples/queue_project/yourapp/__init__.py"
    options = '"socket_timeout": 5,\n                "socket_connect_timeout": 5,'
    assert '"broker_transport_options": {' in example.read_text()
    assert options in example.read_text()

    from helpers import SilentBroker

    from flask_voxcallbacks.queue import celery as celery_queue

    monkeypatch.setattr(celery_queue, "ENQUEUE_TIMEOUT", 0.5)
    silent = SilentBroker()
    app = make_app(VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE="celery")
    celery = celery_app_for(app, f"redis://127.0.0.1:{silent.port}/1")
    celery.conf.broker_transport_options = {"socket_timeout": 1, "socket_connect_timeout": 1}
    before = set(threading.enumerate())
    try:
        answer = app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
        assert answer.status_code == 500
        left = [t for t in set(threading.enumerate()) - before if t.name == "voxcallbacks-enqueue"]
        assert left, "the request did not wait for the broker"
        for thread in left:
            thread.join(10)
        assert not [t for t in left if t.is_alive()]
    finally:
        silent.close()
