"""Helpers for testing applications that receive Voximplant callbacks.

``make_callback("min_balance")`` builds a realistic, correctly signed item for any known type;
``make_batch`` wraps items in the envelope Voximplant posts.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Mapping

from .auth import sign
from .callbacks import Callback
from .payloads import CALLBACK_TYPES

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_API_KEY",
    "DEFAULT_SALT",
    "make_batch",
    "make_callback",
    "sign",
]

#: Credentials used when a test does not give its own (those of the protocol's test vectors).
DEFAULT_ACCOUNT_ID = 1234567
DEFAULT_API_KEY = "d1f0c2a4-5b6e-4c7d-8e9f-0a1b2c3d4e5f"
DEFAULT_SALT = "example-salt-42"

_COMMON_EXAMPLE = Callback.example_common()
_callback_ids = itertools.count(1_000_000_001)


def make_callback(
    type: str,
    *,
    account_id: int = DEFAULT_ACCOUNT_ID,
    api_key: str = DEFAULT_API_KEY,
    salt: str = DEFAULT_SALT,
    callback_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A signed callback item of ``type`` with every field filled with a plausible value.

    Keyword arguments named like a common field (``balance``, ``account_name``, ...) replace it;
    any other keyword replaces that field of the payload. ``payload`` replaces the whole payload.
    Callback ids are unique within the process unless ``callback_id`` is given.
    """
    if callback_id is None:
        callback_id = next(_callback_ids)
    item: dict[str, Any] = {
        "callback_id": callback_id,
        "type": type,
        "account_id": account_id,
        "hash": sign(salt, account_id, api_key, callback_id),
        **copy.deepcopy(_COMMON_EXAMPLE),
    }
    spec = CALLBACK_TYPES.get(type)
    data = dict(payload) if payload is not None else (spec.payload.example() if spec else {})
    for name, value in fields.items():
        if name in _COMMON_EXAMPLE:
            item[name] = value
        else:
            data[name] = value
    item[type] = {type: data} if spec is not None and spec.nested else data
    return item


def make_batch(*items: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope Voximplant posts: ``{"callbacks": [...]}``."""
    return {"callbacks": [dict(item) for item in items]}
