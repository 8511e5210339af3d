"""The transactional example under gunicorn, for test_store_sqlalchemy.py: the test kit's account,
and, with ``VOX_HANG_FILE`` set, a receiver that hangs in the first attempt of every ``js_fail``
callback, after its receipt is written in the transaction, so that the test can kill the worker
there (the file gets the worker's pid)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs" / "examples"))

from transactional_app import create_app as create_example_app
from transactional_app import db

from flask_voxcallbacks import callback_received
from flask_voxcallbacks.testing import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    DEFAULT_SALT,
)


def hang_once(sender: Flask, callback: Any, **extra: Any) -> None:
    hang_file = Path(os.environ["VOX_HANG_FILE"])
    if callback.type == "js_fail" and not hang_file.exists():
        db.session.flush()  # the receipt is written, uncommitted
        hang_file.write_text(str(os.getpid()))
        time.sleep(60)


def create_app() -> Flask:
    app = create_example_app(
        {
            "VOXCALLBACKS_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
            "VOXCALLBACKS_API_KEY": DEFAULT_API_KEY,
            "VOXCALLBACKS_SALT": DEFAULT_SALT,
        }
    )
    if os.environ.get("VOX_HANG_FILE"):
        callback_received.connect(hang_once, sender=app)
    return app
