from __future__ import annotations

from flask import Flask
from hostapp import low_balances, unsubscribed

from flask_voxcallbacks import Callback, Payload
from flask_voxcallbacks.testing import VoxCallbacksClient, make_callback_for


def test_stop_unsubscribes(
    vox_client: VoxCallbacksClient, vox_recorder: list[Callback[Payload]]
) -> None:
    response = vox_client.post_callbacks({"type": "sms_inbound", "sms_body": "STOP"})
    assert response.status_code == 200
    assert vox_recorder[0].type == "sms_inbound"
    assert unsubscribed[-1] == "447700900123"


def test_a_child_accounts_low_balance(vox_app: Flask, vox_client: VoxCallbacksClient) -> None:
    item = make_callback_for(vox_app, "min_balance", account_id=7654321, is_min_credit=True)
    response = vox_client.post_callbacks(item)
    assert response.get_json()["accepted"] == 1
    assert low_balances[-1] == (7654321, "credit")


def test_the_same_callback_twice_runs_once(vox_client: VoxCallbacksClient) -> None:
    before = len(low_balances)
    item = {"type": "min_balance", "callback_id": 42, "balance": 0.5}
    assert vox_client.post_callbacks(item).get_json()["accepted"] == 1
    assert vox_client.post_callbacks(item).get_json()["duplicates"] == 1
    assert len(low_balances) == before + 1
