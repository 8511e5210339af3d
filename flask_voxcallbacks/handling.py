"""Claim -> dispatch -> record for the authentic callbacks of a batch, shared by the view, the
CLI and the jobs of queue mode; and claim -> keep as queued -> enqueue, for the view in queue
mode."""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping, NamedTuple

from flask import Flask

from .auth import BODY_MISMATCH, Rejection
from .callbacks import Callback, RejectedCallback, body_digest, build_callback
from .dispatch import dispatch, send
from .payloads import Payload
from .safe_text import printable
from .signals import callback_duplicate, callback_rejected
from .state import VoxState, get_state
from .store import BUSY, DONE, MISMATCH, Claim, FailedCallback
from .store import QUEUED as WAITING_FOR_JOB

logger = logging.getLogger("flask_voxcallbacks")

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
IN_PROGRESS = "in_progress"
FAILED = "failed"
REJECTED = "rejected"
#: Kept in the store and handed to the queue (queue mode).
QUEUED = "queued"
OUTCOMES = (ACCEPTED, REJECTED, DUPLICATE, IN_PROGRESS, FAILED, QUEUED)


class Arrival(NamedTuple):
    """An authentic item on its way to its handlers: its ids, its type and the item without its
    ``hash`` (what is pinned and kept).

    Its typed :class:`Callback` is built only when a receiver is to get it, and dropped once the
    receivers have returned: a callback that is busy elsewhere, refused or queued is never built,
    and a large batch does not hold every callback at once.
    """

    item: Mapping[str, Any]
    account_id: int
    callback_id: int
    type: str

    def callback(self) -> Callback[Payload]:
        return build_callback(self.item, self.callback_id, self.account_id, self.type)


def handle_batch(
    app: Flask, state: VoxState, arrivals: list[Arrival], take_queued: bool = False
) -> list[str]:
    """Claim the callbacks of a batch in one store call, run the handlers of those claimed, in
    order, and record the outcomes; return one outcome per callback.

    A callback waiting for its job (queue mode) counts as a duplicate, unless ``take_queued`` is
    set: jobs and replays set it to run such callbacks.

    The claim pins each callback id to its body: an arrival whose body differs from the first one
    is rejected (``body_mismatch``), never dispatched. A failure is recorded as soon as it happens;
    the completions are recorded together, in one store call, once every handler has returned.
    A callback that appears twice in the batch runs once: the second is a duplicate of the first
    (or failed with it). Store errors propagate: the caller answers so that the sender retries.
    """
    settings = state.settings
    store = state.store
    claims = _claim(state, arrivals, take_queued)
    outcomes: list[str] = []
    completed: list[tuple[int, int, str]] = []
    first_outcome: dict[tuple[int, int], str] = {}
    try:
        for arrival, claim in zip(arrivals, claims):
            key = (arrival.account_id, arrival.callback_id)
            outcome = _not_run(app, arrival, claim, first_outcome.get(key))
            if outcome is None:
                outcome = _run(app, state, arrival.callback(), claim.token)
                if outcome == ACCEPTED:
                    completed.append((*key, claim.token))
                first_outcome[key] = outcome
            outcomes.append(outcome)
    finally:
        # Even when recording a failure raised: what ran must not run again.
        if completed:
            store.complete_many(completed, settings.dedup_ttl)
    _log_outcomes(arrivals, outcomes)
    return outcomes


