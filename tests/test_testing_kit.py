"""The public test kit: sign, make_callback, make_batch, VoxCallbacksClient, record_callbacks."""

from __future__ import annotations

import pytest
from helpers import CHILD_ACCOUNT_ID, CHILD_API_KEY, CHILD_SALT, ENDPOINT, MAIN_ACCOUNTS, make_app

from flask_voxcallbacks import CALLBACK_TYPES
from flask_voxcallbacks.auth import authenticate
from flask_voxcallbacks.testing import (
    DEFAULT_API_KEY,
    VoxCallbacksClient,
    make_batch,
    make_callback,
    record_callbacks,
    sign,
)


def test_sign_is_the_protocol_formula() -> None:
    assert sign("example-salt-42", 1234567, DEFAULT_API_KEY, 987654321) == (
        "fad1a52d438b107cc2f88f5d3e259c2f"
    )


@pytest.mark.parametrize("type_name", sorted(CALLBACK_TYPES))
def test_make_callback_is_signed_and_complete(type_name: str) -> None:
    item = make_callback(type_name)
    assert authenticate(item, MAIN_ACCOUNTS).authentic
    assert item["type"] == type_name
    payload = item[type_name]
    if CALLBACK_TYPES[type_name].nested:
        payload = payload[type_name]
    assert set(payload) == {name for name, _ in CALLBACK_TYPES[type_name].payload.wire_fields()}


def test_make_callback_ids_are_unique_and_overridable() -> None:
    ids = {make_callback("min_balance")["callback_id"] for _ in range(100)}
    assert len(ids) == 100
    assert make_callback("min_balance", callback_id=5)["callback_id"] == 5


def test_make_callback_overrides_common_and_payload_fields() -> None:
    item = make_callback("sms_inbound", balance="0.01", sms_body="STOP")
    assert item["balance"] == "0.01"
    assert item["sms_inbound"]["sms_inbound"]["sms_body"] == "STOP"
    assert item["sms_inbound"]["sms_inbound"]["source_number"]
    replaced = make_callback("min_balance", payload={"is_min_credit": True})
    assert replaced["min_balance"] == {"is_min_credit": True}


def test_samples_are_fresh_copies() -> None:
    first = make_callback("renewed_subscriptions")
    first["renewed_subscriptions"]["subscriptions"][0]["name"] = "changed"
    first["account_name"] = "changed"
    second = make_callback("renewed_subscriptions")
    assert second["renewed_subscriptions"]["subscriptions"][0]["name"] != "changed"
    assert second["account_name"] != "changed"


def test_make_batch() -> None:
    a, b = make_callback("js_fail"), make_callback("card_expired")
    assert make_batch(a, b) == {"callbacks": [a, b]}
    assert make_batch() == {"callbacks": []}


def test_client_signs_with_the_apps_own_credentials() -> None:
    app = make_app(VOXCALLBACKS_SALT="another-salt", VOXCALLBACKS_PATH="/hooks/vox")
    client = VoxCallbacksClient(app, app.response_class)
    with record_callbacks(app) as seen:
        response = client.post_callbacks(
            "min_balance",
            {"type": "sms_inbound", "sms_body": "STOP"},
            {"type": "account_is_frozen", "account_id": CHILD_ACCOUNT_ID},
        )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["accepted"] == 3
    assert [c.type for c in seen] == ["min_balance", "sms_inbound", "account_is_frozen"]
    assert seen[1].payload.sms_body == "STOP"
    assert seen[2].account_id == CHILD_ACCOUNT_ID


def test_client_sends_complete_items_as_they_are(app) -> None:
    client = VoxCallbacksClient(app, app.response_class)
    forged = make_callback("min_balance", salt="not-the-salt")
    assert client.post_callbacks(forged).status_code == 403
    child = make_callback(
        "min_balance", account_id=CHILD_ACCOUNT_ID, api_key=CHILD_API_KEY, salt=CHILD_SALT
    )
    assert client.post_callbacks(child).status_code == 200


def test_client_names_what_is_wrong(app) -> None:
    client = VoxCallbacksClient(app, app.response_class)
    with pytest.raises(ValueError, match="type"):
        client.post_callbacks({"balance": 1})
    with pytest.raises(ValueError, match="42"):
        client.post_callbacks({"type": "min_balance", "account_id": 42})


def test_record_callbacks_sees_only_its_app_and_its_block(app, client) -> None:
    other = make_app()
    before = make_callback("min_balance")
    client.post(ENDPOINT, json=make_batch(before))
    with record_callbacks(app) as seen, record_callbacks(other) as other_seen:
        inside = make_callback("card_expired")
        client.post(ENDPOINT, json=make_batch(inside))
    client.post(ENDPOINT, json=make_batch(make_callback("js_fail")))
    assert [c.callback_id for c in seen] == [inside["callback_id"]]
    assert other_seen == []


def test_make_callback_for_signs_with_the_apps_accounts(app) -> None:
    from flask_voxcallbacks.state import get_state
    from flask_voxcallbacks.testing import make_callback_for

    accounts = get_state(app).settings.accounts
    main = make_callback_for(app, "min_balance", balance=1)
    child = make_callback_for(app, "js_fail", account_id=CHILD_ACCOUNT_ID)
    assert authenticate(main, accounts).authentic and main["balance"] == 1
    assert authenticate(child, accounts).authentic and child["account_id"] == CHILD_ACCOUNT_ID
    with pytest.raises(ValueError, match="account 5 is not configured on this application"):
        make_callback_for(app, "js_fail", account_id=5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"is_min_credt": True},
            "'is_min_credt' is not a field of min_balance; did you mean 'is_min_credit'?",
        ),
        (
            {"min_balance": {"is_min_credit": True}},
            "min_balance={...}: give the fields of min_balance as keywords (is_min_credit=...",
        ),
        ({"sms_body": "STOP"}, "'sms_body' is not a field of min_balance"),
    ],
)
def test_the_kit_refuses_fields_the_type_does_not_have(fields, message: str) -> None:
    with pytest.raises(ValueError) as info:
        make_callback("min_balance", **fields)
    assert message in str(info.value)


def test_post_callbacks_refuses_a_payload_written_under_its_type_key(app) -> None:
    client = VoxCallbacksClient(app, app.response_class)
    with pytest.raises(ValueError, match="give the fields of min_balance as keywords"):
        client.post_callbacks({"type": "min_balance", "min_balance": {"is_min_credit": True}})
    response = client.post_callbacks({"type": "min_balance", "is_min_credit": True})
    assert response.get_json()["accepted"] == 1
