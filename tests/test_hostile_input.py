"""No client input of any kind produces a 500 or reaches a handler unauthenticated."""

from __future__ import annotations

import json
import logging

import pytest
from helpers import ENDPOINT, make_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_voxcallbacks import callback_received
from flask_voxcallbacks.testing import make_batch, make_callback

ALLOWED = {200, 400, 403}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"callbacks": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"callbacks": [{"callback_id": ' + b"9" * 5000 + b"}]}",
        b'{"callbacks": [{"balance": NaN}]}',
        b'{"callbacks": [{"balance": -Infinity}]}',
        b'{"callbacks": [{"balance": Infinity}]}',
        b"\xff\xfe\xfd not utf-8",
        b'{"callbacks": [{"type": "\xc3\x28"}]}',
        '{"callbacks": []}'.encode("utf-16"),
        b"\x00" * 64,
    ],
    ids=[
        "deep-array",
        "deep-callbacks",
        "huge-int",
        "nan",
        "minus-infinity",
        "infinity",
        "binary",
        "bad-utf8-in-string",
        "utf16",
        "nul-bytes",
    ],
)
def test_malicious_bodies_get_a_400(client, seen, body: bytes) -> None:
    response = client.post(ENDPOINT, data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data()
    assert "error" in response.get_json()
    assert seen.received == [] and seen.rejected == []


WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    type_name=st.sampled_from(
        ["min_balance", "renewed_subscriptions", "sms_inbound", "plan_config"]
    ),
    field=st.sampled_from(
        [
            "balance",
            "currency",
            "account_name",
            "type",
            "min_balance",
            "subscriptions",
            "sms_inbound",
            "packages",
            "sms_body",
            "plan_type",
            "is_min_credit",
        ]
    ),
    value=WRONG_VALUES,
)
def test_authentic_items_with_wrong_field_types_are_delivered(
    client, type_name: str, field: str, value: object
) -> None:
    item = make_callback(type_name)
    if field in item:
        item[field] = value
    else:
        item[type_name] = {field: value}
    response = client.post(ENDPOINT, data=json.dumps(make_batch(item)))
    assert response.status_code == 200
    assert response.get_json()["accepted"] == 1


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=JSON_VALUES)
def test_arbitrary_json_never_fails_the_server(client, body: object) -> None:
    response = client.post(ENDPOINT, data=json.dumps(body))
    assert response.status_code in ALLOWED


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(
        st.dictionaries(
            st.sampled_from(
                ["callback_id", "account_id", "hash", "type", "balance", "min_balance"]
            ),
            JSON_VALUES,
            max_size=6,
        ),
        max_size=4,
    )
)
def test_arbitrary_items_are_rejected_not_crashed(client, items: list) -> None:
    response = client.post(ENDPOINT, json={"callbacks": items})
    assert response.status_code in ({403} if items else {200})


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_never_fail_the_server(client, body: bytes) -> None:
    response = client.post(ENDPOINT, data=body)
    assert response.status_code in ALLOWED


def test_a_flood_of_forged_items_is_one_warning_line(client, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="flask_voxcallbacks")
    forged = [make_callback("min_balance", salt="guess") for _ in range(500)]
    response = client.post(ENDPOINT, json=make_batch(*forged, *[{}] * 499))
    assert response.status_code == 403 and response.get_json()["rejected"] == 999
    assert [r.getMessage() for r in caplog.records] == [
        "batch of 999: 999 rejected (hash_mismatch=500 from account 1234567,"
        " invalid_account_id=499); if they come from Voximplant, the salt or api key configured"
        " for account 1234567 differ from its own: compare VOXCALLBACKS_SALT (or the account's"
        " VOXCALLBACKS_ACCOUNTS entry) with the salt on Voximplant's Webhooks page, or check a"
        " captured item with `flask voxcallbacks verify`"
    ]


def test_a_megabyte_of_empty_items_is_refused_at_once(client, seen, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="flask_voxcallbacks")
    body = b'{"callbacks": [' + b",".join([b"{}"] * 349_000) + b"]}"
    assert len(body) < 1024 * 1024
    response = client.post(ENDPOINT, data=body)
    assert response.status_code == 413
    assert seen.rejected == []
    assert len(caplog.records) == 1


def signed_item() -> dict:
    return make_callback("sms_inbound", sms_body="hello", balance=10)


MUTATION = st.one_of(
    st.tuples(
        st.just("set"),
        st.sampled_from(sorted(signed_item())),
        JSON_VALUES | st.integers(min_value=0, max_value=2**63),
    ),
    st.tuples(st.just("delete"), st.sampled_from(sorted(signed_item())), st.none()),
    st.tuples(st.just("add"), st.text(min_size=1, max_size=8), JSON_VALUES),
    st.tuples(st.just("sms_body"), st.just(""), st.text(max_size=8)),
    st.tuples(st.just("id_as_text"), st.sampled_from(["callback_id", "account_id"]), st.none()),
)


def mutate(item: dict, mutations: list) -> dict:
    changed = json.loads(json.dumps(item))
    for kind, key, value in mutations:
        if kind == "set":
            changed[key] = value
        elif kind == "delete":
            changed.pop(key, None)
        elif kind == "add":
            changed[key] = value
        elif kind == "sms_body":
            outer = changed.get("sms_inbound")
            if isinstance(outer, dict) and isinstance(outer.get("sms_inbound"), dict):
                outer["sms_inbound"]["sms_body"] = value
        elif isinstance(changed.get(key), int):
            changed[key] = str(changed[key])
    return changed


def without_hash(item: dict) -> dict:
    return {k: v for k, v in item.items() if k != "hash"}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3), first_fails=st.booleans())
def test_a_mutated_signed_item_never_runs_a_mutated_body(mutations, first_fails) -> None:
    app = make_app()
    original = signed_item()
    handled: list = []

    def receiver(sender, callback, **extra):
        handled.append(callback)
        if first_fails and len(handled) == 1:
            raise RuntimeError("first attempt fails")

    client = app.test_client()
    with callback_received.connected_to(receiver, sender=app):
        client.post(ENDPOINT, json=make_batch(original))
        mutated = mutate(original, mutations)
        response = client.post(ENDPOINT, data=json.dumps({"callbacks": [mutated]}))
    assert response.status_code in ALLOWED
    for callback in handled:
        assert callback.raw == without_hash(original)
        assert (callback.account_id, callback.callback_id) == (
            original["account_id"],
            original["callback_id"],
        )
    if not first_fails:
        assert len(handled) == 1, "a handled callback never runs again, whatever the body"
