"""flask voxcallbacks types / check / send."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from conftest import CHILD_API_KEY, CHILD_SALT, make_app
from servers import free_port

from flask_voxcallbacks import CALLBACK_TYPES, signals
from flask_voxcallbacks.auth import authenticate
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.testing import DEFAULT_API_KEY, DEFAULT_SALT


def test_types_lists_every_type_with_signal_and_fields(app) -> None:
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "types"])
    assert result.exit_code == 0
    names = signals.signal_names()
    for type_name in CALLBACK_TYPES:
        assert f"{type_name}  signal={names[type_name]}" in result.output
    assert "    is_min_credit: boolean" in result.output
    assert "    subscriptions: list of Subscription" in result.output
    assert "46 types." in result.output


def test_check_prints_endpoint_and_accounts_never_a_secret(app) -> None:
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
    assert result.exit_code == 0, result.output
    assert "Endpoint: POST /voximplant/callbacks" in result.output
    assert "Account 1234567 (main): salt set" in result.output
    assert "Account 7654321 (extra): salt set" in result.output
    assert "Store: memory://" in result.output
    assert "this process only" in result.output
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
    assert "store cannot be read" in result.output
    assert "hunter2" not in result.output
    assert "Store: redis://***@127.0.0.1:1/0" in result.output
    assert "this process only" not in result.output


class Capture(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        Capture.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        reply = b'{"accepted": 2}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def capture_server():
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Capture.bodies = []
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
