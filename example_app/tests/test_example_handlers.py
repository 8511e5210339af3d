"""The example's handlers, tested the way a host application would: only the public test kit.

The fixtures come from flask-voxcallbacks' pytest plugin; ``vox_app = example_app:create_app``
in pyproject.toml tells it which application to build.
"""

from __future__ import annotations

import pytest

from flask_voxcallbacks import Callback, Payload
from flask_voxcallbacks.testing import VoxCallbacksClient, make_callback

Recorder = list[Callback[Payload]]


def test_low_balance_prints_a_line(
    vox_client: VoxCallbacksClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = vox_client.post_callbacks({"type": "min_balance", "balance": 1.25})
    assert response.status_code == 200
    assert "Low balance on account 1234567: 1.25 USD" in capsys.readouterr().out


def test_inbound_sms_prints_sender_and_text(
    vox_client: VoxCallbacksClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = vox_client.post_callbacks({"type": "sms_inbound", "sms_body": "STOP"})
    assert response.status_code == 200
    assert "SMS from 447700900123 to 12025550143: STOP" in capsys.readouterr().out


def test_frozen_account_prints_a_line(
    vox_client: VoxCallbacksClient, vox_recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    assert vox_client.post_callbacks("account_is_frozen").status_code == 200
    assert "Account 1234567 was frozen" in capsys.readouterr().out
    assert [c.type for c in vox_recorder] == ["account_is_frozen"]


def test_forged_callback_is_refused_and_not_handled(
    vox_client: VoxCallbacksClient, vox_recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = make_callback("min_balance", salt="guessed")
    assert vox_client.post_callbacks(forged).status_code == 403
    assert vox_recorder == []
    assert "Low balance" not in capsys.readouterr().out


def test_redelivery_prints_once(
    vox_client: VoxCallbacksClient, capsys: pytest.CaptureFixture[str]
) -> None:
    item = make_callback("min_balance")
    assert vox_client.post_callbacks(item).get_json()["accepted"] == 1
    assert vox_client.post_callbacks(item).get_json()["duplicates"] == 1
    assert capsys.readouterr().out.count("Low balance") == 1


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from example_app import create_app

    monkeypatch.setenv("VOXCALLBACKS_ACCOUNT_ID", "555")
    monkeypatch.setenv("VOXCALLBACKS_API_KEY", "env-key")
    monkeypatch.setenv("VOXCALLBACKS_SALT", "env-salt")
    app = create_app()
    ours = make_callback("min_balance", account_id=555, api_key="env-key", salt="env-salt")
    demo = make_callback("min_balance")
    response = app.test_client().post("/voximplant/callbacks", json={"callbacks": [ours, demo]})
    assert response.get_json()["accepted"] == 1
    assert response.get_json()["rejected"] == 1
