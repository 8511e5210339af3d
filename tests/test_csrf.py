"""The endpoint works in apps protected by Flask-WTF's CSRFProtect, in either set-up order."""

from __future__ import annotations

from conftest import BASE_CONFIG, ENDPOINT
from flask import Flask
from flask_wtf import CSRFProtect

from flask_voxcallbacks import VoxCallbacks
from flask_voxcallbacks.testing import make_batch, make_callback


def build(csrf_first: bool) -> Flask:
    app = Flask(__name__)
    app.config.update(BASE_CONFIG, SECRET_KEY="csrf-test", TESTING=False)

    @app.post("/form")
    def form() -> str:
        return "ok"

    if csrf_first:
        CSRFProtect(app)
        VoxCallbacks(app)
    else:
        VoxCallbacks(app)
        CSRFProtect(app)
    return app


def test_csrf_protect_first() -> None:
    client = build(csrf_first=True).test_client()
    assert client.post(ENDPOINT, json=make_batch(make_callback("min_balance"))).status_code == 200
    assert client.post("/form").status_code == 400


def test_csrf_protect_second() -> None:
    client = build(csrf_first=False).test_client()
    assert client.post(ENDPOINT, json=make_batch(make_callback("min_balance"))).status_code == 200
    assert client.post("/form").status_code == 400
