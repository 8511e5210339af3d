"""Per-item authentication: ``hash = md5(salt + account_id + api_key + callback_id)``."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

#: Why an item was rejected; the value sent as ``reason`` with ``callback_rejected``.
INVALID_ACCOUNT_ID = "invalid_account_id"
INVALID_CALLBACK_ID = "invalid_callback_id"
UNKNOWN_ACCOUNT = "unknown_account"
MISSING_HASH = "missing_hash"
HASH_MISMATCH = "hash_mismatch"
#: The hash is valid but the body differs from the one this callback id was first received with.
BODY_MISMATCH = "body_mismatch"

REASONS = (
    INVALID_ACCOUNT_ID,
    INVALID_CALLBACK_ID,
    UNKNOWN_ACCOUNT,
    MISSING_HASH,
    HASH_MISMATCH,
    BODY_MISMATCH,
)

#: Ids are 64-bit signed integers on every Voximplant client; stores rely on that bound.
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Credentials:
    """The secrets of one account. ``repr`` never shows them."""

    api_key: str
    salt: str

    def __repr__(self) -> str:
        return "Credentials(api_key=***, salt=***)"


class Authentic(NamedTuple):
    """An item whose hash matched: its ids, as numbers. (A named tuple: one is built for every
    callback, and a frozen dataclass costs 1 us more to build.)"""

    account_id: int
    callback_id: int

    @property
    def authentic(self) -> bool:
        return True


@dataclass(frozen=True)
class Rejection:
    """An item that failed authentication, with what could be read of its ids."""

    reason: str
    account_id: int | None = None
    callback_id: int | None = None

    authentic = False


def sign(salt: str, account_id: int | str, api_key: str, callback_id: int | str) -> str:
    """The lower-case hex md5 Voximplant puts in ``hash`` for these inputs."""
    text = f"{salt}{account_id}{api_key}{callback_id}"
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def id_text(value: Any) -> str | None:
    """The decimal text of an id sent as a JSON number or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if 0 <= value <= _MAX_ID else None
    if isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit():
        return value if int(value) <= _MAX_ID else None
    return None


def authenticate(
    item: Mapping[str, Any], accounts: Mapping[int, Credentials]
) -> Authentic | Rejection:
    """Check one item against the credentials of the account it names."""
    account_text = id_text(item.get("account_id"))
    if account_text is None:
        return Rejection(INVALID_ACCOUNT_ID)
    account_id = int(account_text)
    callback_text = id_text(item.get("callback_id"))
    if callback_text is None:
        return Rejection(INVALID_CALLBACK_ID, account_id)
    callback_id = int(callback_text)
    credentials = accounts.get(account_id)
    if credentials is None:
        return Rejection(UNKNOWN_ACCOUNT, account_id, callback_id)
    received = item.get("hash")
    if not isinstance(received, str) or not received:
        return Rejection(MISSING_HASH, account_id, callback_id)
    expected = sign(credentials.salt, account_text, credentials.api_key, callback_text)
    if not received.isascii() or not hmac.compare_digest(expected, received.lower()):
        return Rejection(HASH_MISMATCH, account_id, callback_id)
    return Authentic(account_id, callback_id)
