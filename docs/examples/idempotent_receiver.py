"""A receiver whose side effect happens once, even when its callback runs twice."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

from flask import Flask

from flask_voxcallbacks import Callback, MinBalance, min_balance_reached

sent: list[int] = []


def send_alert(callback: Callback[MinBalance]) -> None:
    sent.append(callback.callback_id)  # your e-mail or chat call here


def on_low_balance(sender: Flask, callback: Callback[MinBalance], **extra: Any) -> None:
    # The primary key (account_id, callback_id) makes a second insert of one callback fail, and
    # the row and the alert succeed or fail together: the transaction is rolled back if
    # send_alert raises, so that the next attempt sends it.
    with closing(sqlite3.connect(sender.config["ALERTS_DATABASE"])) as db, db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS alerts ("
            " account_id INTEGER, callback_id INTEGER, PRIMARY KEY (account_id, callback_id))"
        )
        try:
            db.execute(
                "INSERT INTO alerts VALUES (?, ?)", (callback.account_id, callback.callback_id)
            )
        except sqlite3.IntegrityError:
            return  # handled before: its worker died before the callback was recorded as done
        send_alert(callback)


def connect(app: Flask) -> None:
    min_balance_reached.connect(on_low_balance, sender=app)
