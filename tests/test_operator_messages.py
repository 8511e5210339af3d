"""Set-up mistakes and wrong credentials are loud: a misspelt key, a memory store in production,
hashes that do not match, and a command that checks a captured item."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from helpers import BASE_CONFIG, ENDPOINT, make_app

from flask_voxcallbacks import ConfigurationError, VoxCallbacks
from flask_voxcallbacks.testing import DEFAULT_ACCOUNT_ID, make_batch, make_callback


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("VOXCALLBACK_STORE", "did you mean VOXCALLBACKS_STORE?"),
        ("VOX_CALLBACKS_STORE", "write it VOXCALLBACKS_STORE."),
        ("voxcallbacks_store", "write it VOXCALLBACKS_STORE."),
        ("VOXCALLBAKS_STORE", "did you mean VOXCALLBACKS_STORE?"),
        ("VOXCALLBACKS_LEASE", "did you mean VOXCALLBACKS_LEASE_SECONDS?"),
    ],
)
def test_a_key_that_looks_like_ours_is_refused_with_the_one_meant(key: str, meant: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(**{key: "redis://localhost:6379/0"})
    assert str(info.value) == f"{key} is not a flask-voxcallbacks setting; {meant}"


def test_keys_of_other_extensions_are_left_alone() -> None:
    app = make_app(CELERY={"broker_url": "memory://"}, SECRET_KEY="x", VOX_LEDGER="y")
    assert app.extensions["voxcallbacks"].settings.store_url == "memory://"


def _production_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update({**BASE_CONFIG, "TESTING": False, **config})
    VoxCallbacks(app)
    app.extensions["voxcallbacks"].store.close()
    return app


def test_a_memory_store_outside_debug_and_testing_is_a_warning_at_start(
    caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_voxcallbacks")
    _production_app()
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("VOXCALLBACKS_STORE is memory://: each process remembers only")
    caplog.clear()
    _production_app(VOXCALLBACKS_STORE=f"sqlite:///{tmp_path}/vox.db")
    make_app()  # TESTING
    assert caplog.records == []


def test_the_summary_of_hashes_that_do_not_match_names_the_account_and_what_to_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_voxcallbacks")
    app = make_app()
    wrong_salt = [make_callback("min_balance", salt="another-salt") for _ in range(2)]
    unknown = make_callback("min_balance", account_id=42)
    response = app.test_client().post(ENDPOINT, json=make_batch(*wrong_salt, unknown))
    assert response.status_code == 403
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        f"batch of 3: 3 rejected (hash_mismatch=2 from account {DEFAULT_ACCOUNT_ID},"
        " unknown_account=1 from account 42); if they come from Voximplant, the salt or api key"
        f" configured for account {DEFAULT_ACCOUNT_ID} differ from its own"
    )
    assert "flask voxcallbacks verify" in line
    assert "another-salt" not in line and BASE_CONFIG["VOXCALLBACKS_SALT"] not in line


def test_verify_says_which_items_match_and_what_was_compared(tmp_path: Any) -> None:
    app = make_app()
    good = make_callback("min_balance")
    wrong = make_callback("min_balance", salt="another-salt")
    unsalted = make_callback("min_balance", salt="")
    unknown = make_callback("min_balance", account_id=42)
    capture = tmp_path / "captured.json"
    capture.write_text(json.dumps(make_batch(good, wrong, unsalted, unknown)))
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "verify", str(capture)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == (
        f"item 0 (callback {good['callback_id']}, account {DEFAULT_ACCOUNT_ID}): the hash matches"
    )
    salt = BASE_CONFIG["VOXCALLBACKS_SALT"]
    api_key = BASE_CONFIG["VOXCALLBACKS_API_KEY"]
    assert lines[1].endswith(
        "the hash does not match md5(salt + account_id + api_key + callback_id) computed with"
        f" the salt ({len(salt)} characters) and the api key ({len(api_key)} characters) of"
        " VOXCALLBACKS_SALT and VOXCALLBACKS_API_KEY; compare them with the account's Webhooks"
        " page and API keys"
    )
    assert lines[2].endswith("it matches without a salt: the account has none on Voximplant's side")
    assert lines[3].endswith(
        "account 42 is not configured: set it as VOXCALLBACKS_ACCOUNT_ID or add it to"
        " VOXCALLBACKS_ACCOUNTS"
    )
    assert lines[4] == "1 of 4 item(s) authentic."
    assert salt not in result.output and api_key not in result.output


def test_verify_reads_one_item_from_standard_input_and_refuses_what_is_not_json() -> None:
    app = make_app()
    runner = app.test_cli_runner()
    ok = runner.invoke(
        args=["voxcallbacks", "verify"], input=json.dumps(make_callback("sms_inbound"))
    )
    assert ok.exit_code == 0 and ok.output.endswith("1 of 1 item(s) authentic.\n")
    bad = runner.invoke(args=["voxcallbacks", "verify"], input="hash=abc")
    assert bad.exit_code == 1 and "the input is not JSON" in bad.output


def test_a_secret_in_a_receivers_error_reaches_neither_the_store_nor_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flask_voxcallbacks import callback_received
    from flask_voxcallbacks.state import get_state

    caplog.set_level(logging.DEBUG, logger="flask_voxcallbacks")
    app = make_app()
    api_key, salt = BASE_CONFIG["VOXCALLBACKS_API_KEY"], BASE_CONFIG["VOXCALLBACKS_SALT"]

    def leaky(sender: Flask, callback: Any, **extra: Any) -> None:
        raise RuntimeError(f"CRM refused key {api_key} (salt {salt}); retry with api_key=hunter2")

    callback_received.connect(leaky, app, weak=False)
    item = make_callback("min_balance")
    assert app.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 500
    (kept,) = get_state(app).store.kept()
    assert "CRM refused key *** (salt ***); retry with api_key=***" in kept.error
    logged = "\n".join(caplog.text.splitlines())
    assert "CRM refused key ***" in logged
    for secret in (api_key, salt, "hunter2"):
        assert secret not in kept.error and secret not in logged


def test_a_form_post_is_told_that_callbacks_are_json(client: Any) -> None:
    response = client.post(ENDPOINT, data={"callbacks": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"].endswith(
        "(the request's Content-Type is application/x-www-form-urlencoded; callbacks are JSON)"
    )


def test_the_defaults_are_written_to_app_config() -> None:
    app = make_app()
    assert app.config["VOXCALLBACKS_PATH"] == "/voximplant/callbacks"
    assert app.config["VOXCALLBACKS_STORE"] == "memory://"
    assert app.config["VOXCALLBACKS_LEASE_SECONDS"] == 300
    other = make_app(VOXCALLBACKS_ACCOUNTS={})
    assert other.config["VOXCALLBACKS_NAMESPACE"] == ""


def test_replay_all_says_how_many_young_queued_callbacks_it_skipped() -> None:
    from celery import Celery

    app = make_app(VOXCALLBACKS_QUEUE="celery")
    app.extensions["celery"] = Celery("operator", broker="memory://")
    app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "replay", "--all"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "Skipped 1 queued callback(s) younger than the lease (VOXCALLBACKS_LEASE_SECONDS=300):"
        " their jobs are most likely on the way; name one to replay it now."
    )


def test_the_worker_command_stops_at_once_when_its_broker_does_not_answer(
    redis_url: str,
) -> None:
    from servers import free_port

    app = make_app(
        VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=f"rq://127.0.0.1:{free_port()}/1"
    )
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "worker", "--burst"])
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if line]
    assert line.startswith("Error: the RQ queue's Redis server does not answer")


def test_the_worker_command_refuses_a_store_it_cannot_share_or_reach(redis_url: str) -> None:
    memory = make_app(VOXCALLBACKS_QUEUE=f"{redis_url.replace('redis', 'rq', 1)}")
    result = memory.test_cli_runner().invoke(args=["voxcallbacks", "worker", "--burst"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: VOXCALLBACKS_STORE is memory://: a worker cannot see")
    away = make_app(
        VOXCALLBACKS_STORE="redis://127.0.0.1:1/0",
        VOXCALLBACKS_QUEUE=f"{redis_url.replace('redis', 'rq', 1)}",
    )
    result = away.test_cli_runner().invoke(args=["voxcallbacks", "worker", "--burst"])
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if line]
    assert line.startswith("Error: the store redis://127.0.0.1:1/0 cannot be read")


def test_check_prints_the_sqlite_file_it_resolved_and_warns_when_another_user_owns_it(
    tmp_path: Any,
) -> None:
    import os

    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update({**BASE_CONFIG, "VOXCALLBACKS_STORE": "sqlite:///vox.db"})
    VoxCallbacks(app)
    try:
        path = os.path.realpath(tmp_path / "instance" / "vox.db")
        check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
        assert f"Store: sqlite:///vox.db (the file {path})" in check.output
        assert "belongs to another user" not in check.output
        if os.getuid() == 0:  # only root can give a file away
            os.chown(path, 12345, -1)
            check = app.test_cli_runner().invoke(args=["voxcallbacks", "check"])
            assert f"Warning: {path} belongs to another user (uid 12345" in check.output
    finally:
        app.extensions["voxcallbacks"].store.close()
