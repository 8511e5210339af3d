"""The applications the benchmarks compare, importable by gunicorn (``apps:guide`` and
``apps:extension()``) and by the in-process benchmarks.

* ``guide``: the route Voximplant's guide shows: parse the JSON, compute the md5, compare.
* ``bare``: a route that only parses the JSON.
* ``extension()``: the extension with one receiver that counts callbacks; the store comes from
  ``VOXCALLBACKS_STORE`` (``memory://`` when unset).
* ``same_work()``: the same work written by hand (``same_work.py``), with the same receiver: its
  signal calls one receiver, as the extension's does.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import same_work as _same_work
from flask import Flask, request

from flask_voxcallbacks import VoxCallbacks, callback_received
from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, DEFAULT_SALT

PATH = "/voximplant/callbacks"


def extension() -> Flask:
    app = Flask("extension")
    app.config.update(
        VOXCALLBACKS_ACCOUNT_ID=DEFAULT_ACCOUNT_ID,
        VOXCALLBACKS_API_KEY=DEFAULT_API_KEY,
        VOXCALLBACKS_SALT=DEFAULT_SALT,
        VOXCALLBACKS_STORE=os.environ.get("VOXCALLBACKS_STORE", "memory://"),
        VOXCALLBACKS_MAX_ITEMS=20_000,
        VOXCALLBACKS_MAX_CONTENT_LENGTH=64 * 1024 * 1024,
    )
    VoxCallbacks(app)
    handled: list[int] = []

    @callback_received.connect_via(app)
    def count(sender: Flask, callback: Any) -> None:
        handled.append(1)

    return app


def same_work() -> Flask:
    app = _same_work.create_app()
    handled: list[int] = []

    @_same_work.callback_received.connect_via(app)
    def count(sender: Flask, callback: Any) -> None:
        handled.append(1)

    return app


def _guide() -> Flask:
    app = Flask("guide")
    accepted: list[dict[str, Any]] = []

    @app.post(PATH)
    def receive() -> str:
        for item in json.loads(request.get_data())["callbacks"]:
            text = f"{DEFAULT_SALT}{item['account_id']}{DEFAULT_API_KEY}{item['callback_id']}"
            if hashlib.md5(text.encode()).hexdigest() == item["hash"]:
                accepted.append(item)
        return "OK"

    return app


def _bare() -> Flask:
    app = Flask("bare")

    @app.post(PATH)
    def receive() -> str:
        json.loads(request.get_data())
        return "OK"

    return app


guide = _guide()
bare = _bare()
