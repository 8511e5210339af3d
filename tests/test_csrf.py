"""The endpoint works in apps protected by Flask-WTF's CSRFProtect, in either set-up order."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_wtf import CSRFProtect
from helpers import BASE_CONFIG, ENDPOINT

from flask_voxcallbacks import VoxCallbacks
from flask_voxcallbacks.testing import make_batch, make_callback, record_callbacks


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


@pytest.mark.parametrize("csrf_first", [True, False])
def test_endpoint_is_exempt_and_the_rest_stays_protected(csrf_first: bool) -> None:
    app = build(csrf_first)
    client = app.test_client()
    item = make_callback("min_balance")
    with record_callbacks(app) as seen:
        response = client.post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 200 and response.get_json()["accepted"] == 1
    assert [c.callback_id for c in seen] == [item["callback_id"]]
    form = client.post("/form")
    assert form.status_code == 400 and b"CSRF" in form.data


def test_csrf_set_up_late_exempts_the_endpoint_from_the_first_request_on() -> None:
    app = build(csrf_first=False)
    hooks = len(app.before_request_funcs[None])
    client = app.test_client()
    assert client.post("/form").status_code == 400, "the first request is not the endpoint's"
    assert len(app.before_request_funcs[None]) == hooks - 1, "the set-up hook has gone"
    response = client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert response.status_code == 200 and response.get_json()["accepted"] == 1
    assert client.post("/form").status_code == 400


def test_without_csrf_the_set_up_hook_goes_after_the_first_request() -> None:
    app = Flask(__name__)
    app.config.update(BASE_CONFIG)
    VoxCallbacks(app)
    assert len(app.before_request_funcs[None]) == 1
    client = app.test_client()
    assert client.post(ENDPOINT, json=make_batch(make_callback("min_balance"))).status_code == 200
    assert app.before_request_funcs[None] == []
