"""Fixtures shared by the tests; the helpers they import are in helpers.py."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import Clock, Seen, _made, make_app

from flask_voxcallbacks import callback_rejected
from flask_voxcallbacks.store import open_store
from flask_voxcallbacks.store.base import Store
from flask_voxcallbacks.testing import record_callbacks

pytest_plugins = ["pytester"]

#: A host project run by test_host_project.py in its own folder, with its own settings.
collect_ignore = ["host_project"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``server`` every test that starts a server or another process (a Redis server, a
    gunicorn, a worker): ``make test-fast`` runs the others. Mark ``vox_real_store`` the
    package's own tests."""
    here = Path(__file__).parent
    for item in items:
        # The package's own tests set up applications on the stores they test; the example
        # app's tests run as a host project's would, on the plugin's private stores.
        if here in item.path.parents:
            item.add_marker(pytest.mark.vox_real_store)
        fixtures = getattr(item, "fixturenames", ())
        uses_server = "redis_server" in fixtures or "postgres_server" in fixtures
        if uses_server or item.get_closest_marker("subprocess") is not None:
            item.add_marker(pytest.mark.server)


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


@pytest.fixture
def seen(app: Flask) -> Iterator[Seen]:
    with record_callbacks(app) as received:
        record = Seen(received)
        with callback_rejected.connected_to(record.on_rejected, sender=app):
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    from servers import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


#: The namespaces the tests use: postgres_url creates their tables.
NAMESPACES = ("", "billing")


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """The URL of the test PostgreSQL database, with the tables of NAMESPACES created (as
    ``flask voxcallbacks init-db`` does) and emptied before each test."""
    from flask_voxcallbacks.store.postgres import create_table_statements, table_name

    statements = [s for namespace in NAMESPACES for s in create_table_statements(namespace)]
    tables = ", ".join(table_name(namespace) for namespace in NAMESPACES)
    postgres_server.execute(*statements, f"TRUNCATE {tables}")
    return str(postgres_server.url)


@pytest.fixture(params=["memory", "sqlite", "sqlite-per-key", "redis", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param.startswith("sqlite"):
        if request.param == "sqlite-per-key":
            # As on SQLite before 3.38: one claim statement per callback.
            from flask_voxcallbacks.store import sqlite

            request.getfixturevalue("monkeypatch").setattr(sqlite, "_ONE_STATEMENT", False)
        return f"sqlite:///{tmp_path}/vox.db"
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A store of each kind, closed after the test."""
    store = open_store(store_url)
    yield store
    store.close()


@pytest.fixture
def clock(store: Store) -> Clock:
    return Clock(store)
