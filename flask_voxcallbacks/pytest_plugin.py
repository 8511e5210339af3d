"""Pytest fixtures for applications using flask-voxcallbacks (loaded automatically).

``vox_app`` is the application under test: the project's own ``app`` fixture when it has one,
else the factory or object named by the ``vox_app`` ini option (``"yourapp:create_app"``), else a
bare application with the test kit's default credentials. An application built from the ini
option gets ``TESTING = True`` and a fresh memory store for each test, whatever store its factory
configured, so that tests never touch a production-like store nor its leftovers, and it
handles callbacks inline even when it sets a queue (``VOXCALLBACKS_QUEUE``); set the ini option
``vox_store = app`` to keep the factory's store and queue. ``vox_client`` is a
:class:`~flask_voxcallbacks.testing.VoxCallbacksClient` for it and ``vox_recorder`` the list of
callbacks its handlers were given during the test.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from .extension import VoxCallbacks
from .state import get_state
from .testing import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    DEFAULT_SALT,
    VoxCallbacksClient,
    record_callbacks,
    use_memory_store,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "vox_app",
        "module:attribute of the Flask app (or app factory) that the vox_* fixtures use",
        default="",
    )
    parser.addini(
        "vox_store",
        "'memory' (default): the vox_app app gets a fresh memory store; 'app': keep its own",
        default="memory",
    )


def _load(target: str) -> Flask:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise pytest.UsageError(f"vox_app = {target!r}: expected 'module:attribute'")
    found = getattr(importlib.import_module(module_name), attribute)
    app = found if isinstance(found, Flask) else found()
    if not isinstance(app, Flask):
        raise pytest.UsageError(f"vox_app = {target!r} gave {type(app).__name__}, not a Flask app")
    return app


def _bare_app() -> Flask:
    app = Flask("vox_app")
    app.config.update(
        TESTING=True,
        VOXCALLBACKS_ACCOUNT_ID=DEFAULT_ACCOUNT_ID,
        VOXCALLBACKS_API_KEY=DEFAULT_API_KEY,
        VOXCALLBACKS_SALT=DEFAULT_SALT,
    )
    VoxCallbacks(app)
    return app


@pytest.fixture
def vox_app(request: pytest.FixtureRequest) -> Flask:
    """The application under test (see the module docstring for how it is found)."""
    app: Any
    try:
        app = request.getfixturevalue("app")
    except pytest.FixtureLookupError:
        target = str(request.config.getini("vox_app"))
        app = _load(target) if target else _bare_app()
        keep = str(request.config.getini("vox_store"))
        if keep not in ("memory", "app"):
            raise pytest.UsageError(f"vox_store = {keep!r}: expected 'memory' or 'app'") from None
        app.config["TESTING"] = True
        if keep == "memory":
            use_memory_store(app)
    get_state(app)
    return app  # type: ignore[no-any-return]


@pytest.fixture
def vox_client(vox_app: Flask) -> VoxCallbacksClient:
    """A test client whose ``post_callbacks`` signs with the app's credentials."""
    return VoxCallbacksClient(vox_app, vox_app.response_class, use_cookies=True)


@pytest.fixture
def vox_recorder(vox_app: Flask) -> Iterator[list[Any]]:
    """The callbacks the app's handlers were given during the test, in order."""
    with record_callbacks(vox_app) as seen:
        yield seen