def enqueue_batch(app: Flask, state: VoxState, arrivals: list[Arrival]) -> list[str]:
    """Queue mode: claim the callbacks of a batch, keep those claimed as queued (with their
    items) and enqueue one job for each; return one outcome per callback.

    A callback already queued or handled is a duplicate. When the jobs cannot be enqueued, the
    callbacks are forgotten as queued and FAILED, so that the sender redelivers them.
    """
    settings = state.settings
    store = state.store
    assert state.queue is not None
    claims = _claim(state, arrivals, take_queued=False)
    outcomes: list[str] = []
    queued: list[tuple[int, int, str, Mapping[str, Any]]] = []
    first_outcome: dict[tuple[int, int], str] = {}
    for arrival, claim in zip(arrivals, claims):
        key = (arrival.account_id, arrival.callback_id)
        outcome = _not_run(app, arrival, claim, first_outcome.get(key))
        if outcome is None:
            outcome = first_outcome[key] = QUEUED
            queued.append((*key, claim.token, arrival.item))
        outcomes.append(outcome)
    if queued:
        store.queue_many(queued, settings.failure_retention)
        jobs = [(account_id, callback_id) for account_id, callback_id, _, _ in queued]
        try:
            state.queue.enqueue(app, jobs, settings.queue_retries)
        except Exception as error:
            logger.error(
                "could not enqueue %d callback(s) on %s (%s): answering 500 so that the sender"
                " redelivers them",
                len(jobs),
                state.queue.description,
                printable(str(error), limit=300),
            )
            store.unqueue_many(jobs)
            outcomes = [FAILED if outcome == QUEUED else outcome for outcome in outcomes]
    _log_outcomes(arrivals, outcomes)
    return outcomes


def run_job(app: Flask, account_id: int, callback_id: int) -> str:
    """The job of a queued callback: load its item from the store and handle it as inline
    handling would (claim, dispatch, record); return the outcome.

    A job that runs again after a success finds the callback done and dispatches nothing; a job
    whose callback is being run elsewhere returns IN_PROGRESS.
    """
    state = get_state(app)
    record = state.store.pending(account_id, callback_id)
    if record is None:
        logger.info(
            "job for callback %s account=%s: nothing queued (handled already, or pruned)",
            callback_id,
            account_id,
        )
        return DUPLICATE
    return handle_kept(app, state, record)


def handle_kept(app: Flask, state: VoxState, record: FailedCallback) -> str:
    """Handle a failed or queued callback from the item the store kept, as its job or a replay
    does (a queued callback is taken); return the outcome."""
    arrival = Arrival(record.item, record.account_id, record.callback_id, record.type)
    return handle_batch(app, state, [arrival], take_queued=True)[0]


def _claim(state: VoxState, arrivals: list[Arrival], take_queued: bool) -> list[Claim]:
    """Claim every callback in one store call, each pinned to the digest of its body."""
    keys = [(a.account_id, a.callback_id, body_digest(a.item)) for a in arrivals]
    settings = state.settings
    return state.store.claim_many(keys, settings.lease_seconds, settings.dedup_ttl, take_queued)


def _not_run(app: Flask, arrival: Arrival, claim: Claim, earlier: str | None) -> str | None:
    """The outcome of a callback whose claim says it must not run now, or None when it must.

    ``earlier`` is the outcome of the same callback earlier in the batch, if it came twice.
    Another body is REJECTED; a callback done, waiting for its job, or handled (or queued)
    earlier in the batch is a DUPLICATE; one claimed elsewhere is IN_PROGRESS (or shares the
    outcome of its earlier copy, FAILED).
    """
    if claim.status == MISMATCH:
        reject(app, arrival.item, Rejection(BODY_MISMATCH, arrival.account_id, arrival.callback_id))
        return REJECTED
    if claim.status in (DONE, WAITING_FOR_JOB) or earlier in (ACCEPTED, QUEUED):
        send(callback_duplicate, app, callback=arrival.callback())
        return DUPLICATE
    if claim.status == BUSY:
        return earlier or IN_PROGRESS
    return None


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


def _log_outcomes(arrivals: list[Arrival], outcomes: list[str]) -> None:
    for arrival, outcome in zip(arrivals, outcomes):
        if outcome != REJECTED:
            log_outcome(arrival.callback_id, arrival.type, arrival.account_id, outcome)


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
    QUEUED: logging.INFO,
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
