from __future__ import annotations

import logging
from typing import Any, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_voxcallbacks import VoxCallbacks, callback_received, callback_rejected
from flask_voxcallbacks.auth import Credentials
from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, DEFAULT_SALT

pytest_plugins = ["pytester"]

#: A host project run by test_host_project.py in its own folder, with its own settings.
collect_ignore = ["host_project"]

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``server`` every test that starts a server or another process (a Redis server, a
    gunicorn, a worker): ``make test-fast`` runs the others."""
    for item in items:
        uses_redis = "redis_server" in getattr(item, "fixturenames", ())
        if uses_redis or item.get_closest_marker("subprocess") is not None:
            item.add_marker(pytest.mark.server)


#: Applications made by make_app during the current test, whose stores close after it.
_made: list[Flask] = []


def make_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(BASE_CONFIG)
    app.config.update(config)
    VoxCallbacks(app)
    _made.append(app)
    return app


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    """Close the stores a test opened, so that no connection of theirs is left for the garbage
    collector to find (and warn about) during a later test. A store closed this way reopens its
    connection if it is used again."""
    yield
    while _made:
        state = _made.pop().extensions.get("voxcallbacks")
        if state is not None:
            state.store.close()


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Seen:
    """What the signals delivered during a test."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.rejected: list[tuple[Any, str]] = []
        self.senders: list[Any] = []

    def on_received(self, sender: Any, callback: Any, **extra: Any) -> None:
        self.senders.append(sender)
        self.received.append(callback)

    def on_rejected(self, sender: Any, callback: Any, reason: str, **extra: Any) -> None:
        self.rejected.append((callback, reason))


@pytest.fixture
def seen(app: Flask) -> Iterator[Seen]:
    record = Seen()
    with (
        callback_received.connected_to(record.on_received, sender=app),
        callback_rejected.connected_to(record.on_rejected, sender=app),
    ):
        yield record


@pytest.fixture
def vox_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="flask_voxcallbacks")
    return caplog


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from servers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: Any) -> Iterator[str]:
    """The URL of the test Redis server, emptied before each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/vox.db"
    return str(request.getfixturevalue("redis_url"))
