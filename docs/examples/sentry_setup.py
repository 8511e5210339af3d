"""Error reports to Sentry without the callbacks' personal data."""

import logging
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.flask import FlaskIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

# No user data, and no local variables in tracebacks: a receiver's
# frame holds `callback` (names, e-mails, numbers). sentry-sdk 3
# groups these choices under data_collection.
PRIVACY: dict[str, Any]
if sentry_sdk.VERSION.startswith("2."):
    PRIVACY = {
        "send_default_pii": False,
        "include_local_variables": False,
    }
else:
    PRIVACY = {
        "data_collection": {
            "user_info": False,
            "stack_frame_variables": False,
            "http_bodies": [],
        }
    }


def init_sentry(dsn: str, **options: Any) -> None:
    sentry_sdk.init(
        dsn=dsn,
        integrations=[
            FlaskIntegration(),
            # A failing receiver is logged at ERROR with its traceback:
            # one event each (sentry-sdk 3 makes none from log lines
            # unless asked).
            LoggingIntegration(event_level=logging.ERROR),
        ],
        # Callback batches are never attached to an event.
        max_request_body_size="never",
        **PRIVACY,
        **options,
    )
