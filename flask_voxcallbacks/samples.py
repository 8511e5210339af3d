"""Signed sample callbacks, built from the field declarations: used by the test kit
(:mod:`flask_voxcallbacks.testing`) and by ``flask voxcallbacks send``."""

from __future__ import annotations

import copy
import difflib
import secrets
from typing import Any, Mapping

from flask import Flask

from .auth import sign
from .callbacks import Callback
from .fields import example_of
from .payloads import CALLBACK_TYPES, Payload
from .state import get_state

#: Credentials used when a test does not give its own (those of the protocol's test vectors).
DEFAULT_ACCOUNT_ID = 1234567
DEFAULT_API_KEY = "d1f0c2a4-5b6e-4c7d-8e9f-0a1b2c3d4e5f"
DEFAULT_SALT = "example-salt-42"

_COMMON_EXAMPLE = example_of(Callback)


def new_callback_id() -> int:
    """A random positive 63-bit callback id: unique across processes and restarts, so that a
    sample is never taken for the redelivery of an earlier one."""
    return secrets.randbelow(2**63 - 1) + 1


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
    any other keyword replaces that field of the payload, and must be one: a misspelt name raises
    ``ValueError`` naming the field and the type. ``payload`` replaces the whole payload, as the
    wire carries it (without the double nesting of ``sms_inbound``, which is added). Callback ids
    are random 63-bit numbers (unique across processes and runs) unless ``callback_id`` is given.
    """
    if callback_id is None:
        callback_id = new_callback_id()
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
            if spec is not None:
                _check_payload_field(spec.payload, name)
            data[name] = value
    item[type] = {type: data} if spec is not None and spec.nested else data
    return item


def _check_payload_field(payload: type[Payload], name: str) -> None:
    """Refuse a keyword that is neither a common field nor a field of the payload."""
    type_name = payload.wire_type
    fields = [field for field, _ in payload.wire_fields()]
    if name == type_name:
        raise ValueError(
            f"{type_name}={{...}}: give the fields of {type_name} as keywords"
            f" ({', '.join(f'{field}=...' for field in fields[:2]) or 'it has none'}) or as"
            " payload={...}; the kit adds the nesting the wire needs"
        )
    if name not in fields:
        close = difflib.get_close_matches(name, fields + list(_COMMON_EXAMPLE), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"{name!r} is not a field of {type_name}; {hint}its fields are"
            f" {', '.join(fields) or 'none'}, and every callback has {', '.join(_COMMON_EXAMPLE)}"
        )


def make_callback_for(
    app: Flask, type: str, account_id: int | None = None, **fields: Any
) -> dict[str, Any]:
    """``make_callback`` signed with the credentials ``app`` is configured with for
    ``account_id`` (default: its main account, else one of ``VOXCALLBACKS_ACCOUNTS``)."""
    settings = get_state(app).settings
    account_id = settings.account_id if account_id is None else int(account_id)
    credentials = settings.accounts.get(account_id)
    if credentials is None:
        configured = ", ".join(str(a) for a in sorted(settings.accounts))
        raise ValueError(
            f"account {account_id} is not configured on this application (it has {configured})"
        )
    return make_callback(
        type, account_id=account_id, api_key=credentials.api_key, salt=credentials.salt, **fields
    )


def make_batch(*items: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope Voximplant posts: ``{"callbacks": [...]}``."""
    return {"callbacks": [dict(item) for item in items]}
