"""No client input of any kind produces a 500 or reaches a handler unauthenticated."""

from __future__ import annotations

import json

import pytest
from conftest import ENDPOINT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
        "infinity",
        "binary",
        "bad-utf8-in-string",
        "utf16",
        "nul-bytes",
    ],
)
def test_malicious_bodies_get_a_4xx_or_200(client, seen, body: bytes) -> None:
    response = client.post(ENDPOINT, data=body, content_type="application/json")
    assert response.status_code in ALLOWED
    assert seen.received == []


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
