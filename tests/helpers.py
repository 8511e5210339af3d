"""Helpers shared by the tests: the test application's settings, ``make_app``, what the signals
delivered, and the store tests' constants and clock."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from flask import Flask

from flask_voxcallbacks import VoxCallbacks
from flask_voxcallbacks.auth import Credentials
from flask_voxcallbacks.store.base import Store
from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, DEFAULT_SALT

ENDPOINT = "/voximplant/callbacks"
CHILD_ACCOUNT_ID = 7654321
CHILD_API_KEY = "9a8b7c6d-0000-1111-2222-333344445555"
CHILD_SALT = "child-salt"

#: The main account's credentials as the authentication code holds them.
MAIN_ACCOUNTS = {DEFAULT_ACCOUNT_ID: Credentials(DEFAULT_API_KEY, DEFAULT_SALT)}

BASE_CONFIG: dict[str, Any] = {
    "TESTING": True,
    "VOXCALLBACKS_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
    "VOXCALLBACKS_API_KEY": DEFAULT_API_KEY,
    "VOXCALLBACKS_SALT": DEFAULT_SALT,
    "VOXCALLBACKS_ACCOUNTS": {CHILD_ACCOUNT_ID: {"api_key": CHILD_API_KEY, "salt": CHILD_SALT}},
}


#: Applications made by make_app during the current test, whose stores close after it.
_made: list[Flask] = []


def without_extra(package: str, key: str, value: str) -> str:
    """Run, in a fresh interpreter where ``package`` cannot be imported (as when its extra is not
    installed), an app without ``key`` (it must import nothing of the extension's that needs the
    package) and one with ``key = value``; return what the second one's ConfigurationError said.
    """
    code = f"""
import sys
sys.modules[{package!r}] = None
from flask import Flask
from flask_voxcallbacks import ConfigurationError, VoxCallbacks
from flask_voxcallbacks.testing import make_batch, make_callback
config = dict(TESTING=True, VOXCALLBACKS_ACCOUNT_ID=1234567,
              VOXCALLBACKS_API_KEY="4f0b4a8e-5b4d-4c1a-9a3e-1c2d3e4f5a6b",
              VOXCALLBACKS_SALT="s3cret-salt")
app = Flask("off"); app.config.update(config); VoxCallbacks(app)
app.test_client().post("/voximplant/callbacks", json=make_batch(make_callback("min_balance")))
assert not {{"flask_voxcallbacks.metrics", "flask_voxcallbacks.tracing"}} & set(sys.modules)
on = Flask("on"); on.config.update(config, {key}={value!r})
try:
    VoxCallbacks(on)
except ConfigurationError as error:
    print(error)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def make_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(BASE_CONFIG)
    app.config.update(config)
    VoxCallbacks(app)
    _made.append(app)
    return app


class Seen:
    """What the signals delivered during a test: the callbacks dispatched (collected by the test
    kit's ``record_callbacks``) and the items rejected, with their reasons."""

    def __init__(self, received: list[Any]) -> None:
        self.received = received
        self.rejected: list[tuple[Any, str]] = []

    def on_rejected(self, sender: Any, callback: Any, reason: str, **extra: Any) -> None:
        self.rejected.append((callback, reason))


class Flaky:
    """A receiver that fails while ``failing`` is set, and counts its successful calls."""

    def __init__(self) -> None:
        self.failing = True
        self.handled: list[int] = []

    def __call__(self, sender: Any, callback: Any, **extra: Any) -> None:
        if self.failing:
            raise ConnectionError("crm unreachable")
        self.handled.append(callback.callback_id)


# The store tests ---------------------------------------------------------------------------------

ITEM = {"callback_id": 5, "account_id": 1, "type": "min_balance"}
BODY = "digest-of-the-first-body"


OTHER = "digest-of-another-body"


DAY = 86400


class Clock:
    """Moves a store's time forward: its clock for memory and SQLite, real time for Redis,
    whose expiries the server keeps (with a margin over the 1 s TTLs used with it)."""

    def __init__(self, store: Store) -> None:
        self.offset = 0.0
        self.real = type(store).__name__ == "RedisStore"
        if not self.real:
            store.now = lambda: time.time() + self.offset  # type: ignore[method-assign]

    def advance(self, seconds: float) -> None:
        if self.real:
            time.sleep(seconds + 0.5)
        else:
            self.offset += seconds


def stored_keys(store: Store) -> int:
    """How many keys a memory or SQLite store holds."""
    if hasattr(store, "_open"):
        return len(store._open) + len(store._done)
    db = store._connection()  # type: ignore[attr-defined]
    return int(db.execute("SELECT COUNT(*) FROM voxcallbacks").fetchone()[0])


class SilentBroker:
    """A TCP server on loopback that accepts connections and never answers."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[Any] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        import socket

        # Wake the accepting thread and let it end, so that no connection comes in unclosed.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)
        for connection in self.accepted:
            connection.close()


def lost_completion(records: list[Any]) -> str:
    """The reason in the one ERROR line a store logs for a completion that failed after the
    request was answered (records: ``caplog.records``)."""
    (line,) = [r.getMessage() for r in records if r.levelname == "ERROR"]
    head = "store error while recording handled callbacks as done ("
    tail = "); they stay claimed until their lease ends"
    assert line.startswith(head) and line.endswith(tail), line
    return line[len(head) : -len(tail)]
