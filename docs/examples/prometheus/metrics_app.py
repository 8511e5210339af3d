"""Callbacks counted under gunicorn, exposed at /metrics."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flask_voxcallbacks import VoxCallbacks
from flask_voxcallbacks.metrics import exposition_registry


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_prefixed_env("VOX")  # VOX_VOXCALLBACKS_SALT=...
    app.config.update(config or {})
    app.config["VOXCALLBACKS_METRICS"] = "prometheus"
    VoxCallbacks(app)

    @app.get("/metrics")
    def metrics() -> Response:
        # Every worker's counts (PROMETHEUS_MULTIPROC_DIR), and the store's.
        body = generate_latest(exposition_registry(app))
        return Response(body, content_type=CONTENT_TYPE_LATEST)

    return app
