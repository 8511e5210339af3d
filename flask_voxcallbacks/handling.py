"""Claim -> dispatch -> record for one authentic callback; shared by the view and the CLI."""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from flask import Flask

from .auth import BODY_MISMATCH, Rejection
from .callbacks import Callback, RejectedCallback, body_digest
from .dispatch import dispatch, send
from .payloads import Payload
from .safe_text import printable
from .signals import callback_duplicate, callback_rejected
from .state import VoxState
from .store import BUSY, DONE, MISMATCH

logger = logging.getLogger("flask_voxcallbacks")

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
IN_PROGRESS = "in_progress"
FAILED = "failed"
REJECTED = "rejected"


def handle(app: Flask, state: VoxState, callback: Callback[Payload]) -> str:
    """Run a callback's handlers unless it is already done or running elsewhere; return the outcome.

    The claim pins the callback id to the body: an arrival whose body differs from the first one
    is rejected (``body_mismatch``), never dispatched. Store errors propagate: the caller answers
    so that the sender retries.
    """
    settings = state.settings
    store = state.store
    claim = store.claim(
        callback.account_id,
        callback.callback_id,
        body_digest(callback.raw),
        settings.lease_seconds,
        settings.dedup_ttl,
    )
    if claim.status == MISMATCH:
        reject(
            app, callback.raw, Rejection(BODY_MISMATCH, callback.account_id, callback.callback_id)
        )
        return REJECTED
    if claim.status == DONE:
        outcome = DUPLICATE
        send(callback_duplicate, app, callback=callback)
    elif claim.status == BUSY:
        outcome = IN_PROGRESS
    else:
        started = time.monotonic()
        errors = dispatch(app, callback)
        elapsed = time.monotonic() - started
        if elapsed > settings.lease_seconds:
            logger.warning(
                "handlers of callback %s took %.0f s, longer than VOXCALLBACKS_LEASE_SECONDS=%d:"
                " another worker may have run it too; raise the lease",
                callback.callback_id,
                elapsed,
                settings.lease_seconds,
            )
        if errors:
            store.fail(
                callback.account_id,
                callback.callback_id,
                claim.token,
                "\n".join(errors),
                callback.raw,
                settings.failure_retention,
            )
            outcome = FAILED
        else:
            store.complete(
                callback.account_id, callback.callback_id, claim.token, settings.dedup_ttl
            )
            outcome = ACCEPTED
    log_outcome(callback.callback_id, callback.type, callback.account_id, outcome)
    return outcome


def reject(app: Flask, item: Mapping[str, Any], rejection: Rejection) -> None:
    """Send ``callback_rejected`` for an item refused with ``rejection``."""
    rejected = RejectedCallback.from_item(
        item, rejection.reason, rejection.account_id, rejection.callback_id
    )
    log_outcome(
        rejected.callback_id, rejected.type, rejected.account_id, REJECTED, rejection.reason
    )
    send(callback_rejected, app, callback=rejected, reason=rejection.reason)


#: Log level of the line for each outcome. Rejections are summed up once per batch by the view,
#: so that a flood of forged items cannot flood the log.
_LEVELS = {
    ACCEPTED: logging.INFO,
    DUPLICATE: logging.INFO,
    REJECTED: logging.DEBUG,
    IN_PROGRESS: logging.WARNING,
    FAILED: logging.WARNING,
}


def log_outcome(
    callback_id: object, type_name: object, account_id: object, outcome: str, reason: str = ""
) -> None:
    """The one log line written for every item of a batch."""
    level = _LEVELS[outcome]
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        "callback %s type=%s account=%s %s%s",
        printable(callback_id),
        printable(type_name),
        printable(account_id),
        outcome,
        f" ({reason})" if reason else "",
    )
