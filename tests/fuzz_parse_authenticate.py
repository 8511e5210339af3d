"""Coverage-guided fuzzing of parse -> authenticate -> build for any request body.

``check(data)`` is the property: for any bytes, parsing either gives a list of objects or raises
``BadBatch``; authentication never raises and accepts an item only when its hash is the one the
credentials give; building the callback and its body digest never raise, and the callback keeps
the ids that were authenticated and no hash. When the input starts with ``S``, every item with
readable ids is signed first, so that the fuzzer also reaches the conversion of authentic items.

Run by ``make fuzz`` for long runs and briefly by ``make test``; ``test_fuzz_corpus.py`` replays
``tests/fuzz_corpus/`` (seeds and every crash found, kept as regressions) under pytest.
"""

from __future__ import annotations

import hmac
import json
import sys
from typing import Any

from flask_voxcallbacks.auth import Credentials, authenticate, id_text, sign
from flask_voxcallbacks.callbacks import build_callback
from flask_voxcallbacks.parsing import BadBatch, parse_batch
from flask_voxcallbacks.pinning import body_digest

ACCOUNTS = {
    1234567: Credentials("d1f0c2a4-5b6e-4c7d-8e9f-0a1b2c3d4e5f", "example-salt-42"),
    7654321: Credentials("9a8b7c6d-0000-1111-2222-333344445555", "child-salt"),
    42: Credentials("k", ""),
}


def _sign_items(body: bytes) -> bytes:
    """The body with every item that has readable ids and a known account signed."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    items = data.get("callbacks") if isinstance(data, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        account, callback = id_text(item.get("account_id")), id_text(item.get("callback_id"))
        credentials = ACCOUNTS.get(int(account)) if account is not None else None
        if credentials is not None and callback is not None:
            item["hash"] = sign(credentials.salt, account, credentials.api_key, callback)
    try:
        return json.dumps(data).encode()
    except (ValueError, RecursionError):
        return body


def check(data: bytes) -> None:
    """Raise AssertionError (or any unexpected exception) when a property fails."""
    body = _sign_items(data[1:]) if data[:1] == b"S" else data
    try:
        items = parse_batch(body)
    except BadBatch:
        return
    assert isinstance(items, list) and all(isinstance(item, dict) for item in items)
    for item in items:
        verdict = authenticate(item, ACCOUNTS)
        if not verdict.authentic:
            continue
        credentials = ACCOUNTS[verdict.account_id]
        received = item["hash"]
        expected = sign(
            credentials.salt,
            id_text(item["account_id"]) or "",
            credentials.api_key,
            id_text(item["callback_id"]) or "",
        )
        assert isinstance(received, str) and hmac.compare_digest(expected, received.lower())
        type_name: Any = item.get("type")
        callback = build_callback(
            item,
            verdict.callback_id,
            verdict.account_id,
            type_name if isinstance(type_name, str) else "",
        )
        assert (callback.account_id, callback.callback_id) == (
            verdict.account_id,
            verdict.callback_id,
        )
        assert "hash" not in callback.raw
        assert len(body_digest(callback.raw)) == 64


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
