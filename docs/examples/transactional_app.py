"""One row per callback, committed with the callback's done marker.

VOXCALLBACKS_STORE = "sqlalchemy" keeps the extension's table in the
database of Flask-SQLAlchemy: each callback's claim, the rows its
receivers add through db.session and its done marker commit together.

    export DATABASE_URL=postgresql+psycopg://app@localhost/app
    flask --app transactional_app voxcallbacks init-db
    flask --app transactional_app create-tables
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import BigInteger
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_voxcallbacks import (
    Callback,
    Payload,
    VoxCallbacks,
    callback_received,
)


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
vox = VoxCallbacks()


class Receipt(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    # Voximplant's ids take 64 bits.
    account_id: Mapped[int] = mapped_column(BigInteger)
    callback_id: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str]


def keep_receipt(
    sender: Flask, callback: Callback[Payload], **extra: Any
) -> None:
    db.session.add(
        Receipt(
            account_id=callback.account_id,
            callback_id=callback.callback_id,
            type=callback.type,
        )
    )
    # No commit here: the extension commits the row with the
    # callback's done marker, or rolls both back if a receiver fails.


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", "sqlite:///receipts.db"
        ),
        VOXCALLBACKS_STORE="sqlalchemy",
        VOXCALLBACKS_ACCOUNT_ID=int(os.environ.get("VOX_ACCOUNT_ID", "1")),
        VOXCALLBACKS_API_KEY=os.environ.get("VOX_API_KEY", "api-key"),
        VOXCALLBACKS_SALT=os.environ.get("VOX_SALT", "salt"),
    )
    app.config.update(config or {})
    db.init_app(app)  # first: the extension finds the database here
    vox.init_app(app)
    callback_received.connect(keep_receipt, sender=app)

    @app.cli.command("create-tables")
    def create_tables() -> None:
        """Create the application's own tables."""
        db.create_all()

    return app
