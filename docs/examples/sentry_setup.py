"""Error reports to Sentry without the callbacks' personal data."""

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.flask import FlaskIntegration


def init_sentry(dsn: str, **options: Any) -> None:
    sentry_sdk.init(
        dsn=dsn,
        integrations=[FlaskIntegration()],
        send_default_pii=False,
        # A receiver's frame holds `callback`: names, e-mails, numbers.
        include_local_variables=False,
        # Callback batches are never attached to an event.
        max_request_body_size="never",
        **options,
    )
