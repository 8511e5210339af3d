"""The test vectors of the protocol description (§4), byte for byte."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from helpers import ENDPOINT

from flask_voxcallbacks import sign
from flask_voxcallbacks.payloads import MinBalance, SmsInbound, SubscriptionIsFrozen

VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text())
API_KEY = "d1f0c2a4-5b6e-4c7d-8e9f-0a1b2c3d4e5f"


def test_hash_formula_matches_each_vector() -> None:
    assert sign("example-salt-42", 1234567, API_KEY, 987654321) == (
        "fad1a52d438b107cc2f88f5d3e259c2f"
    )
    assert sign("example-salt-42", 1234567, API_KEY, 987654322) == (
        "95e731a366ec9169388cdb54ab9ff2ad"
    )
    assert sign("example-salt-42", 1234567, API_KEY, 987654323) == (
        "85c3a8d066d90d7763d8cc76ab1bba14"
    )
    assert sign("child-salt", 7654321, "9a8b7c6d-0000-1111-2222-333344445555", 555000111) == (
        "34135b31c15acf8dec77b08b24968a2a"
    )
    assert sign("", 1234567, API_KEY, 987654321) == "42bb2cc397bef3f2ae1bba64cf873ccc"


def test_low_balance_vector(client, seen) -> None:
    response = client.post(ENDPOINT, json=VECTORS["4.1"])
    assert response.status_code == 200
    assert response.get_json()["accepted"] == 1
    (callback,) = seen.received
    assert callback.callback_id == 987654321
    assert callback.account_id == 1234567
    assert callback.balance == Decimal("4.5231")
    assert callback.payload == MinBalance(is_min_credit=False, is_repeated=False)


def test_sms_and_frozen_subscription_vector(client, seen) -> None:
    response = client.post(ENDPOINT, json=VECTORS["4.2"])
    assert response.status_code == 200
    assert response.get_json()["accepted"] == 2
    sms, frozen = seen.received
    assert sms.payload == SmsInbound("447700900123", "12025550143", "STOP")
    assert isinstance(frozen.payload, SubscriptionIsFrozen)
    (subscription,) = frozen.payload.subscriptions
    assert subscription.cost == Decimal("1.0")
    assert subscription.details[0].phone_numbers[0].phone_id == 55501
    assert frozen.balance == Decimal("-0.12")


def test_child_account_vector(client, seen) -> None:
    response = client.post(ENDPOINT, json=VECTORS["4.3"])
    assert response.status_code == 200
    (callback,) = seen.received
    assert callback.account_id == 7654321
    assert callback.payload.account_document_status == "VERIFIED"
    assert callback.payload.update_time == datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone.utc)
    assert callback.payload.comment is None


def test_vectors_rejected_under_other_credentials() -> None:
    from helpers import make_app

    app = make_app(VOXCALLBACKS_SALT="another-salt")
    response = app.test_client().post(ENDPOINT, json=VECTORS["4.1"])
    assert response.status_code == 403
    assert response.get_json() == {
        "accepted": 0,
        "rejected": 1,
        "duplicates": 0,
        "in_progress": 0,
        "failed": 0,
    }


def test_empty_salt_mode_accepts_the_unsalted_hash() -> None:
    from helpers import make_app

    item = dict(VECTORS["4.1"]["callbacks"][0], hash="42bb2cc397bef3f2ae1bba64cf873ccc")
    app = make_app(VOXCALLBACKS_SALT="")
    assert app.test_client().post(ENDPOINT, json={"callbacks": [item]}).status_code == 200
    salted = make_app()
    assert salted.test_client().post(ENDPOINT, json={"callbacks": [item]}).status_code == 403
