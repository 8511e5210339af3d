"""A receiver whose side effect happens once, whatever runs twice."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

from flask import Flask

from flask_voxcallbacks import Callback, MinBalance, min_balance_reached

sent: list[int] = []

SCHEMA = """CREATE TABLE IF NOT EXISTS alerts (
    account_id INTEGER,
    callback_id INTEGER,
    PRIMARY KEY (account_id, callback_id)
)"""


def send_alert(callback: Callback[MinBalance]) -> None:
    sent.append(callback.callback_id)  # your e-mail or chat call here


def on_low_balance(
    sender: Flask,
    callback: Callback[MinBalance],
    **extra: Any,
) -> None:
    key = (callback.account_id, callback.callback_id)
    database = sqlite3.connect(sender.config["ALERTS_DATABASE"])
    # One transaction: if send_alert raises, the row goes too, and the
    # next attempt sends the alert.
    with closing(database) as db, db:
        db.execute(SCHEMA)
        try:
            db.execute("INSERT INTO alerts VALUES (?, ?)", key)
        except sqlite3.IntegrityError:
            # Sent before: the worker died before the callback was
            # recorded as done.
            return
        send_alert(callback)


def connect(app: Flask) -> None:
    min_balance_reached.connect(on_low_balance, sender=app)
