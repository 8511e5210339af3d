"""The ``VoxCallbacks`` extension object."""

from __future__ import annotations

import copy
import logging
import sqlite3
from dataclasses import replace
from typing import Any

from flask import Flask, current_app

from .cli import voxcallbacks_cli
from .config import CONFIG_KEYS, ConfigurationError, load_settings
from .queue import open_queue
from .readiness import Readiness, check_readiness
from .safe_text import RedactSecrets, add_secrets
from .state import EXTENSION_NAME, Tracing, VoxState, private_stores
from .store import Store, open_store
from .views import make_blueprint

logger = logging.getLogger("flask_voxcallbacks")
if not any(isinstance(f, RedactSecrets) for f in logger.filters):
    logger.addFilter(RedactSecrets())


class VoxCallbacks:
    """Receives Voximplant HTTP callbacks on a Flask application.

    ``VoxCallbacks(app)`` sets the application up at once; ``VoxCallbacks()`` followed by
    ``init_app(app)`` suits application factories. The object keeps no reference to any app.
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the ``VOXCALLBACKS_*`` config, open the store and register the blueprint."""
        if EXTENSION_NAME in app.extensions:
            raise RuntimeError(
                "flask_voxcallbacks is already set up on this application; call init_app once."
            )
        settings = load_settings(app.config)
        # As Flask's own extensions do: app.config shows every setting, defaults included.
        for key in CONFIG_KEYS:
            if not key.required:
                app.config.setdefault(key.name, copy.deepcopy(key.default))
        private = private_stores()
        if private:
            # Under the pytest plugin: the tests never reach the configured store or queue.
            settings = replace(settings, store_url="memory://", queue_url="")
        add_secrets(*(c.api_key for c in settings.accounts.values()))
        add_secrets(*(c.salt for c in settings.accounts.values()))
        if settings.queue_url and settings.store_url.startswith("memory:") and not app.testing:
            raise ConfigurationError(
                "VOXCALLBACKS_QUEUE needs a store its workers share: set VOXCALLBACKS_STORE to"
                " sqlite:///path/to/file.db (one host) or redis://host:port/db; memory:// lives"
                " in one process (it is accepted with a queue only when the app is TESTING)"
            )
        if settings.store_url.startswith("memory:") and not (app.debug or app.testing or private):
            logger.warning(
                "VOXCALLBACKS_STORE is memory://: each process remembers only the callbacks it"
                " handled, so under several workers (gunicorn -w 2) a redelivery can run a"
                " callback again, and a restart forgets them all; use sqlite:///path/to/file.db"
                " (one host) or redis://host:port/db"
            )
        queue = open_queue(settings.queue_url, app, settings.namespace)
        if settings.store_url == "sqlalchemy":
            store = _open_sqlalchemy_store(app, settings.namespace)
        else:
            store = open_store(settings.store_url, app.instance_path, settings.namespace)
        tracing = _open_tracing() if settings.tracing else None
        app.extensions[EXTENSION_NAME] = VoxState(settings, store, queue, tracing)
        if settings.metrics:
            _install_metrics(app, settings.metrics_registry)
        blueprint = make_blueprint(settings.path)
        app.register_blueprint(blueprint)
        _exempt_from_csrf(app, blueprint)
        app.cli.add_command(voxcallbacks_cli)

    def check_ready(self, app: Flask | None = None) -> Readiness:
        """Whether ``app`` (the current application by default) would handle callbacks now: its
        configuration, store and queue checked as ``flask voxcallbacks check`` does. For
        readiness probes: ``ready`` is false when every callback would fail."""
        return check_readiness(app if app is not None else current_app._get_current_object())  # type: ignore[attr-defined]


def _open_sqlalchemy_store(app: Flask, namespace: str) -> Store:
    db = app.extensions.get("sqlalchemy")
    if db is None:
        raise ConfigurationError(
            'VOXCALLBACKS_STORE = "sqlalchemy" keeps the callbacks in the database of'
            " Flask-SQLAlchemy, which is not set up on this application: call db.init_app(app)"
            " before init_app"
        )
    try:
        from .store.sqlalchemy import SQLAlchemyStore
    except ImportError:
        raise ConfigurationError(
            'VOXCALLBACKS_STORE = "sqlalchemy" needs SQLAlchemy 2:'
            " pip install 'flask-voxcallbacks[sqlalchemy]'"
        ) from None
    with app.app_context():
        dialect = db.engine.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise ConfigurationError(
            f'VOXCALLBACKS_STORE = "sqlalchemy" works on PostgreSQL and SQLite, and this'
            f" application's database is {dialect}"
        )
    if dialect == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise ConfigurationError(
            f'VOXCALLBACKS_STORE = "sqlalchemy" needs SQLite 3.35 or newer (INSERT ...'
            f" RETURNING), and this Python has SQLite {sqlite3.sqlite_version}"
        )
    return SQLAlchemyStore(db, namespace)


def _open_tracing() -> Tracing:
    try:
        from .tracing import OpenTelemetryTracing  # opentelemetry-api: an optional package
    except ImportError:
        raise ConfigurationError(
            'VOXCALLBACKS_TRACING = "opentelemetry" needs the opentelemetry-api package:'
            " pip install 'flask-voxcallbacks[opentelemetry]'"
        ) from None
    return OpenTelemetryTracing()


def _install_metrics(app: Flask, registry: Any) -> None:
    try:
        from .metrics import install  # prometheus_client: an optional package
    except ImportError:
        raise ConfigurationError(
            'VOXCALLBACKS_METRICS = "prometheus" needs the prometheus_client package:'
            " pip install 'flask-voxcallbacks[prometheus]'"
        ) from None
    install(app, registry)


def _exempt_from_csrf(app: Flask, blueprint: object) -> None:
    """Exempt the endpoint from Flask-WTF's CSRFProtect, whichever was set up first.

    Voximplant cannot send a CSRF token; the per-item hash authenticates the request instead.
    """
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(blueprint)
        return

    # CSRFProtect may be set up after this extension, until the application handles its first
    # request (Flask refuses any set-up after that). This hook, registered before CSRFProtect's,
    # runs once, on that first request: it exempts the blueprint if CSRFProtect has arrived, then
    # takes itself out of the list (rebinding it, so that the loop running the hooks is not
    # disturbed).
    @app.before_request
    def exempt_when_csrf_arrives() -> None:
        late = app.extensions.get("csrf")
        if late is not None:
            late.exempt(blueprint)
        hooks = app.before_request_funcs
        hooks[None] = [hook for hook in hooks[None] if hook is not exempt_when_csrf_arrives]
