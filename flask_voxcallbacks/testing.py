"""Helpers for testing applications that receive Voximplant callbacks.

``make_callback("min_balance")`` builds a realistic, correctly signed item for any known type;
``make_batch`` wraps items in the envelope Voximplant posts; ``VoxCallbacksClient.post_callbacks``
signs with the application's own credentials; ``record_callbacks(app)`` collects what the
handlers were given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Mapping, Union

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .auth import sign
from .callbacks import Callback
from .registry import Payload
from .samples import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    DEFAULT_SALT,
    make_batch,
    make_callback,
    make_callback_for,
    new_callback_id,
)
from .signals import callback_received
from .state import EXTENSION_NAME, VoxState, get_state
from .store.memory import MemoryStore

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_API_KEY",
    "DEFAULT_SALT",
    "VoxCallbacksClient",
    "make_batch",
    "make_callback",
    "make_callback_for",
    "new_callback_id",
    "record_callbacks",
    "sign",
]

#: What ``post_callbacks`` accepts for one item: a type name, or a (partial) item.
ItemSpec = Union[str, Mapping[str, Any]]


class VoxCallbacksClient(FlaskClient):
    """A test client that posts callbacks signed with the application's own credentials."""

    def post_callbacks(self, *items: ItemSpec, **kwargs: Any) -> TestResponse:
        """Post a batch to the application's endpoint.

        Each item is a type name (``"min_balance"``), a partial item (``{"type": "sms_inbound",
        "sms_body": "STOP"}``), filled in and signed for the account it names (the main account by
        default), or a complete item with a ``hash``, sent as it is.
        """
        settings = get_state(self.application).settings
        batch = make_batch(*(self._complete(item) for item in items))
        return self.post(settings.path, json=batch, **kwargs)

    def _complete(self, spec: ItemSpec) -> dict[str, Any]:
        if isinstance(spec, str):
            spec = {"type": spec}
        if "hash" in spec:
            return dict(spec)
        fields = dict(spec)
        if "type" not in fields:
            raise ValueError("an item given to post_callbacks needs a 'type'")
        return make_callback_for(self.application, **fields)


@contextmanager
def record_callbacks(app: Flask) -> Iterator[list[Callback[Payload]]]:
    """Collect, in order, the authentic callbacks dispatched by ``app`` while the block runs."""
    seen: list[Callback[Payload]] = []

    def record(sender: Flask, callback: Callback[Payload], **extra: Any) -> None:
        seen.append(callback)

    with callback_received.connected_to(record, sender=app):
        yield seen


def use_memory_store(app: Flask) -> None:
    """Give ``app`` a fresh memory store in place of the one it was configured with, and handle
    callbacks inline even when it sets a queue: its workers could not see this store (tests)."""
    state = get_state(app)
    state.store.close()
    settings = replace(state.settings, store_url="memory://")
    app.extensions[EXTENSION_NAME] = VoxState(settings, MemoryStore(), None, state.tracing)
