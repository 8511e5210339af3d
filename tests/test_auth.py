"""Per-item authentication: which items are accepted and why the others are rejected."""

from __future__ import annotations

import pytest
from helpers import CHILD_ACCOUNT_ID, CHILD_API_KEY, CHILD_SALT, ENDPOINT, MAIN_ACCOUNTS

from flask_voxcallbacks import RejectedCallback, sign
from flask_voxcallbacks.auth import REASONS, Credentials, authenticate
from flask_voxcallbacks.testing import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    DEFAULT_SALT,
    make_batch,
    make_callback,
)


def test_numeric_strings_are_hashed_as_sent() -> None:
    item = {
        "account_id": str(DEFAULT_ACCOUNT_ID),
        "callback_id": "0042",
        "hash": sign(DEFAULT_SALT, DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, "0042"),
    }
    verdict = authenticate(item, MAIN_ACCOUNTS)
    assert verdict.authentic
    assert (verdict.account_id, verdict.callback_id) == (DEFAULT_ACCOUNT_ID, 42)


def test_hash_comparison_ignores_case() -> None:
    item = make_callback("min_balance")
    item["hash"] = item["hash"].upper()
    assert authenticate(item, MAIN_ACCOUNTS).authentic


REJECTIONS = [
    ({"hash": None}, "missing_hash"),
    ({"hash": ""}, "missing_hash"),
    ({"hash": 12345}, "missing_hash"),
    ({"hash": "0" * 32}, "hash_mismatch"),
    ({"hash": "é" * 32}, "hash_mismatch"),
    ({"account_id": 999}, "unknown_account"),
    ({"account_id": None}, "invalid_account_id"),
    ({"account_id": True}, "invalid_account_id"),
    ({"account_id": 1234567.0}, "invalid_account_id"),
    ({"account_id": "12a"}, "invalid_account_id"),
    ({"account_id": -1234567}, "invalid_account_id"),
    ({"callback_id": None}, "invalid_callback_id"),
    ({"callback_id": 2**64}, "invalid_callback_id"),
    ({"callback_id": "\uff11\uff12\uff13"}, "invalid_callback_id"),  # full-width digits
    ({"callback_id": [1]}, "invalid_callback_id"),
]


def test_every_documented_reason_is_exercised() -> None:
    # body_mismatch is decided by the store, after authentication: see test_pinning.py.
    assert {reason for _, reason in REJECTIONS} == set(REASONS) - {"body_mismatch"}


@pytest.mark.parametrize(("change", "reason"), REJECTIONS)
def test_rejection_reasons(client, seen, change: dict, reason: str) -> None:
    item = make_callback("min_balance")
    item.update(change)
    response = client.post(ENDPOINT, json=make_batch(item))
    assert response.status_code == 403
    ((rejected, sent_reason),) = seen.rejected
    assert sent_reason == reason
    assert isinstance(rejected, RejectedCallback)
    assert rejected.reason == reason
    assert rejected.raw == {key: value for key, value in item.items() if key != "hash"}


@pytest.mark.parametrize(
    ("type_value", "seen_type"), [("js_fail", "js_fail"), (5, None), (None, None)]
)
def test_a_rejected_items_type_is_kept_only_when_it_is_text(client, seen, type_value, seen_type):
    item = make_callback("js_fail", salt="wrong")
    item["type"] = type_value
    client.post(ENDPOINT, json=make_batch(item))
    ((rejected, _),) = seen.rejected
    assert rejected.type == seen_type


def test_credentials_repr_is_fixed_text() -> None:
    assert repr(Credentials("k", "s")) == "Credentials(api_key=***, salt=***)"


def test_callback_id_from_another_item_does_not_authenticate(client, seen) -> None:
    """A hash is bound to its callback_id: moving it to another id fails."""
    first = make_callback("min_balance")
    second = make_callback("min_balance", callback_id=first["callback_id"] + 1)
    second["hash"] = first["hash"]
    response = client.post(ENDPOINT, json=make_batch(second))
    assert response.status_code == 403


