"""The documented Sentry set-up (docs/examples/sentry_setup.py) keeps the callbacks' personal
data and the credentials out of the error reports a failing receiver causes, with the real
sentry_sdk and a transport that keeps the events in memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from servers import ROOT

pytestmark = pytest.mark.subprocess

SCRIPT = """
import json, os, sys
sys.path.insert(0, {examples!r})
import sentry_sdk
from sentry_sdk.transport import Transport
from flask import Flask
from flask_voxcallbacks import VoxCallbacks, sms_received
from flask_voxcallbacks.testing import make_batch, make_callback

sent = []

class Keep(Transport):
    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.payload.json is not None:
                sent.append(item.payload.json)

if {recipe}:
    from sentry_setup import init_sentry
    init_sentry("https://key@sentry.invalid/1", transport=Keep)
else:
    import logging
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    sentry_sdk.init("https://key@sentry.invalid/1", transport=Keep,
                    integrations=[FlaskIntegration(),
                                  LoggingIntegration(event_level=logging.ERROR)],
                    max_request_body_size="always")

app = Flask("host")
app.config.update(VOXCALLBACKS_ACCOUNT_ID=1234567, TESTING=True,
                  VOXCALLBACKS_API_KEY=json.loads(os.environ["VOX_PRIVATE"])["key"],
                  VOXCALLBACKS_SALT=json.loads(os.environ["VOX_PRIVATE"])["salt"])
VoxCallbacks(app)

@sms_received.connect_via(app)
def forward(sender, callback, **extra):
    text = callback.payload.sms_body
    raise ConnectionError("the CRM refused the message")

# From the environment: an error report may quote this script's source lines.
private = json.loads(os.environ["VOX_PRIVATE"])
item = make_callback("sms_inbound", sms_body=private["sms"], account_email=private["email"],
                     salt=private["salt"], api_key=private["key"])
response = app.test_client().post("/voximplant/callbacks", json=make_batch(item))
assert response.status_code == 500
sentry_sdk.flush()
print(json.dumps(sent))
"""

PRIVATE = {
    "sms": "Meet me at 7, Alice",
    "email": "ada@private.example",
    "salt": "s3cret-salt",
    "key": "4f0b4a8e-5b4d-4c1a-9a3e-1c2d3e4f5a6b",
}


def reported(recipe: bool) -> str:
    code = SCRIPT.format(examples=str(ROOT / "docs" / "examples"), recipe=recipe)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "VOX_PRIVATE": json.dumps(PRIVATE)},
    )
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout.strip().splitlines()[-1])
    assert events, "the receiver's failure was reported"
    assert "the CRM refused the message" in json.dumps(events)
    return json.dumps(events)


def test_the_documented_setup_reports_the_failure_without_personal_data() -> None:
    sent = reported(recipe=True)
    for private in PRIVATE.values():
        assert private not in sent


def test_without_it_the_report_would_carry_them() -> None:
    sent = reported(recipe=False)
    assert "Meet me at 7, Alice" in sent
