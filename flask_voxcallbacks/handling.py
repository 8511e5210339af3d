"""Claim -> dispatch -> record for the authentic callbacks of a batch; shared by the view and
the CLI."""

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
OUTCOMES = (ACCEPTED, REJECTED, DUPLICATE, IN_PROGRESS, FAILED)


def handle(app: Flask, state: VoxState, callback: Callback[Payload]) -> str:
    """Handle one callback (``replay`` uses it); see :func:`handle_batch`."""
    return handle_batch(app, state, [callback])[0]


def handle_batch(app: Flask, state: VoxState, callbacks: list[Callback[Payload]]) -> list[str]:
    """Claim the callbacks of a batch in one store call, run the handlers of those claimed, in
    order, and record the outcomes; return one outcome per callback.

    The claim pins each callback id to its body: an arrival whose body differs from the first one
    is rejected (``body_mismatch``), never dispatched. A failure is recorded as soon as it happens;
    the completions are recorded together, in one store call, once every handler has returned.
    A callback that appears twice in the batch runs once: the second is a duplicate of the first
    (or failed with it). Store errors propagate: the caller answers so that the sender retries.
    """
    settings = state.settings
    store = state.store
    keys = [(c.account_id, c.callback_id, body_digest(c.raw)) for c in callbacks]
    claims = store.claim_many(keys, settings.lease_seconds, settings.dedup_ttl)
    outcomes: list[str] = []
    completed: list[tuple[int, int, str]] = []
    first_outcome: dict[tuple[int, int], str] = {}
    try:
        for callback, claim in zip(callbacks, claims):
            key = (callback.account_id, callback.callback_id)
            if claim.status == MISMATCH:
                reject(app, callback.raw, Rejection(BODY_MISMATCH, *key))
                outcomes.append(REJECTED)
                continue
            if claim.status == DONE or first_outcome.get(key) == ACCEPTED:
                outcome = DUPLICATE
                send(callback_duplicate, app, callback=callback)
            elif claim.status == BUSY:
                outcome = first_outcome.get(key, IN_PROGRESS)
            else:
                outcome = _run(app, state, callback, claim.token)
                if outcome == ACCEPTED:
                    completed.append((*key, claim.token))
                first_outcome[key] = outcome
            outcomes.append(outcome)
    finally:
        # Even when recording a failure raised: what ran must not run again.
        if completed:
            store.complete_many(completed, settings.dedup_ttl)
    for callback, outcome in zip(callbacks, outcomes):
        if outcome != REJECTED:
            log_outcome(callback.callback_id, callback.type, callback.account_id, outcome)
    return outcomes


def _run(app: Flask, state: VoxState, callback: Callback[Payload], token: str) -> str:
    """Dispatch a claimed callback; record a failure at once. ACCEPTED or FAILED."""
    settings = state.settings
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
    if not errors:
        return ACCEPTED
    state.store.fail(
        callback.account_id,
        callback.callback_id,
        token,
        "\n".join(errors),
        callback.raw,
        settings.failure_retention,
    )
    return FAILED


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
