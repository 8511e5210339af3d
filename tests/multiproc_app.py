"""The example app plus a receiver that writes every attempt to a SQLite ledger.

Used by test_multiprocess.py under gunicorn. The receiver fails the first attempt of every
callback whose id is a multiple of ``FAIL_EVERY``, and the first attempt of a ``js_fail`` callback
hangs (so that the test can kill its worker in the middle of it).
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from flask import Flask

from example_app import create_app as create_example_app
from flask_voxcallbacks import Callback, callback_received

FAIL_EVERY = 7
HANG_SECONDS = 60


def ledger() -> sqlite3.Connection:
    db = sqlite3.connect(os.environ["VOX_LEDGER"], timeout=60, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS attempts (callback_id INTEGER, pid INTEGER, outcome TEXT)"
    )
    return db


def record(sender: Flask, callback: Callback, **extra: Any) -> None:
    db = ledger()
    try:
        cid = callback.callback_id
        (prior,) = db.execute(
            "SELECT COUNT(*) FROM attempts WHERE callback_id = ?", (cid,)
        ).fetchone()
        if prior == 0 and callback.type == "js_fail":
            db.execute("INSERT INTO attempts VALUES (?, ?, 'started')", (cid, os.getpid()))
            time.sleep(HANG_SECONDS)
        if prior == 0 and cid % FAIL_EVERY == 0:
            db.execute("INSERT INTO attempts VALUES (?, ?, 'failed')", (cid, os.getpid()))
            raise RuntimeError(f"first attempt of {cid} fails")
        db.execute("INSERT INTO attempts VALUES (?, ?, 'succeeded')", (cid, os.getpid()))
    finally:
        db.close()


def create_app() -> Flask:
    app = create_example_app(
        {"VOXCALLBACKS_LEASE_SECONDS": int(os.environ.get("VOX_LEASE_SECONDS", "300"))}
    )
    callback_received.connect(record, sender=app)
    return app
