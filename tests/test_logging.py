"""One log line per callback; no secret in any log line or response."""

from __future__ import annotations

import logging

from helpers import CHILD_API_KEY, CHILD_SALT, ENDPOINT
from servers import ROOT

from flask_voxcallbacks import callback_received
from flask_voxcallbacks.testing import DEFAULT_API_KEY, DEFAULT_SALT, make_batch, make_callback


def test_one_line_per_callback_and_one_summary_of_the_rejections(app, client, vox_log) -> None:
    good = make_callback("min_balance")
    bad = make_callback("sms_inbound", salt="wrong")
    with callback_received.connected_to(lambda sender, callback: None, app):
        client.post(ENDPOINT, json=make_batch(good, bad, {"callback_id": 5}))
    lines = [
        (r.levelname, r.getMessage()) for r in vox_log.records if r.name == "flask_voxcallbacks"
    ]
    # Every item is authenticated before the authentic ones are handled.
    assert lines == [
        (
            "DEBUG",
            f"callback {bad['callback_id']} type=sms_inbound account=1234567"
            " rejected (hash_mismatch)",
        ),
        ("DEBUG", "callback - type=- account=- rejected (invalid_account_id)"),
        ("INFO", f"callback {good['callback_id']} type=min_balance account=1234567 accepted"),
        (
            "WARNING",
            "batch of 3: 2 rejected (hash_mismatch=1 from account 1234567, invalid_account_id=1);"
            " if they come from Voximplant, the salt or api key configured for account 1234567"
            " differ from its own: compare VOXCALLBACKS_SALT (or the account's"
            " VOXCALLBACKS_ACCOUNTS entry) with the salt on Voximplant's Webhooks page, or check"
            " a captured item with `flask voxcallbacks verify`",
        ),
    ]


def test_control_characters_from_the_wire_do_not_forge_log_lines(client, vox_log) -> None:
    item = make_callback("min_balance", salt="wrong")
    item["type"] = "x\ncallback 1 type=min_balance account=1 accepted"
    client.post(ENDPOINT, json=make_batch(item))
    assert all("\n" not in r.getMessage() for r in vox_log.records)


def test_secrets_never_logged_nor_returned(app, client, vox_log) -> None:
    def broken(sender, callback, **extra):
        raise RuntimeError("handler failed")

    items = [
        make_callback("min_balance"),
        make_callback("sms_inbound", salt="wrong"),
        make_callback("js_fail", api_key="wrong"),
        make_callback("min_balance", account_id=42),
    ]
    bodies = []
    with callback_received.connected_to(broken, sender=app):
        for payload in (make_batch(*items), make_batch(items[1]), {"callbacks": 1}):
            bodies.append(client.post(ENDPOINT, json=payload).get_data(as_text=True))
    bodies.append(client.post(ENDPOINT, data=b"{").get_data(as_text=True))
    everything = (
        vox_log.text
        + "".join(logging.Formatter().format(r) for r in vox_log.records)
        + "".join(bodies)
    )
    secrets = [DEFAULT_API_KEY, DEFAULT_SALT, CHILD_API_KEY, CHILD_SALT]
    secrets += [item["hash"] for item in items]
    for secret in secrets:
        assert secret not in everything


def test_values_from_the_wire_are_cut_and_stripped_of_control_characters(
    app, client, vox_log
) -> None:
    item = make_callback("min_balance")
    item["type"] = "a\rb\x1b[31mc\td\x00e\u2028f" + "x" * 100
    with callback_received.connected_to(lambda sender, callback: None, app):
        client.post(ENDPOINT, json=make_batch(item))
    (line,) = [r.getMessage() for r in vox_log.records if r.levelname == "INFO"]
    shown = line.split("type=")[1].split(" account=")[0]
    assert shown == ("a?b?[31mc?d?e?f" + "x" * 100)[:64]
    assert len(shown) == 64


def test_the_logging_recipe_shows_info_lines_on_flasks_handler(app, client, capsys) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "docs" / "examples"))
    try:
        from logging_setup import show_callback_log_lines
    finally:
        sys.path.pop(0)
    from flask.logging import default_handler

    logger = show_callback_log_lines()
    try:
        item = make_callback("min_balance")
        with callback_received.connected_to(lambda sender, callback: None, app):
            client.post(ENDPOINT, json=make_batch(item))
    finally:
        logger.removeHandler(default_handler)
        logger.setLevel(logging.NOTSET)
    err = capsys.readouterr().err
    assert f"callback {item['callback_id']} type=min_balance account=1234567 accepted" in err


def test_handlers_slower_than_the_lease_are_reported(vox_log, monkeypatch) -> None:
    import re

    from helpers import make_app

    from flask_voxcallbacks import handling

    now = [1000.0]
    monkeypatch.setattr(handling, "clock", lambda: now[0])

    def slow(sender, callback):
        now[0] += 1.6  # the handler takes 1.6 s of the fake clock

    app = make_app(VOXCALLBACKS_LEASE_SECONDS=1)
    item = make_callback("min_balance")
    with callback_received.connected_to(slow, app):
        answer = app.test_client().post(ENDPOINT, json=make_batch(item)).get_json()
    assert answer["accepted"] == 1
    (warning,) = [r.getMessage() for r in vox_log.records if r.levelname == "WARNING"]
    assert re.fullmatch(
        rf"handlers of callback {item['callback_id']} took \d s, longer than"
        " VOXCALLBACKS_LEASE_SECONDS=1: another worker may have run it too; raise the lease",
        warning,
    ), warning