def test_child_accounts_use_their_own_credentials(client, seen) -> None:
    child = make_callback(
        "account_document_status_updated",
        account_id=CHILD_ACCOUNT_ID,
        api_key=CHILD_API_KEY,
        salt=CHILD_SALT,
    )
    signed_with_parent = make_callback(
        "min_balance", account_id=CHILD_ACCOUNT_ID, api_key=DEFAULT_API_KEY, salt=DEFAULT_SALT
    )
    response = client.post(ENDPOINT, json=make_batch(child, signed_with_parent))
    assert response.status_code == 200
    assert [c.account_id for c in seen.received] == [CHILD_ACCOUNT_ID]
    assert [reason for _, reason in seen.rejected] == ["hash_mismatch"]


@pytest.mark.parametrize(
    "hash_of",
    [
        lambda good: good[:1],
        lambda good: good[:31],
        lambda good: good + "0",
        lambda good: good[1:],
        lambda good: " " + good,
    ],
    ids=["first-char", "prefix", "longer", "suffix", "padded"],
)
def test_only_the_whole_hash_authenticates(hash_of) -> None:
    item = make_callback("min_balance")
    item["hash"] = hash_of(item["hash"])
    verdict = authenticate(item, MAIN_ACCOUNTS)
    assert not verdict.authentic and verdict.reason == "hash_mismatch"


MAX_ID = 2**63 - 1


@pytest.mark.parametrize(
    ("callback_id", "accepted"),
    [
        (0, True),
        ("0", True),
        ("7", True),
        (7, True),
        (MAX_ID, True),
        (str(MAX_ID), True),
        (MAX_ID + 1, False),
        (str(MAX_ID + 1), False),
        (str(2**64 - 1), False),
        ("", False),
        ("-1", False),
        (-1, False),
        ("1" * 21, False),
        ("0" * 18 + "42", True),  # 20 characters: the longest text accepted
        ("0" * 19 + "42", False),
    ],
)
def test_callback_ids_are_64_bit_signed_non_negative(callback_id, accepted: bool) -> None:
    item = {
        "account_id": DEFAULT_ACCOUNT_ID,
        "callback_id": callback_id,
        "hash": sign(DEFAULT_SALT, DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY, callback_id),
    }
    verdict = authenticate(item, MAIN_ACCOUNTS)
    assert verdict.authentic is accepted
    if accepted:
        assert verdict.callback_id == int(callback_id)
    else:
        assert verdict.reason == "invalid_callback_id"
        assert verdict.account_id == DEFAULT_ACCOUNT_ID


@pytest.mark.parametrize("account_id", [MAX_ID + 1, str(MAX_ID + 1), str(2**64 - 1), "", 0.5])
def test_account_ids_beyond_64_bits_are_invalid(account_id) -> None:
    accounts = {MAX_ID: Credentials("k", "s"), **MAIN_ACCOUNTS}
    item = {"account_id": account_id, "callback_id": 1, "hash": sign("s", account_id, "k", 1)}
    verdict = authenticate(item, accounts)
    assert verdict.reason == "invalid_account_id"
    assert (verdict.account_id, verdict.callback_id) == (None, None)


def test_the_largest_account_id_authenticates() -> None:
    accounts = {MAX_ID: Credentials("k", "s")}
    for account_id in (MAX_ID, str(MAX_ID)):
        item = {"account_id": account_id, "callback_id": 1, "hash": sign("s", account_id, "k", 1)}
        assert authenticate(item, accounts).authentic


@pytest.mark.parametrize(
    ("change", "reason", "ids"),
    [
        ({"callback_id": "x"}, "invalid_callback_id", (DEFAULT_ACCOUNT_ID, None)),
        ({"account_id": 999}, "unknown_account", (999, 77)),
        ({"hash": None}, "missing_hash", (DEFAULT_ACCOUNT_ID, 77)),
        ({"hash": "0" * 32}, "hash_mismatch", (DEFAULT_ACCOUNT_ID, 77)),
    ],
)
def test_rejections_keep_the_ids_they_could_read(client, seen, change, reason, ids) -> None:
    item = make_callback("min_balance", callback_id=77)
    item.update(change)
    client.post(ENDPOINT, json=make_batch(item))
    ((rejected, sent_reason),) = seen.rejected
    assert sent_reason == reason == rejected.reason
    assert (rejected.account_id, rejected.callback_id) == ids
    assert rejected.type == "min_balance"
