"""VOXCALLBACKS_STORE = "sqlalchemy": each callback's claim, its receivers' writes through
Flask-SQLAlchemy's session and its done marker commit in one transaction, on PostgreSQL and on
SQLite. The application is the documented example (docs/examples/transactional_app.py): one
receipt row per callback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from helpers import BASE_CONFIG, BODY, DAY, ENDPOINT, ITEM, OTHER
from servers import BIN, ROOT, free_port, start, stop
from servers import post as http_post

from flask_voxcallbacks import callback_received
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.store import BUSY, CLAIMED, DONE, MISMATCH, QUEUED
from flask_voxcallbacks.testing import make_batch, make_callback

sys.path.insert(0, str(ROOT / "docs" / "examples"))
import transactional_app
from transactional_app import Receipt, db

sys.path.pop(0)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/app.db"
    server = request.getfixturevalue("postgres_server")
    server.execute("DROP TABLE IF EXISTS receipt, voxcallbacks")
    return str(server.url).replace("postgresql://", "postgresql+psycopg://")


def example_app(database_url: str, **config: Any) -> Flask:
    """The documented example on ``database_url``, its tables made by its commands."""
    app = transactional_app.create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, **config}
    )
    runner = app.test_cli_runner()
    assert runner.invoke(args=["voxcallbacks", "init-db"]).exit_code == 0
    assert runner.invoke(args=["create-tables"]).exit_code == 0
    return app


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    app = example_app(database_url)
    yield app
    with app.app_context():
        close_database()


def close_database() -> None:
    """Close the connections of the application in context: its session's, then its pool's.

    A connection the session still holds when the pool is disposed would go back to the
    discarded pool and be closed only by the garbage collector (which Python 3.13 reports).
    """
    db.session.close()
    db.engine.dispose()


def receipts(app: Flask) -> list[int]:
    with app.app_context():
        return sorted(r.callback_id for r in db.session.scalars(db.select(Receipt)))


def post(app: Flask, *items: dict[str, Any]) -> Any:
    return app.test_client().post(ENDPOINT, json=make_batch(*items))


def fail_after_the_receipt(sender: Flask, callback: Any, **extra: Any) -> None:
    db.session.flush()  # the receipt is written, in the transaction
    raise ConnectionError("crm down")


def test_a_callback_writes_its_row_once_whatever_the_redeliveries(app: Flask) -> None:
    items = [make_callback("min_balance"), make_callback("sms_inbound")]
    first = post(app, *items)
    assert first.status_code == 200 and first.get_json()["accepted"] == 2
    again = post(app, *items)
    assert again.status_code == 200 and again.get_json()["duplicates"] == 2
    assert receipts(app) == sorted(item["callback_id"] for item in items)


def test_a_failing_receiver_leaves_no_row_and_a_failed_callback_that_replays_once(
    app: Flask,
) -> None:
    item = make_callback("min_balance")
    with callback_received.connected_to(fail_after_the_receipt, app):
        answer = post(app, item)
    assert answer.status_code != 200 and answer.get_json()["failed"] == 1
    assert receipts(app) == [], "the receipt was rolled back with the claim"
    with app.app_context():
        (kept,) = get_state(app).store.kept()
    assert (kept.callback_id, kept.attempts, kept.succeeded) == (item["callback_id"], 1, ())
    assert "ConnectionError: crm down" in kept.error
    replay = app.test_cli_runner().invoke(args=["voxcallbacks", "replay", "--all"])
    assert replay.exit_code == 0, replay.output
    assert receipts(app) == [item["callback_id"]]
    assert post(app, item).get_json()["duplicates"] == 1
    assert receipts(app) == [item["callback_id"]]


def test_a_redelivery_after_a_failure_writes_the_row_once(app: Flask) -> None:
    item = make_callback("min_balance")
    with callback_received.connected_to(fail_after_the_receipt, app):
        post(app, item)
        post(app, item)
    assert receipts(app) == []
    with app.app_context():
        (kept,) = get_state(app).store.kept()
    assert kept.attempts == 2
    assert post(app, item).get_json()["accepted"] == 1
    assert receipts(app) == [item["callback_id"]]
    with app.app_context():
        assert get_state(app).store.kept() == []


def test_a_receiver_that_commits_fails_its_callback_and_commits_nothing(app: Flask) -> None:
    def commits(sender: Flask, callback: Any, **extra: Any) -> None:
        db.session.commit()

    item = make_callback("min_balance")
    with callback_received.connected_to(commits, app):
        answer = post(app, item)
    assert answer.get_json()["failed"] == 1
    assert receipts(app) == []
    with app.app_context():
        (kept,) = get_state(app).store.kept()
    assert kept.error.endswith(
        "ReceiverCommitError: a receiver committed db.session, with VOXCALLBACKS_STORE ="
        " 'sqlalchemy': the extension commits the receivers' writes with the callback's done"
        " marker; write through the session and leave the commit to it"
    ), kept.error


def test_a_receiver_that_rolls_back_fails_its_callback_and_commits_nothing(app: Flask) -> None:
    def rolls_back(sender: Flask, callback: Any, **extra: Any) -> None:
        db.session.rollback()
        # Written after the rollback, in a transaction the extension did not open: not kept.
        db.session.add(Receipt(account_id=1, callback_id=2, type="after the rollback"))
        db.session.flush()

    item = make_callback("min_balance")
    with callback_received.connected_to(rolls_back, app):
        answer = post(app, item)
    assert answer.get_json()["failed"] == 1
    assert receipts(app) == []
    with app.app_context():
        (kept,) = get_state(app).store.kept()
    assert kept.error == (
        "the transaction of its receivers could not commit: RuntimeError: a receiver rolled back"
        " db.session, with VOXCALLBACKS_STORE = 'sqlalchemy': the callback's claim went with it;"
        " raise an exception instead, and the extension rolls back and keeps the callback as"
        " failed"
    )


def test_a_receiver_may_commit_and_roll_back_sessions_of_its_own(app: Flask) -> None:
    """Only db.session carries the callback's transaction: another session is the receiver's."""

    def own_sessions(sender: Flask, callback: Any, **extra: Any) -> None:
        # A session of the class of db.session's, whose events the extension listens to.
        with db.session.session_factory() as other:
            other.execute(sa.text("SELECT 1"))
            other.commit()
            other.execute(sa.text("SELECT 1"))
            other.rollback()

    item = make_callback("min_balance")
    with callback_received.connected_to(own_sessions, app):
        assert post(app, item).get_json()["accepted"] == 1
    assert receipts(app) == [item["callback_id"]]


def test_the_application_may_roll_back_db_session_outside_a_callback(app: Flask) -> None:
    with app.app_context():
        db.session.add(Receipt(account_id=1, callback_id=3, type="dropped"))
        db.session.rollback()
        db.session.add(Receipt(account_id=1, callback_id=4, type="kept"))
        db.session.commit()
    assert receipts(app) == [4]


def test_a_write_the_database_refuses_at_commit_fails_the_callback(app: Flask) -> None:
    def refused(sender: Flask, callback: Any, **extra: Any) -> None:
        db.session.add(Receipt(account_id=1, callback_id=2, type=None))  # NOT NULL

    item = make_callback("min_balance")
    with callback_received.connected_to(refused, app):
        answer = post(app, item)
    assert answer.status_code != 200 and answer.get_json()["failed"] == 1
    assert receipts(app) == []
    with app.app_context():
        (kept,) = get_state(app).store.kept()
    prefix = "the transaction of its receivers could not commit: "
    assert kept.error.startswith(f"{prefix}IntegrityError: "), kept.error
    # The database's message (its length depends on the driver's version) is kept up to 300
    # characters, class name included.
    assert len(prefix) + 100 < len(kept.error) <= len(prefix) + 300
    assert post(app, item).get_json()["accepted"] == 1
    assert receipts(app) == [item["callback_id"]]
    assert get_state(app).store._digests == {}  # type: ignore[attr-defined]


def test_a_concurrent_redelivery_waits_and_is_a_duplicate(app: Flask) -> None:
    inside, release = threading.Event(), threading.Event()

    def slow(sender: Flask, callback: Any, **extra: Any) -> None:
        if not inside.is_set():
            inside.set()
            release.wait(10)

    item = make_callback("min_balance")
    answers: list[Any] = []
    with callback_received.connected_to(slow, app):
        first = threading.Thread(target=lambda: answers.append(post(app, item).get_json()))
        first.start()
        assert inside.wait(10)
        second = threading.Thread(target=lambda: answers.append(post(app, item).get_json()))
        second.start()
        second.join(0.5)
        assert second.is_alive(), "the redelivery waits for the first transaction"
        release.set()
        first.join(10)
        second.join(10)
    assert sorted((a["accepted"], a["duplicates"]) for a in answers) == [(0, 1), (1, 0)]
    assert receipts(app) == [item["callback_id"]]


class Gunicorn:
    """The transactional example under ``gunicorn -w 4`` on PostgreSQL."""

    def __init__(self, database_url: str, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{ENDPOINT}"
        self.env = {
            "DATABASE_URL": database_url,
            "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}",
            **env,
        }
        args = [str(BIN / "gunicorn"), "-w", "4", "-b", f"127.0.0.1:{self.port}"]
        args += ["--timeout", "120", "transactional_server:create_app()"]
        with log.open("ab") as out:
            self.process = start(args, self.port, out, self.env)

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture
def postgres_app_url(postgres_server: Any) -> str:
    """A PostgreSQL database with the example's tables, made by its commands."""
    postgres_server.execute("DROP TABLE IF EXISTS receipt, voxcallbacks")
    url = str(postgres_server.url).replace("postgresql://", "postgresql+psycopg://")
    env = {"DATABASE_URL": url, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}"}
    for command in (["voxcallbacks", "init-db"], ["create-tables"]):
        done = subprocess.run(
            [str(BIN / "flask"), "--app", "transactional_server:create_app", *command],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    return url


def rows_per_callback(database_url: str) -> dict[int, int]:
    import psycopg

    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as connection:
        rows = connection.execute(
            "SELECT callback_id, count(*) FROM receipt GROUP BY callback_id"
        ).fetchall()
    return {callback_id: count for callback_id, count in rows}


@pytest.mark.subprocess
def test_four_workers_posted_the_same_callbacks_by_four_threads_write_one_row_each(
    postgres_app_url: str, tmp_path: Path
) -> None:
    server = Gunicorn(postgres_app_url, tmp_path / "gunicorn.log")
    sent: list[int] = []
    try:
        for _round in range(3):
            items = [make_callback("min_balance") for _ in range(60)]
            sent += [item["callback_id"] for item in items]
            bodies = [json.dumps(make_batch(*items[n : n + 5])).encode() for n in range(0, 60, 5)]

            def deliver(body: bytes) -> None:
                # As the sender does: again until answered 200.
                for _attempt in range(100):
                    if http_post(server.url, body)[0] == 200:
                        return
                    time.sleep(0.05)
                raise AssertionError("a batch was never answered 200")

            with ThreadPoolExecutor(max_workers=4) as pool:
                # Every batch posted by four threads at once.
                list(pool.map(deliver, [body for body in bodies for _copy in range(4)]))
            counts = rows_per_callback(postgres_app_url)
            assert counts == {callback_id: 1 for callback_id in sent}
    finally:
        server.stop()


@pytest.mark.subprocess
def test_a_worker_killed_in_its_handler_leaves_no_row_and_the_redelivery_writes_one(
    postgres_app_url: str, tmp_path: Path
) -> None:
    hang_file = tmp_path / "hanging.pid"
    server = Gunicorn(postgres_app_url, tmp_path / "gunicorn.log", VOX_HANG_FILE=str(hang_file))
    item = make_callback("js_fail")
    body = json.dumps(make_batch(item)).encode()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(http_post, server.url, body, 120)
            deadline = time.monotonic() + 30
            while not hang_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert hang_file.exists(), "the receiver never started"
            time.sleep(0.2)  # the pid is written; the receipt was flushed before it
            os.kill(int(hang_file.read_text()), signal.SIGKILL)
            assert first.result()[0] != 200
        assert rows_per_callback(postgres_app_url) == {}, "the killed transaction left nothing"
        status, answer = http_post(server.url, body)
        assert status == 200 and json.loads(answer)["accepted"] == 1
        assert rows_per_callback(postgres_app_url) == {item["callback_id"]: 1}
        status, answer = http_post(server.url, body)
        assert json.loads(answer)["duplicates"] == 1
        assert rows_per_callback(postgres_app_url) == {item["callback_id"]: 1}
    finally:
        server.stop()


def test_the_sqlalchemy_store_needs_flask_sqlalchemy_set_up_first() -> None:
    from flask_voxcallbacks import ConfigurationError, VoxCallbacks

    app = Flask(__name__)
    app.config.update({**BASE_CONFIG, "VOXCALLBACKS_STORE": "sqlalchemy"})
    with pytest.raises(ConfigurationError) as raised:
        VoxCallbacks(app)
    assert str(raised.value) == (
        'VOXCALLBACKS_STORE = "sqlalchemy" keeps the callbacks in the database of'
        " Flask-SQLAlchemy, which is not set up on this application: call db.init_app(app)"
        " before init_app"
    )


def test_a_missing_table_is_an_error_naming_the_command(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite says "no such table", PostgreSQL "does not exist": both name the command, in the
    check and in the log of a request that could not claim its callbacks."""
    app = transactional_app.create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    with caplog.at_level("ERROR", logger="flask_voxcallbacks"):
        answer = post(app, make_callback("min_balance"))
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.exc_info is not None
    assert type(record.exc_info[1]).__name__ == "TableMissingError"
    with app.app_context():
        close_database()
    assert check.exit_code == 1
    message = (
        "the table voxcallbacks does not exist in the application's database: create it with"
        " `flask voxcallbacks init-db` (or a migration, see the Stores page)"
    )
    assert f"TableMissingError: {message}" in check.output
    assert answer.status_code == 500


def test_a_database_error_other_than_a_missing_table_is_not_taken_for_one(
    database_url: str,
) -> None:
    """A missing column is not a missing table ("column ... does not exist" in PostgreSQL)."""
    from flask_voxcallbacks.store.base import TableMissingError

    app = transactional_app.create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    assert app.test_cli_runner().invoke(args=["voxcallbacks", "init-db"]).exit_code == 0
    store = get_state(app).store
    store._sql["knows"] = sa.text("SELECT no_such_column FROM voxcallbacks")  # type: ignore[attr-defined]
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError) as info:
            store.knows(1, 5)
        close_database()
    assert not isinstance(info.value, TableMissingError)


def test_records_whose_time_is_over_are_swept(app: Flask, monkeypatch) -> None:
    from flask_voxcallbacks.store import sqlalchemy as store_module

    monkeypatch.setattr(store_module, "_SWEEP_EVERY", 100)
    store = get_state(app).store
    offset = [0.0]
    store.now = lambda: time.time() + offset[0]  # type: ignore[method-assign]

    def stored() -> int:
        with app.app_context():
            return int(db.session.execute(db.text("SELECT count(*) FROM voxcallbacks")).scalar())

    first = [make_callback("min_balance") for _ in range(100)]
    assert post(app, *first).get_json()["accepted"] == 100
    assert stored() == 100, "nothing is over yet"
    offset[0] = app.config["VOXCALLBACKS_DEDUP_TTL"] + 1.0
    second = [make_callback("min_balance") for _ in range(100)]
    assert post(app, *second).get_json()["accepted"] == 100
    assert stored() == 100, "the first hundred were forgotten, the second kept"
    assert post(app, *second[:3]).get_json()["duplicates"] == 3


def test_queue_mode_runs_each_job_in_a_transaction_with_its_row(
    database_url: str, redis_url: str
) -> None:
    from rq import SimpleWorker

    rq_url = "rq://" + redis_url[len("redis://") :].rsplit("/", 1)[0] + "/1?queue=vox-tx"
    app = example_app(database_url, VOXCALLBACKS_QUEUE=rq_url)
    runner = app.test_cli_runner()
    first, second = make_callback("min_balance"), make_callback("sms_inbound")
    answer = post(app, first, second, first).get_json()
    assert (answer["queued"], answer["duplicates"]) == (2, 1)
    assert receipts(app) == []
    with app.app_context():
        assert len(get_state(app).store.kept()) == 2
    queue = get_state(app).queue
    with callback_received.connected_to(fail_after_the_receipt, app), app.app_context():
        worker = SimpleWorker([queue.queue], connection=queue.connection)  # type: ignore[union-attr]
        worker.work(burst=True)
    assert receipts(app) == [], "both jobs failed: their receipts were rolled back"
    replay = runner.invoke(args=["voxcallbacks", "replay", "--all"])
    assert replay.exit_code == 0, replay.output
    assert receipts(app) == sorted([first["callback_id"], second["callback_id"]])
    assert post(app, first, second).get_json()["duplicates"] == 2
    with app.app_context():
        close_database()


def test_a_queued_callback_is_claimed_by_its_job_only(app: Flask) -> None:
    store = get_state(app).store
    with app.app_context():
        claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
        store.queue_many([(1, 5, claim.token, ITEM)], retention=DAY)
        assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == QUEUED
        job = store.claim_many([(1, 5, BODY)], 60, DAY, take_queued=True)
        assert [c.status for c in job] == [CLAIMED]
        store.complete(1, 5, job[0].token, ttl=DAY)
        assert store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY).status == DONE
        close_database()


def test_claims_made_one_after_the_other_share_the_open_transaction(app: Flask) -> None:
    """A second claim_many before the completion joins the first one's transaction: when it
    claims nothing, it does not roll back what the first claimed."""
    store = get_state(app).store
    with app.app_context():
        first = store.claim(1, 7, BODY, lease_seconds=60, ttl=DAY)
        store.complete(1, 7, first.token, ttl=DAY)
        claimed = store.claim(1, 8, BODY, lease_seconds=60, ttl=DAY)
        assert claimed.status == CLAIMED
        assert store.claim(1, 7, BODY, lease_seconds=60, ttl=DAY).status == DONE
        store.complete(1, 8, claimed.token, ttl=DAY)
        assert store.claim(1, 8, BODY, lease_seconds=60, ttl=DAY).status == DONE
        close_database()


def test_completing_a_claim_this_store_did_not_make_marks_it_done(app: Flask) -> None:
    store = get_state(app).store
    with app.app_context():
        other = store.claim(1, 9, BODY, lease_seconds=60, ttl=DAY)
        store.complete(1, 9, other.token, ttl=DAY)
        store.complete(1, 9, "a token of another worker", ttl=DAY)
        assert store.claim(1, 9, BODY, lease_seconds=60, ttl=DAY).status == DONE
        close_database()


def test_the_sweep_comes_every_sweep_every_claims(app: Flask, monkeypatch) -> None:
    """After exactly _SWEEP_EVERY claims, then after as many again, not one claim later."""
    from flask_voxcallbacks.store import sqlalchemy as store_module

    monkeypatch.setattr(store_module, "_SWEEP_EVERY", 10)
    store = get_state(app).store
    offset = [0.0]
    store.now = lambda: time.time() + offset[0]  # type: ignore[method-assign]

    def stored() -> int:
        with app.app_context():
            return int(db.session.execute(db.text("SELECT count(*) FROM voxcallbacks")).scalar())

    assert post(app, *(make_callback("min_balance") for _ in range(10))).status_code == 200
    offset[0] = app.config["VOXCALLBACKS_DEDUP_TTL"] + 1.0
    assert post(app, *(make_callback("min_balance") for _ in range(9))).status_code == 200
    assert stored() == 19, "swept after the tenth claim, when nothing was over; not since"
    assert post(app, make_callback("min_balance")).status_code == 200
    assert stored() == 10, "swept after the twentieth: the first ten were over"


def test_a_claim_answers_what_holds_its_key(app: Flask) -> None:
    """Claimed twice in one open transaction: busy (not done, not queued). A failure kept
    without a claim pins no body: once done, any body is a duplicate. Another body for a key
    pinned and done: a mismatch."""
    store = get_state(app).store
    with app.app_context():
        first = store.claim(1, 20, BODY, lease_seconds=60, ttl=DAY)
        assert first.status == CLAIMED
        assert store.claim(1, 20, BODY, lease_seconds=60, ttl=DAY).status == BUSY
        store.complete(1, 20, first.token, ttl=DAY)
        assert store.claim(1, 20, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH
        store.fail(1, 21, "not held", "boom", {**ITEM, "callback_id": 21}, retention=DAY)
        store.complete(1, 21, "not held", ttl=DAY)
        assert store.claim(1, 21, OTHER, lease_seconds=60, ttl=DAY).status == DONE
        close_database()


def test_a_queued_callback_keeps_its_pin_for_the_dedup_ttl(app: Flask) -> None:
    """Queued with a retention shorter than the TTL, the key stays pinned for the TTL."""
    store = get_state(app).store
    offset = [0.0]
    store.now = lambda: time.time() + offset[0]  # type: ignore[method-assign]
    with app.app_context():
        claim = store.claim(1, 22, BODY, lease_seconds=60, ttl=DAY)
        store.queue_many([(1, 22, claim.token, {**ITEM, "callback_id": 22})], retention=60)
        offset[0] = 120.0
        assert store.claim(1, 22, OTHER, lease_seconds=60, ttl=DAY).status == MISMATCH
        close_database()


def test_a_claim_names_the_receivers_a_postgresql_store_recorded(
    postgres_server: Any,
) -> None:
    """The two modes share the table: a failure the PostgreSQL store kept with the receivers
    that succeeded is claimed in transactional mode with them."""
    from flask_voxcallbacks.store import open_store

    postgres_server.execute("DROP TABLE IF EXISTS receipt, voxcallbacks")
    app = example_app(str(postgres_server.url).replace("postgresql://", "postgresql+psycopg://"))
    direct = open_store(postgres_server.url)
    try:
        claim = direct.claim(1, 23, BODY, lease_seconds=60, ttl=DAY)
        direct.fail(1, 23, claim.token, "boom", ITEM, retention=DAY, succeeded=["a:b.c"])
    finally:
        direct.close()
    with app.app_context():
        again = get_state(app).store.claim(1, 23, BODY, lease_seconds=60, ttl=DAY)
        assert (again.status, again.succeeded) == (CLAIMED, ("a:b.c",))
        db.session.rollback()
        close_database()


def test_init_db_makes_the_namespace_table_once(tmp_path: Path) -> None:
    """Run again, it leaves the table as it is; each namespace has a table of its own."""
    app = example_app(f"sqlite:///{tmp_path}/app.db", VOXCALLBACKS_NAMESPACE="blue")
    again = app.test_cli_runner().invoke(args=["voxcallbacks", "init-db"])
    assert again.exit_code == 0, again.output
    with app.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
    assert tables == {"receipt", "voxcallbacks_blue"}
    assert post(app, make_callback("min_balance")).get_json()["accepted"] == 1
    with app.app_context():
        close_database()


def test_the_first_sweep_starts_at_the_first_row(app: Flask) -> None:
    from flask_voxcallbacks.store.sqlalchemy import SQLAlchemyStore

    store = get_state(app).store
    offset = [0.0]
    store.now = lambda: time.time() + offset[0]  # type: ignore[method-assign]
    assert post(app, *(make_callback("min_balance") for _ in range(5))).status_code == 200
    offset[0] = app.config["VOXCALLBACKS_DEDUP_TTL"] + 1.0
    with app.app_context():
        store._sweep()  # type: ignore[attr-defined]
        left = db.session.execute(db.text("SELECT count(*) FROM voxcallbacks")).scalar()
        assert SQLAlchemyStore(db).table_name == "voxcallbacks"
        close_database()
    assert left == 0


def test_a_callback_whose_commit_failed_stays_pinned_to_its_body(app: Flask) -> None:
    def refused(sender: Flask, callback: Any, **extra: Any) -> None:
        db.session.add(Receipt(account_id=1, callback_id=2, type=None))  # NOT NULL

    item = make_callback("min_balance")
    with callback_received.connected_to(refused, app):
        assert post(app, item).get_json()["failed"] == 1
    altered = {**make_callback("min_balance", callback_id=item["callback_id"]), "currency": "EUR"}
    assert post(app, altered).get_json()["rejected"] == 1
    assert receipts(app) == []
    assert post(app, item).get_json()["accepted"] == 1


def test_the_table_made_on_sqlite_keeps_the_partial_index_of_kept_callbacks(
    tmp_path: Path,
) -> None:
    """On SQLite, ``voxcallbacks_table`` indexes only the rows of kept callbacks, as the SQLite
    store's table does."""
    from flask_voxcallbacks.store.sqlalchemy import voxcallbacks_table

    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    voxcallbacks_table(sa.MetaData(), "viasa").create(engine)
    with engine.connect() as connection:
        (index,) = connection.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        ).one()
    engine.dispose()
    assert index == (
        "CREATE INDEX voxcallbacks_viasa_kept ON voxcallbacks_viasa (failed_at)"
        " WHERE error IS NOT NULL"
    )


def test_both_modes_make_the_same_table_in_postgresql(postgres_server: Any) -> None:
    """The table of ``voxcallbacks_table`` (made here, in this process) and the PostgreSQL
    store's: the same columns, types, nullability, defaults, index and storage options."""
    import psycopg

    from flask_voxcallbacks.store.postgres import create_table_statements
    from flask_voxcallbacks.store.sqlalchemy import voxcallbacks_table

    postgres_server.execute("DROP TABLE IF EXISTS voxcallbacks_direct, voxcallbacks_viasa")
    postgres_server.execute(*create_table_statements("direct"))
    engine = sa.create_engine(
        str(postgres_server.url).replace("postgresql://", "postgresql+psycopg://")
    )
    table = voxcallbacks_table(sa.MetaData(), "viasa")
    assert table.name == "voxcallbacks_viasa"
    table.create(engine)
    engine.dispose()

    def shape(table: str) -> tuple[Any, ...]:
        with psycopg.connect(postgres_server.url) as connection:
            # A default of 0 reads '0'::double precision when SQLAlchemy wrote it.
            columns = connection.execute(
                "SELECT column_name, data_type, is_nullable,"
                " regexp_replace(column_default, '^''(.*)''::double precision$', '\\1')"
                " FROM information_schema.columns WHERE table_name = %s"
                " ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            key = connection.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY a.attname",
                (table,),
            ).fetchall()
            indexes = connection.execute(
                "SELECT replace(indexdef, %s, 'T') FROM pg_indexes WHERE tablename = %s"
                " ORDER BY indexname",
                (table, table),
            ).fetchall()
            options = connection.execute(
                "SELECT reloptions FROM pg_class WHERE relname = %s", (table,)
            ).fetchone()
        return columns, key, indexes, options

    columns, key, indexes, options = shape("voxcallbacks_viasa")
    assert (columns, key, indexes, options) == shape("voxcallbacks_direct")
    assert options == (["fillfactor=50"],) and len(columns) == 15
    assert key == [("account_id",), ("callback_id",)]
    assert [index for (index,) in indexes if "failed_at" in index] == [
        "CREATE INDEX T_kept ON public.T USING btree (failed_at) WHERE (error IS NOT NULL)"
    ]
    assert voxcallbacks_table(sa.MetaData()).name == "voxcallbacks"
    # What Alembic compares with the database: nullable exactly True or False, as created.
    assert [(c.name, c.nullable) for c in table.columns] == [
        (name, nullable == "YES") for name, _, nullable, _ in columns
    ]


def test_listings_and_maintenance_read_the_application_database(app: Flask) -> None:
    """``knows``, ``unqueue_many`` and ``prune``, each on a connection of its own."""
    from helpers import BODY, DAY, ITEM

    from flask_voxcallbacks.store import CLAIMED
    from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID as account

    store = get_state(app).store
    failing = [make_callback("min_balance") for _ in range(2)]
    with callback_received.connected_to(fail_after_the_receipt, app):
        post(app, *failing)
    done = make_callback("sms_inbound")
    post(app, done)
    failed_ids = sorted(item["callback_id"] for item in failing)
    with app.app_context():
        assert store.knows(account, done["callback_id"])
        assert store.knows(account, failed_ids[0])
        assert not store.knows(account, 404) and not store.knows(42, done["callback_id"])
        # A queued callback whose job could not be enqueued is no longer queued; failures stay.
        claim = store.claim(account, 77, BODY, lease_seconds=60, ttl=DAY)
        store.queue_many([(account, 77, claim.token, ITEM)], retention=DAY)
        assert [(k.callback_id, k.queued) for k in store.kept() if k.queued] == [(77, True)]
        store.unqueue_many([(account, 77), (account, failed_ids[0])])
        assert sorted(k.callback_id for k in store.kept()) == failed_ids
        again = store.claim(account, 77, BODY, lease_seconds=60, ttl=DAY)
        assert again.status == CLAIMED, "the next arrival claims it afresh"
        store.complete(account, 77, again.token, ttl=DAY)
        assert store.prune(older_than=3600) == 0, "not old enough"
        later = time.time() + 10
        store.now = lambda: later  # type: ignore[method-assign]
        assert store.prune(older_than=5, accounts=[42]) == 0
        assert store.prune(older_than=5, accounts=[account, 42]) == 2
        assert store.kept() == []
    with callback_received.connected_to(fail_after_the_receipt, app):
        post(app, make_callback("card_payment"))
    with app.app_context():
        assert len(store.kept()) == 1
        store.now = lambda: later + 10  # type: ignore[method-assign]
        assert store.prune(older_than=5) == 1
        assert store.kept() == []
        assert store.knows(account, done["callback_id"]), "done markers outlive a prune"


def test_a_redelivery_that_waits_too_long_for_a_lock_is_in_progress(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction holds the callback's row (PostgreSQL) or the database's write lock
    (SQLite) past the wait: the redelivery is answered 503, nothing of it stays, and the next
    one is handled."""
    from helpers import BODY, DAY

    from flask_voxcallbacks.store import BUSY, CLAIMED
    from flask_voxcallbacks.store import sqlalchemy as sqlalchemy_store
    from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID as account

    monkeypatch.setattr(sqlalchemy_store, "_LOCK_TIMEOUT", "200ms")
    sqlite = database_url.startswith("sqlite")
    options = {"connect_args": {"timeout": 0.2}} if sqlite else {}
    app = example_app(database_url, SQLALCHEMY_ENGINE_OPTIONS=options)
    item = make_callback("min_balance")
    with callback_received.connected_to(fail_after_the_receipt, app):
        assert post(app, item).status_code == 500
    store = get_state(app).store
    other = sa.create_engine(database_url)
    with other.connect() as connection:
        if database_url.startswith("sqlite"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(
                sa.text("SELECT 1 FROM voxcallbacks WHERE callback_id = :id FOR UPDATE"),
                {"id": item["callback_id"]},
            )
        answer = post(app, item)
        # Claimed in one call with a free callback, it takes that one's claim back with it.
        with app.app_context():
            keys = [(account, 5555, BODY), (account, item["callback_id"], BODY)]
            claims = store.claim_many(keys, lease_seconds=60, ttl=DAY)
            assert [claim.status for claim in claims] == [BUSY, BUSY]
            assert store._digests == {}, "the claims given up leave nothing"  # type: ignore[attr-defined]
        connection.rollback()
    other.dispose()
    assert answer.status_code == 503 and answer.get_json()["in_progress"] == 1
    assert receipts(app) == []
    with app.app_context():
        free = store.claim(account, 5555, BODY, lease_seconds=60, ttl=DAY)
        assert free.status == CLAIMED, "its claim was rolled back"
        store.complete(account, 5555, free.token, ttl=DAY)
    again = post(app, item)
    assert again.status_code == 200 and again.get_json()["accepted"] == 1
    assert receipts(app) == [item["callback_id"]]
    with app.app_context():
        assert get_state(app).store.kept() == []
        close_database()


def test_failed_and_queued_callbacks_are_kept_whole_for_the_failure_retention(
    database_url: str,
) -> None:
    """Kept with their type, item and trace, for VOXCALLBACKS_FAILURE_RETENTION even when it
    outlasts VOXCALLBACKS_DEDUP_TTL."""
    from helpers import BODY, ITEM

    from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID as account

    hour, week = 3600, 7 * 86400
    app = example_app(
        database_url, VOXCALLBACKS_DEDUP_TTL=hour, VOXCALLBACKS_FAILURE_RETENTION=week
    )
    failing = make_callback("sms_inbound")
    with callback_received.connected_to(fail_after_the_receipt, app):
        post(app, failing)
    store = get_state(app).store
    queued_item = {**ITEM, "callback_id": 77, "type": "card_payment"}
    with app.app_context():
        claim = store.claim(account, 77, BODY, lease_seconds=60, ttl=hour)
        store.queue_many([(account, 77, claim.token, queued_item)], week, trace="00-abc-01")
        later = time.time() + 2 * hour  # past the dedup TTL, within the retention
        store.now = lambda: later  # type: ignore[method-assign]
        kept = {k.callback_id: k for k in store.kept()}
        failed, queued = kept[failing["callback_id"]], kept[77]
        assert (failed.type, failed.queued, failed.error) == (
            "sms_inbound",
            False,
            "callback_received:test_store_sqlalchemy.fail_after_the_receipt:"
            " ConnectionError: crm down",
        )
        assert failed.item == {k: v for k, v in failing.items() if k != "hash"}
        assert (queued.type, queued.queued, queued.trace) == ("card_payment", True, "00-abc-01")
        assert queued.item == queued_item
        assert store.find_kept(account, 77) == queued
        assert store.find_kept(account, 404) is None
        close_database()


def test_queueing_or_failing_that_breaks_halfway_keeps_nothing(app: Flask) -> None:
    """Queued callbacks are kept all or none; and nothing stays in memory per callback."""
    from helpers import BODY, DAY, ITEM

    from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID as account

    store = get_state(app).store
    unwritable = {**ITEM, "callback_id": 8, "note": object()}  # not JSON
    with app.app_context():
        first = store.claim(account, 7, BODY, lease_seconds=60, ttl=DAY)
        second = store.claim(account, 8, BODY, lease_seconds=60, ttl=DAY)
        with pytest.raises(TypeError, match="not JSON serializable"):
            store.queue_many(
                [(account, 7, first.token, ITEM), (account, 8, second.token, unwritable)], DAY
            )
        assert store.kept() == [] and store._digests == {}  # type: ignore[attr-defined]
        assert not store.knows(account, 7), "the claims went with the transaction"
        third = store.claim(account, 9, BODY, lease_seconds=60, ttl=DAY)
        with pytest.raises(TypeError, match="not JSON serializable"):
            store.fail(account, 9, third.token, "crm: down", unwritable, retention=DAY)
        assert store.kept() == [] and store._digests == {}  # type: ignore[attr-defined]
        claim = store.claim(account, 10, BODY, lease_seconds=60, ttl=DAY)
        untyped = {"callback_id": 10, "account_id": account}
        store.queue_many([(account, 10, claim.token, untyped)], DAY)
        assert store._digests == {}  # type: ignore[attr-defined]
        (kept,) = store.kept()
        assert (kept.callback_id, kept.type, kept.trace) == (10, "", ""), "no type, no trace"
        claim = store.claim(account, 11, BODY, lease_seconds=60, ttl=DAY)
        store.fail(account, 11, claim.token, "down", {**untyped, "callback_id": 11}, DAY)
        assert {(k.callback_id, k.type) for k in store.kept()} == {(10, ""), (11, "")}


def test_the_sqlite_sweep_walks_the_table_one_range_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sweep forgets what is over among the next five times _SWEEP_PAGES rowids, and starts
    again from the first row once it has reached the end of the table."""
    from flask_voxcallbacks.store import sqlalchemy as store_module

    monkeypatch.setattr(store_module, "_SWEEP_EVERY", 10**9)  # sweeps called by hand
    monkeypatch.setattr(store_module, "_SWEEP_PAGES", 4)  # 20 rowids a sweep
    app = example_app(f"sqlite:///{tmp_path}/app.db")
    store = get_state(app).store
    offset = [0.0]
    store.now = lambda: time.time() + offset[0]  # type: ignore[method-assign]
    # Rowids 1-18 are over after one TTL, rowid 19 after two.
    assert post(app, *(make_callback("min_balance") for _ in range(18))).status_code == 200
    offset[0] = 10.0
    assert post(app, make_callback("min_balance")).status_code == 200
    offset[0] = app.config["VOXCALLBACKS_DEDUP_TTL"] + 5.0

    def sweep() -> tuple[int, int]:
        with app.app_context():
            store._sweep()  # type: ignore[attr-defined]
            count = db.session.execute(db.text("SELECT count(*) FROM voxcallbacks")).scalar()
        return int(count), store._swept  # type: ignore[attr-defined]

    assert sweep() == (1, 0), "rowids 0-19 looked at: the end of the table, start again"
    offset[0] += 10.0
    assert sweep() == (0, 0)
    # The table is empty: SQLite numbers the next rows from 1 again.
    assert post(app, *(make_callback("min_balance") for _ in range(45))).status_code == 200
    offset[0] += app.config["VOXCALLBACKS_DEDUP_TTL"] + 5.0  # rowids 1-45 are over
    assert [sweep() for _ in range(4)] == [(26, 20), (6, 40), (0, 0), (0, 0)]
    with app.app_context():
        close_database()


def test_the_session_listeners_are_added_once_whatever_the_number_of_stores(
    tmp_path: Path,
) -> None:
    """Each application set up makes a store; the session class's listeners stay one of each,
    so that a process that sets up many applications (a test suite) does not run them again
    and again at every commit."""
    from flask_voxcallbacks.store import sqlalchemy as store_module

    apps = [example_app(f"sqlite:///{tmp_path}/app{n}.db") for n in range(3)]
    with apps[0].app_context():
        dispatch = db.session().dispatch
        assert list(dispatch.before_commit).count(store_module._before_commit) == 1
        assert list(dispatch.after_soft_rollback).count(store_module._after_soft_rollback) == 1
        close_database()
    for app in apps[1:]:
        with app.app_context():
            close_database()
