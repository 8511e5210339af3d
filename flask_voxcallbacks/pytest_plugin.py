"""Pytest fixtures for applications using flask-voxcallbacks (loaded automatically).

While a project's tests run, every application they set up (in a fixture, a test or a conftest)
gets a private memory store and handles callbacks inline, whatever store and queue its settings or
the environment name, so that tests never reach a production-like store, its leftovers or a live
queue. A test opts into the configured store and queue with ``@pytest.mark.vox_real_store``; the
ini option ``vox_store = app`` does so for the whole run.

``vox_app`` is the application under test: the project's own ``app`` fixture when it has one,
else the factory or object named by the ``vox_app`` ini option (``"yourapp:create_app"``, called
with the ``vox_config`` fixture's settings when a project overrides it), else a bare application
with the test kit's default credentials. It gets ``TESTING = True`` and a fresh memory store for
each test. ``vox_client`` is a :class:`~flask_voxcallbacks.testing.VoxCallbacksClient` for it and
``vox_recorder`` the list of callbacks its handlers were given during the test.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from flask import Flask

from .extension import VoxCallbacks
from .state import get_state, use_private_stores
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
        "'memory' (default): the apps tests set up get a private memory store; 'app': keep theirs",
        default="memory",
    )


def _keeps_real_store(config: pytest.Config) -> bool:
    keep = str(config.getini("vox_store"))
    if keep not in ("memory", "app"):
        raise pytest.UsageError(f"vox_store = {keep!r}: expected 'memory' or 'app'")
    return keep == "app"


_before_session: list[bool] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vox_real_store: the applications this test sets up keep their configured store and queue",
    )
    _before_session.append(use_private_stores(not _keeps_real_store(config)))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _before_session:
        use_private_stores(_before_session.pop())


def _real_store(item: pytest.Item) -> bool:
    return _keeps_real_store(item.config) or item.get_closest_marker("vox_real_store") is not None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    """Private stores for the applications set up during the test, fixtures included, unless it
    opts into the real store."""
    use_private_stores(not _real_store(item))
    try:
        yield
    finally:
        use_private_stores(not _keeps_real_store(item.config))


def _load(target: str, settings: dict[str, Any]) -> Flask:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise pytest.UsageError(f"vox_app = {target!r}: expected 'module:attribute'")
    found = getattr(importlib.import_module(module_name), attribute)
    if isinstance(found, Flask):
        if settings:
            raise pytest.UsageError(
                f"vox_app = {target!r} is an application, set up before vox_config could reach"
                " it: name its factory instead"
            )
        return found
    if not settings:
        app = found()
    elif _takes_one_argument(found):
        app = found(settings)
    else:
        raise pytest.UsageError(
            f"vox_config gives settings but {target} takes no argument to receive them;"
            " give the factory one (create_app(test_config=None)) and apply it before init_app"
        )
    if not isinstance(app, Flask):
        raise pytest.UsageError(f"vox_app = {target!r} gave {type(app).__name__}, not a Flask app")
    return app


def _takes_one_argument(factory: Any) -> bool:
    try:
        inspect.signature(factory).bind({})
    except (TypeError, ValueError):
        return False
    return True


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
def vox_config() -> dict[str, Any]:
    """Settings for the factory named by the ``vox_app`` ini option: override this fixture to
    give them; the factory then receives them as its one argument."""
    return {}


@pytest.fixture
def vox_app(request: pytest.FixtureRequest, vox_config: dict[str, Any]) -> Flask:
    """The application under test (see the module docstring for how it is found)."""
    app: Any
    try:
        app = request.getfixturevalue("app")
    except pytest.FixtureLookupError:
        target = str(request.config.getini("vox_app"))
        app = _load(target, vox_config) if target else _bare_app()
    else:
        if vox_config:
            raise pytest.UsageError(
                "vox_config gives settings, but the project's app fixture sets the application"
                " up itself: give them there"
            )
    app.config["TESTING"] = True
    get_state(app)
    if not _real_store(request.node):
        use_memory_store(app)
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
