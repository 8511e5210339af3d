"""flask voxcallbacks types / check / send."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from flask import Flask
from helpers import BASE_CONFIG, CHILD_API_KEY, CHILD_SALT, ENDPOINT, Flaky, make_app
from servers import free_port

from flask_voxcallbacks import CALLBACK_TYPES, VoxCallbacks, callback_received, payloads
from flask_voxcallbacks.auth import authenticate
from flask_voxcallbacks.pinning import body_digest
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.testing import DEFAULT_API_KEY, DEFAULT_SALT, make_batch, make_callback


def test_types_lists_every_type_with_signal_and_fields(app) -> None:
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "types"])
    assert result.exit_code == 0
    names = payloads.signal_names()
    for type_name in CALLBACK_TYPES:
        assert f"{type_name}  signal={names[type_name]}" in result.output
    assert "    is_min_credit: boolean" in result.output
    assert "    subscriptions: list of Subscription" in result.output
    assert f"{len(CALLBACK_TYPES)} types." in result.output


def test_check_prints_endpoint_and_accounts_never_a_secret(app) -> None:
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert result.exit_code == 0, result.output
    assert "Endpoint: POST /voximplant/callbacks" in result.output
    assert "Account 1234567 (main): salt set" in result.output
    assert "Account 7654321 (extra): salt set" in result.output
    assert "Store: memory://" in result.output
    assert result.output.endswith("OK\n"), "memory:// is fine while testing"
    for secret in (DEFAULT_API_KEY, DEFAULT_SALT, CHILD_API_KEY, CHILD_SALT):
        assert secret not in result.output


def test_check_fails_on_config_changed_after_init(app) -> None:
    app.config["VOXCALLBACKS_API_KEY"] = ""
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert result.exit_code == 1
    assert "VOXCALLBACKS_API_KEY" in result.output


def test_check_fails_when_the_store_is_unreachable() -> None:
    app = make_app(VOXCALLBACKS_STORE="redis://:hunter2@127.0.0.1:1/0")
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert result.exit_code == 1
    assert "Error: the store redis://***@127.0.0.1:1/0 cannot be read: ConnectionError:" in (
        result.output
    )
    assert "127.0.0.1:1" in result.output.split("cannot be read")[1], "the reason names the host"
    assert "hunter2" not in result.output


def test_check_warns_about_an_empty_salt_and_a_memory_store_in_production() -> None:
    app = make_app(TESTING=False, VOXCALLBACKS_SALT="")
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert result.exit_code == 0
    assert "Warning: account 1234567 has no salt" in result.output
    assert "Warning: memory:// remembers handled callbacks in this process only" in result.output
    assert "OK, with 2 warning(s)" in result.output


def test_check_strict_exits_2_on_warnings_only() -> None:
    warned = make_app(TESTING=False, VOXCALLBACKS_SALT="")
    result = warned.test_cli_runner().invoke(args=["voxcallbacks", "check", "--strict"])
    assert result.exit_code == 2, result.output
    assert "OK, with 2 warning(s)" in result.output
    clean = make_app()
    assert clean.test_cli_runner().invoke(args=["voxcallbacks", "check", "--strict"]).exit_code == 0


def test_check_ready_prints_one_line_for_probes() -> None:
    runner = make_app(TESTING=False, VOXCALLBACKS_SALT="").test_cli_runner()
    result = runner.invoke(args=["voxcallbacks", "check", "--ready"])
    assert (result.exit_code, result.output) == (0, "ready, with 2 warning(s)\n")
    result = runner.invoke(args=["voxcallbacks", "check", "--ready", "--strict"])
    assert result.exit_code == 2
    assert result.output.startswith("not ready (--strict): account 1234567 has no salt")
    down = make_app(VOXCALLBACKS_STORE="redis://:hunter2@127.0.0.1:1/0").test_cli_runner()
    result = down.invoke(args=["voxcallbacks", "check", "--ready"])
    assert result.exit_code == 1
    assert result.output.startswith("not ready: the store redis://***@127.0.0.1:1/0 cannot be read")
    assert len(result.output.splitlines()) == 1 and "hunter2" not in result.output


def test_check_ready_gives_the_verdict_of_the_check() -> None:
    vox = VoxCallbacks()
    good = Flask(__name__)
    good.config.update(BASE_CONFIG)
    vox.init_app(good)
    with good.app_context():
        verdict = vox.check_ready()
    assert verdict.ready and verdict.errors == () and verdict.warnings == ()
    assert "Store: memory://" in verdict.facts
    down = make_app(VOXCALLBACKS_STORE="redis://:hunter2@127.0.0.1:1/0")
    verdict = vox.check_ready(down)
    assert not verdict.ready
    assert verdict.errors[0].startswith("the store redis://***@127.0.0.1:1/0 cannot be read")
    assert "hunter2" not in repr(verdict)
    unset = vox.check_ready(Flask(__name__))
    assert not unset.ready and "not set up on this application" in unset.errors[0]


class Capture(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []
    reply: ClassVar[bytes] = b'{"accepted": 2}'
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        Capture.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(Capture.status)
        self.send_header("Content-Length", str(len(Capture.reply)))
        self.end_headers()
        self.wfile.write(Capture.reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def capture_server():
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Capture.bodies = []
    capture_replying(b'{"accepted": 2}')
    yield f"http://127.0.0.1:{port}/any/path"
    server.shutdown()
    server.server_close()


def test_send_posts_signed_samples_with_fields(app, capture_server) -> None:
    result = app.test_cli_runner().invoke(
        args=[
            "voxcallbacks",
            "send",
            "sms_inbound",
            "--url",
            capture_server,
            "--count",
            "2",
            "--field",
            "sms_body=STOP",
            "--field",
            "balance=0.5",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("200 ")
    (body,) = Capture.bodies
    items = json.loads(body)["callbacks"]
    assert len(items) == 2 and items[0]["callback_id"] != items[1]["callback_id"]
    accounts = get_state(app).settings.accounts
    assert all(authenticate(item, accounts).authentic for item in items)
    assert items[0]["sms_inbound"]["sms_inbound"]["sms_body"] == "STOP"
    assert items[0]["balance"] == 0.5


def test_send_rejects_unknown_types_with_a_hint(app) -> None:
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "send", "min_balanse"])
    assert result.exit_code == 2
    assert "Did you mean 'min_balance'" in result.output


def test_send_reports_an_unreachable_url(app) -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "send", "js_fail", "--url", url])
    assert result.exit_code == 1
    assert "could not reach" in result.output


def test_send_refuses_non_http_urls(app) -> None:
    result = app.test_cli_runner().invoke(
        args=["voxcallbacks", "send", "js_fail", "--url", "file:///etc/passwd"]
    )
    assert result.exit_code == 2


def capture_replying(reply: bytes, status: int = 200) -> None:
    Capture.reply, Capture.status = reply, status


@pytest.mark.parametrize(
    ("status", "reply", "message"),
    [
        (
            200,
            b'{"accepted": 0, "rejected": 0, "duplicates": 1, "in_progress": 0, "failed": 0}',
            "0 of 1 sample(s) accepted; the endpoint answered 200 with duplicates=1",
        ),
        (
            403,
            b'{"accepted": 0, "rejected": 1, "duplicates": 0, "in_progress": 0, "failed": 0}',
            "the endpoint answered 403 with rejected=1",
        ),
        (
            500,
            b'{"accepted": 0, "rejected": 0, "duplicates": 0, "in_progress": 0, "failed": 1}',
            "the endpoint answered 500 with failed=1",
        ),
        (404, b"<html>Not Found</html>", "is not the endpoint's summary: is --url the endpoint?"),
    ],
)
def test_send_fails_unless_every_sample_is_accepted(
    app, capture_server, status: int, reply: bytes, message: str
) -> None:
    capture_replying(reply, status)
    result = app.test_cli_runner().invoke(
        args=["voxcallbacks", "send", "js_fail", "--url", capture_server]
    )
    assert result.exit_code == 1
    assert message in result.output


@pytest.mark.subprocess
def test_sample_ids_differ_across_processes() -> None:
    import subprocess
    import sys

    code = (
        "from flask_voxcallbacks.testing import make_callback;"
        " print(make_callback('js_fail')['callback_id'])"
    )
    ids = {
        int(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    }
    assert len(ids) == 3
    assert all(0 < i <= 2**63 - 1 for i in ids)


@pytest.mark.subprocess
def test_send_twice_and_after_a_restart_is_accepted_each_time(tmp_path) -> None:
    from servers import BIN, ROOT, start, stop, voxcallbacks_cli

    env = {
        "VOXCALLBACKS_STORE": f"sqlite:///{tmp_path}/vox.db",
        "PYTHONPATH": str(ROOT),
    }
    outputs = []
    for _restart in range(2):
        port = free_port()
        with (tmp_path / "server.log").open("ab") as log:
            server = start(
                [str(BIN / "flask"), "--app", "example_app", "run", "--port", str(port)],
                port,
                log,
                env,
            )
        try:
            for _ in range(2):
                sent = voxcallbacks_cli(
                    "example_app",
                    "send",
                    "min_balance",
                    "--url",
                    f"http://127.0.0.1:{port}/voximplant/callbacks",
                    env=env,
                )
                assert sent.returncode == 0, sent.stdout + sent.stderr
                outputs.append(sent.stdout)
        finally:
            stop(server)
    assert all('"accepted": 1' in out or '"accepted":1' in out for out in outputs)
    assert (tmp_path / "server.log").read_text().count("Low balance on account") == 4


def test_check_hides_every_form_of_store_password() -> None:
    url = "redis://user:pw-in-userinfo@127.0.0.1:1/0?password=pw-in-query&db=0"
    app = make_app(VOXCALLBACKS_STORE=url)
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert "pw-in-userinfo" not in result.output and "pw-in-query" not in result.output
    assert "Store: redis://***@127.0.0.1:1/0?password=***&db=0" in result.output
    settings = get_state(app).settings
    assert "pw-in" not in repr(settings)


def test_failed_and_replay_escape_what_they_print_from_the_store(app) -> None:
    from flask_voxcallbacks import callback_received
    from flask_voxcallbacks.testing import make_batch, make_callback

    def broken(sender, callback, **extra):
        raise RuntimeError("boom \x1b[2J\x1b]0;owned\x07")

    item = make_callback("min_balance")
    item["type"] = "min\x1b[31mbalance\r\n"
    runner = app.test_cli_runner()
    with callback_received.connected_to(broken, sender=app):
        app.test_client().post("/voximplant/callbacks", json=make_batch(item))
        listing = runner.invoke(args=["voxcallbacks", "failed"])
        replay = runner.invoke(args=["voxcallbacks", "replay", "--all"])
    for output in (listing.output, replay.output):
        assert "\x1b" not in output and "\x07" not in output and "\r" not in output
        assert "min?[31mbalance??" in output
    assert "boom ?[2J?]0;owned?" in listing.output


def test_check_warns_about_a_store_file_others_can_read(tmp_path) -> None:
    path = tmp_path / "vox.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    app = make_app(VOXCALLBACKS_STORE=f"sqlite:///{path}")
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert result.exit_code == 0
    for name in ("vox.db", "vox.db-wal", "vox.db-shm"):  # SQLite gives its files the db's mode
        assert f"Warning: {tmp_path / name} can be read by other users (mode 644)" in result.output
    assert "OK, with 3 warning(s)" in result.output
    path.chmod(0o600)
    for extra in tmp_path.glob("vox.db-*"):
        extra.chmod(0o600)
    clean = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert "Warning" not in clean.output and clean.output.rstrip().endswith("OK")


def test_check_warns_about_redis_eviction_and_no_persistence(redis_url) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    app = make_app(VOXCALLBACKS_STORE=redis_url)
    runner = app.test_cli_runner()
    assert "Warning" not in runner.invoke(args=["voxcallbacks", "check"]).output
    original = client.config_get("maxmemory-policy")["maxmemory-policy"]
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.config_set("appendonly", "no")
    try:
        result = runner.invoke(args=["voxcallbacks", "check"])
    finally:
        client.config_set("maxmemory-policy", original)
        client.config_set("appendonly", "yes")
        client.close()
    assert result.exit_code == 0
    assert "Warning: Redis maxmemory-policy is allkeys-lru" in result.output
    assert "Warning: Redis persists nothing" in result.output
    assert "OK, with 2 warning(s)" in result.output


def test_replay_of_one_account_only(app) -> None:
    from flask_voxcallbacks import callback_received
    from flask_voxcallbacks.testing import make_batch, make_callback

    calls = []

    def receiver(sender, callback, **extra):
        calls.append(callback.account_id)
        if len(calls) <= 2:
            raise RuntimeError("first attempts fail")

    main = make_callback("min_balance", callback_id=555)
    child = make_callback(
        "min_balance", callback_id=555, account_id=7654321, api_key=CHILD_API_KEY, salt=CHILD_SALT
    )
    runner = app.test_cli_runner()
    with callback_received.connected_to(receiver, sender=app):
        app.test_client().post("/voximplant/callbacks", json=make_batch(main, child))
        one = runner.invoke(args=["voxcallbacks", "replay", "--account", "7654321", "555"])
        rest = runner.invoke(args=["voxcallbacks", "replay", "--all"])
    assert one.exit_code == 0, one.output
    assert one.output.splitlines()[0] == "555  account=7654321  type=min_balance  accepted"
    assert "1 replayed, 0 still failing" in one.output
    assert rest.output.splitlines()[0] == "555  account=1234567  type=min_balance  accepted"
    assert calls == [1234567, 7654321, 7654321, 1234567]


@pytest.mark.parametrize(
    ("url", "posted_to"),
    [
        ("http://127.0.0.1:{port}", "/voximplant/callbacks"),
        ("http://127.0.0.1:{port}/", "/voximplant/callbacks"),
        ("http://127.0.0.1:{port}/hooks/vox", "/hooks/vox"),
    ],
)
def test_send_to_a_base_url_posts_to_the_apps_endpoint(app, url: str, posted_to: str) -> None:
    paths: list[str] = []

    class Recorder(Capture):
        def do_POST(self) -> None:
            paths.append(self.path)
            super().do_POST()

    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    capture_replying(b'{"accepted": 1}')
    try:
        result = app.test_cli_runner().invoke(
            args=["voxcallbacks", "send", "js_fail", "--url", url.format(port=port)]
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    assert paths == [posted_to]


def test_send_with_a_misspelt_field_names_it(app) -> None:
    result = app.test_cli_runner().invoke(
        args=["voxcallbacks", "send", "min_balance", "--field", "is_min_credt=true"]
    )
    assert result.exit_code == 2
    assert "did you mean 'is_min_credit'?" in result.output


def test_cli_lists_and_replays_failures(app_on_each_store) -> None:
    app = app_on_each_store
    flaky = Flaky()
    client, runner = app.test_client(), app.test_cli_runner()
    items = [make_callback("min_balance"), make_callback("sms_inbound")]
    with callback_received.connected_to(flaky, app):
        client.post(ENDPOINT, json=make_batch(*items))
        listing = runner.invoke(args=["voxcallbacks", "failed"])
        assert listing.exit_code == 0
        for item in items:
            assert str(item["callback_id"]) in listing.output
        assert "crm unreachable" in listing.output and "attempts=1" in listing.output
        assert "2 failed callback(s), 0 queued." in listing.output

        still = runner.invoke(args=["voxcallbacks", "replay", str(items[0]["callback_id"])])
        assert still.exit_code == 1 and "1 still failing" in still.output
        flaky.failing = False
        one = runner.invoke(args=["voxcallbacks", "replay", str(items[0]["callback_id"])])
        assert one.exit_code == 0, one.output
        assert flaky.handled == [items[0]["callback_id"]]
        rest = runner.invoke(args=["voxcallbacks", "replay", "--all"])
        assert rest.exit_code == 0 and "1 replayed, 0 still failing" in rest.output
        again = runner.invoke(args=["voxcallbacks", "replay", "--all"])
        assert "0 replayed" in again.output
    assert flaky.handled == [item["callback_id"] for item in items]
    assert "No failed or queued callbacks." in runner.invoke(args=["voxcallbacks", "failed"]).output


def test_cli_replay_arguments_are_checked(app_on_each_store) -> None:
    app = app_on_each_store
    runner = app.test_cli_runner()
    neither = runner.invoke(args=["voxcallbacks", "replay"])
    assert neither.exit_code == 2 and "--all" in neither.output
    unknown = runner.invoke(args=["voxcallbacks", "replay", "424242"])
    assert unknown.exit_code == 1 and "424242" in unknown.output


def test_cli_prune(app_on_each_store) -> None:
    app = app_on_each_store
    client, runner = app.test_client(), app.test_cli_runner()
    with callback_received.connected_to(Flaky(), app):
        client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    kept = runner.invoke(args=["voxcallbacks", "prune", "--older-than", "1"])
    assert "Removed 0" in kept.output
    gone = runner.invoke(args=["voxcallbacks", "prune", "--older-than", "0"])
    assert "Removed 1" in gone.output
    assert get_state(app).store.kept() == []
    missing = runner.invoke(args=["voxcallbacks", "prune"])
    assert missing.exit_code == 2


def test_replay_does_not_count_a_callback_running_elsewhere_as_replayed(app_on_each_store) -> None:
    app = app_on_each_store
    flaky = Flaky()
    item = make_callback("min_balance")
    client, runner = app.test_client(), app.test_cli_runner()
    with callback_received.connected_to(flaky, app):
        client.post(ENDPOINT, json=make_batch(item))
        flaky.failing = False
        get_state(app).store.claim(
            item["account_id"], item["callback_id"], body_digest(item), lease_seconds=60, ttl=60
        )
        result = runner.invoke(args=["voxcallbacks", "replay", "--all"])
    assert result.exit_code == 1
    assert (
        f"{item['callback_id']}  account={item['account_id']}  type=min_balance  in_progress"
        in result.output
    )
    assert "0 replayed, 1 still failing" in result.output
    assert flaky.handled == []


@pytest.fixture
def app_on_each_store(store_url: str) -> Flask:
    return make_app(VOXCALLBACKS_STORE=store_url)


def test_init_db_creates_the_postgres_table_that_check_asked_for(postgres_server) -> None:
    url = postgres_server.url.replace("postgres@", "postgres:hunter2@")
    app = make_app(VOXCALLBACKS_STORE=url, VOXCALLBACKS_NAMESPACE="fresh")
    postgres_server.execute("DROP TABLE IF EXISTS voxcallbacks_fresh")
    runner = app.test_cli_runner()
    check = runner.invoke(args=["voxcallbacks", "check"])
    assert check.exit_code == 1
    assert (
        "cannot be read: TableMissingError: the table voxcallbacks_fresh does not exist in the"
        " database 'postgres': create it with `flask voxcallbacks init-db`"
    ) in check.output
    created = runner.invoke(args=["voxcallbacks", "init-db"])
    assert created.exit_code == 0, created.output
    where = f"postgresql://***@127.0.0.1:{postgres_server.port}/postgres"
    assert created.output == f"Ready in {where}: voxcallbacks_fresh.\n"
    assert runner.invoke(args=["voxcallbacks", "init-db"]).output == created.output
    assert runner.invoke(args=["voxcallbacks", "check", "--ready"]).output == "ready\n"
    for result in (check, created):
        assert "hunter2" not in result.output


def test_init_db_says_when_the_store_sets_itself_up(tmp_path) -> None:
    app = make_app(VOXCALLBACKS_STORE=f"sqlite:///{tmp_path}/vox.db")
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "init-db"])
    assert result.exit_code == 0
    assert result.output == f"Nothing to create: sqlite:///{tmp_path}/vox.db sets itself up.\n"


def test_init_db_names_the_server_it_cannot_reach() -> None:
    port = free_port()
    app = make_app(VOXCALLBACKS_STORE=f"postgresql://vox:hunter2@127.0.0.1:{port}/vox")
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "init-db"])
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: cannot create the tables in postgresql://***@127.0.0.1:{port}/vox:"
        " OperationalError: connection failed:"
    ), result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output
