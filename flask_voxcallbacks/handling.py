"""Claim -> dispatch -> record for one authentic callback; shared by the view and the CLI."""

from __future__ import annotations

import logging
import time

from flask import Flask

from .callbacks import Callback
from .dispatch import dispatch, send
from .signals import callback_duplicate
from .state import VoxState
from .store import BUSY, DONE

logger = logging.getLogger("flask_voxcallbacks")

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
IN_PROGRESS = "in_progress"
FAILED = "failed"
REJECTED = "rejected"


def handle(app: Flask, state: VoxState, callback: Callback) -> str:
    """Run a callback's handlers unless it is already done or running elsewhere; return the outcome.

    Store errors propagate: the caller answers so that the sender retries.
    """
    settings = state.settings
    store = state.store
    claim = store.claim(callback.account_id, callback.callback_id, settings.lease_seconds)
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
            )
            outcome = FAILED
        else:
            store.complete(
                callback.account_id, callback.callback_id, claim.token, settings.dedup_ttl
            )
            outcome = ACCEPTED
    log_outcome(callback.callback_id, callback.type, callback.account_id, outcome)
    return outcome


def log_outcome(
    callback_id: object, type_name: object, account_id: object, outcome: str, reason: str = ""
) -> None:
    """The one log line written for every item of a batch."""
    level = logging.INFO if outcome in (ACCEPTED, DUPLICATE) else logging.WARNING
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        "callback %s type=%s account=%s %s%s",
        _clean(callback_id),
        _clean(type_name),
        _clean(account_id),
        outcome,
        f" ({reason})" if reason else "",
    )


def _clean(value: object) -> str:
    """Untrusted values shortened and stripped of control characters before they reach a log."""
    if value is None:
        return "-"
    text = str(value)[:64]
    if text.isprintable():
        return text or "-"
    return "".join(c if c.isprintable() else "?" for c in text)
