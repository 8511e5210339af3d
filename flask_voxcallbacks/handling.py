"""Claim -> dispatch -> record for the authentic callbacks of a batch, shared by the view, the
CLI and the jobs of queue mode; and claim -> keep as queued -> enqueue, for the view in queue
mode."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping, Sequence

from blinker import NamedSignal
from flask import Flask

from .auth import BODY_MISMATCH, HASH_MISMATCH, Rejection, authenticate, id_text
from .callbacks import Callback, RejectedCallback, build_callback
from .dispatch import Dispatched, dispatch, send
from .pinning import canonical_body, digest
from .queue.base import JobRefused
from .registry import Payload
from .safe_text import printable
from .signals import (
    callback_completed,
    callback_duplicate,
    callback_failed,
    callback_in_progress,
    callback_queued,
    callback_rejected,
    job_started,
)
from .state import CallbackSpan, VoxState, get_state
from .store.base import Claim, ClaimStatus, KeptCallback, Name, ToComplete, ToQueue

logger = logging.getLogger("flask_voxcallbacks")

#: The clock that times handlers (the lease warning) and the completions' records; tests give
#: a fake one.
clock = time.monotonic


class Outcome(Name):
    """What became of one item of a batch (the keys of the response's summary)."""

    #: Its receivers ran, each successfully.
    ACCEPTED = "accepted"
    #: Handled (or queued) before, or earlier in the batch: not run again.
    DUPLICATE = "duplicate"
    #: Another worker holds its claim: the answer asks the sender to retry later.
    IN_PROGRESS = "in_progress"
    #: A receiver raised (or it could not be built, or its claim failed): kept for a replay.
    FAILED = "failed"
    #: Not authentic, or another body for a pinned id.
    REJECTED = "rejected"
    #: Kept and handed to the queue (queue mode).
    QUEUED = "queued"


ACCEPTED = Outcome.ACCEPTED
DUPLICATE = Outcome.DUPLICATE
IN_PROGRESS = Outcome.IN_PROGRESS
FAILED = Outcome.FAILED
REJECTED = Outcome.REJECTED
QUEUED = Outcome.QUEUED


class Arrival:
    """An authentic item on its way to its handlers: its ids, its type, the item without its
    ``hash`` and the item's canonical JSON (what is pinned, and what a failure record keeps).

    Its typed :class:`Callback` is built only when a receiver is to get it, and dropped once the
    receivers have returned: a callback that is busy elsewhere, refused or queued is never built,
    and a large batch does not hold every callback at once.
    """

    __slots__ = ("account_id", "body", "callback_id", "item", "link", "type")

    def __init__(
        self,
        item: Mapping[str, Any],
        account_id: int,
        callback_id: int,
        type_name: str,
        link: str = "",
    ) -> None:
        self.item = item
        self.account_id = account_id
        self.callback_id = callback_id
        self.type = type_name
        #: The trace context of the request that queued it (a job's), or "".
        self.link = link
        #: Taken before any receiver runs, so that nothing a receiver does can reach the store.
        self.body = canonical_body(item)

    def callback(self) -> Callback[Payload]:
        return build_callback(self.item, self.callback_id, self.account_id, self.type)

    def kept(self) -> dict[str, Any]:
        """The item as it arrived (without ``hash``), for a failure record."""
        kept: dict[str, Any] = json.loads(self.body)
        return kept


#: Every outcome, in order: iterating the enum itself cost a one-callback request 1% of its
#: instructions (12k of 1,200k: benchmarks/instructions.py --batch 1).
_OUTCOMES = tuple(Outcome)


#: Completions are recorded as the batch goes, whenever this many seconds have passed since the
#: last record (and always at the end): a worker killed mid-batch runs again only the callbacks
#: handled in the last few milliseconds. 5 ms, chosen with `make chaos` and `make bench`: with
#: receivers of 5 ms, each completion is recorded as soon as its receivers return (0 callbacks
#: handled twice per kill, against 0.4 at 10 ms and 3 when a batch was recorded once, at its
#: end), while receivers that take microseconds still share one store call per 5 ms of a batch
#: (the cost of a batch of 1,000 does not measurably change).
RECORD_EVERY = 0.005


#: Items authenticated, built and handled together. A chunk's callbacks are freed before the next
#: chunk is built, so that a large batch neither holds every callback at once nor wakes the
#: garbage collector over them again and again; the default VOXCALLBACKS_MAX_ITEMS fits in one.
CHUNK_ITEMS = 1000


def handle_items(app: Flask, state: VoxState, items: list[dict[str, Any]]) -> dict[str, int]:
    """The items of a request: authenticate each on its own, handle (or enqueue) the authentic
    ones together, chunk by chunk, log one summary line, and count the outcomes.

    The items are the request's own: their ``hash`` is removed, so that nothing kept or shown
    holds it.
    """
    counts: dict[str, int] = dict.fromkeys(_OUTCOMES, 0)
    reasons: dict[str, int] = {}
    #: The account ids the rejected items named, by reason (as sent: they are not trusted).
    accounts: dict[str, list[object]] = {}
    unfinished: dict[str, list[int]] = {FAILED: [], IN_PROGRESS: []}
    for start in range(0, len(items), CHUNK_ITEMS):
        chunk = items[start : start + CHUNK_ITEMS]
        _handle_chunk(app, state, chunk, counts, reasons, unfinished, accounts)
    _log_batch(len(items), counts, reasons, unfinished, accounts, state.settings.accounts)
    return counts


def _handle_chunk(
    app: Flask,
    state: VoxState,
    items: list[dict[str, Any]],
    counts: dict[str, int],
    reasons: dict[str, int],
    unfinished: dict[str, list[int]],
    rejected_from: dict[str, list[object]],
) -> None:
    arrivals = []
    accounts = state.settings.accounts
    for item in items:
        verdict = authenticate(item, accounts)
        if isinstance(verdict, Rejection):
            reject(app, item, verdict)
            counts[REJECTED] += 1
            reasons[verdict.reason] = reasons.get(verdict.reason, 0) + 1
            rejected_from.setdefault(verdict.reason, []).append(item.get("account_id"))
            continue
        type_name = item.get("type")
        item.pop("hash", None)
        arrivals.append(
            Arrival(
                item,
                verdict.account_id,
                verdict.callback_id,
                type_name if isinstance(type_name, str) else "",
            )
        )
    if not arrivals:
        return
    try:
        if state.queue is None:
            outcomes = handle_batch(app, state, arrivals)
        else:
            outcomes = enqueue_batch(app, state, arrivals)
    except Exception:
        # The store could not claim them: nothing ran, and the sender redelivers them.
        logger.exception("store error while handling a batch of %d callbacks", len(arrivals))
        outcomes = [FAILED] * len(arrivals)
    for arrival, outcome in zip(arrivals, outcomes):
        counts[outcome] += 1
        if outcome in unfinished:
            unfinished[outcome].append(arrival.callback_id)
        elif outcome == REJECTED:
            # The only rejection after authentication: the id is pinned to another body.
            reasons[BODY_MISMATCH] = reasons.get(BODY_MISMATCH, 0) + 1


def _log_batch(
    total: int,
    counts: dict[str, int],
    reasons: dict[str, int],
    unfinished: dict[str, list[int]],
    accounts: dict[str, list[object]],
    configured: Mapping[int, object],
) -> None:
    """One line for a batch with anything but accepted or queued callbacks: a WARNING when some
    were rejected, failed or are in progress elsewhere, else (duplicates only) INFO. Rejections
    name the accounts their items named; a hash that does not match on a configured account
    says what to check."""
    parts = []
    for outcome in (FAILED, IN_PROGRESS):
        if counts[outcome]:
            ids = unfinished[outcome]
            parts.append(f"{counts[outcome]} {outcome.replace('_', ' ')} (callback {_ids(ids)})")
    if counts[REJECTED]:
        details = []
        for reason, n in sorted(reasons.items()):
            named = [a for a in accounts.get(reason, ()) if a is not None]
            details.append(f"{reason}={n}" + (f" from account {_ids(named)}" if named else ""))
        parts.append(f"{counts[REJECTED]} rejected ({', '.join(details)})")
    if counts[DUPLICATE]:
        parts.append(f"{counts[DUPLICATE]} duplicate(s)")
    if not parts:
        return
    level = logging.INFO if parts and len(parts) == 1 and counts[DUPLICATE] else logging.WARNING
    hint = ""
    mismatched = [a for a in accounts.get(HASH_MISMATCH, ()) if id_value(a) in configured]
    if mismatched:
        hint = (
            f"; if they come from Voximplant, the salt or api key configured for account"
            f" {_ids(mismatched)} differ from its own: compare VOXCALLBACKS_SALT (or the account's"
            " VOXCALLBACKS_ACCOUNTS entry) with the salt on Voximplant's Webhooks page, or check"
            " a captured item with `flask voxcallbacks verify`"
        )
    logger.log(level, "batch of %d: %s%s", total, ", ".join(parts), hint)


def id_value(value: object) -> int | None:
    """An account id as sent, as a number, or None when it is not one."""
    text = id_text(value)
    return int(text) if text is not None else None


def _ids(values: Sequence[object], limit: int = 5) -> str:
    """The first few distinct values of a list, fit to log (they may come from a forger)."""
    distinct = list(dict.fromkeys(printable(value, limit=40) for value in values))
    shown = ", ".join(distinct[:limit])
    more = len(distinct) - limit
    return f"{shown} and {more} more" if more > 0 else shown


def handle_batch(
    app: Flask, state: VoxState, arrivals: list[Arrival], take_queued: bool = False
) -> list[str]:
    """Claim the callbacks of a batch in one store call, run the handlers of those claimed, in
    order, and record the outcomes; return one outcome per callback.

    A callback waiting for its job (queue mode) counts as a duplicate, unless ``take_queued`` is
    set: jobs and replays set it to run such callbacks.

    The claim pins each callback id to its body: an arrival whose body differs from the first one
    is rejected (``body_mismatch``), never dispatched. Whatever one callback does (its conversion,
    a receiver, recording its failure) touches only that callback: it is FAILED and kept for a
    replay, and the others run as usual. A failure is recorded as soon as it happens; completions
    are recorded every RECORD_EVERY seconds and at the end. A callback that appears twice in the
    batch runs once: the second is a duplicate of the first (or failed with it). An error of the
    claim propagates: nothing ran, and the caller answers so that the sender retries.
    """
    first_outcome: dict[tuple[int, int], str] = {}
    if state.store.transactional:
        # Each callback in a transaction of its own: its claim, its receivers' writes and its
        # done marker commit together (see _run_traced).
        outcomes = [
            _handle_claimed(app, state, [arrival], take_queued, first_outcome)[0]
            for arrival in arrivals
        ]
    else:
        outcomes = _handle_claimed(app, state, arrivals, take_queued, first_outcome)
    _log_outcomes(arrivals, outcomes)
    return outcomes


def _handle_claimed(
    app: Flask,
    state: VoxState,
    arrivals: list[Arrival],
    take_queued: bool,
    first_outcome: dict[tuple[int, int], str],
) -> list[str]:
    """Claim ``arrivals`` in one store call, run those claimed and record the outcomes
    (``first_outcome`` holds the outcome of each callback already met in the batch)."""
    claims = _claim(state, arrivals, take_queued)
    outcomes: list[str] = []
    completions = _Completions(state)
    try:
        for arrival, claim in zip(arrivals, claims):
            key = (arrival.account_id, arrival.callback_id)
            outcome = _not_run(app, arrival, claim, first_outcome.get(key))
            if outcome is None:
                outcome = _run(app, state, arrival, claim)
                if outcome == ACCEPTED and not state.store.transactional:
                    completions.add(key, claim.token)
                first_outcome[key] = outcome
            outcomes.append(outcome)
    finally:
        # Even when something above raised: what ran must not run again.
        completions.record()
    return outcomes


class _Completions:
    """The completions of a batch, recorded every RECORD_EVERY seconds and at the end."""

    def __init__(self, state: VoxState) -> None:
        self.store = state.store
        self.ttl = state.settings.dedup_ttl
        self.pending: list[ToComplete] = []
        self.since = clock()

    def add(self, key: tuple[int, int], token: str) -> None:
        self.pending.append((*key, token))
        if clock() - self.since >= RECORD_EVERY:
            self.record()

    def record(self) -> None:
        self.since = clock()
        if not self.pending:
            return
        done, self.pending = self.pending, []
        try:
            self.store.complete_many(done, self.ttl)
        except Exception:
            # The handlers ran: answering so that the sender redelivers would run them again.
            logger.exception(
                "store error while recording %d handled callback(s) as done; they are answered"
                " as accepted, and stay claimed until their lease ends",
                len(done),
            )


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
    queued: list[ToQueue] = []
    first_outcome: dict[tuple[int, int], str] = {}
    for arrival, claim in zip(arrivals, claims):
        key = (arrival.account_id, arrival.callback_id)
        outcome = _not_run(app, arrival, claim, first_outcome.get(key))
        if outcome is None:
            outcome = first_outcome[key] = QUEUED
            # No receiver has run: the request's item is still as it arrived.
            queued.append((*key, claim.token, arrival.item))
        outcomes.append(outcome)
    if queued:
        trace = state.tracing.context() if state.tracing is not None else ""
        store.queue_many(queued, settings.failure_retention, trace)
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
        else:
            if callback_queued.receivers:
                for arrival, outcome in zip(arrivals, outcomes):
                    if outcome == QUEUED:
                        _tell(callback_queued, app, arrival)
    _log_outcomes(arrivals, outcomes)
    return outcomes


def run_job(
    app: Flask,
    account_id: int,
    callback_id: int,
    namespace: str = "",
    store: str = "",
    trace: str = "",
) -> str:
    """The job of a queued callback: load its item from the store and handle it as inline
    handling would (claim, dispatch, record); return the outcome.

    A job that runs again after a success finds the callback done and dispatches nothing; a job
    whose callback is being run elsewhere returns IN_PROGRESS. A job of another application
    (another ``namespace``, an account this one is not configured for, or another ``store``: the
    identity of the store of the application that queued it) raises
    :class:`~flask_voxcallbacks.queue.JobRefused`: it is neither run nor dropped. ``trace`` is
    the trace context of the request that queued it, which the callback's span links to.
    """
    state = get_state(app)
    settings = state.settings
    where = f"the job of callback {callback_id} (account {account_id})"
    if namespace != settings.namespace:
        raise JobRefused(
            f"{where} belongs to the namespace {namespace!r}, and this worker's application has"
            f" VOXCALLBACKS_NAMESPACE = {settings.namespace!r}: give each application its own"
            " queue"
        )
    if account_id not in settings.accounts:
        raise JobRefused(
            f"{where} belongs to an account this worker's application is not configured for:"
            " give each application its own queue (VOXCALLBACKS_NAMESPACE)"
        )
    if store and store != state.store.identity:
        raise JobRefused(
            f"{where} was queued by an application whose store is {store}, and this worker's"
            f" store is {state.store.identity}: start the worker with the web application's"
            " VOXCALLBACKS_STORE"
        )
    record = state.store.find_kept(account_id, callback_id)
    if record is None:
        if state.store.knows(account_id, callback_id):
            logger.info("job for callback %s account=%s: handled already", callback_id, account_id)
            return DUPLICATE
        logger.warning(
            "job for callback %s account=%s: the store has no record of it, so nothing runs;"
            " it was pruned or expired (VOXCALLBACKS_FAILURE_RETENTION), the store was emptied,"
            " or this worker does not use the web application's VOXCALLBACKS_STORE",
            callback_id,
            account_id,
        )
        return DUPLICATE
    return handle_kept(app, state, record, link=trace)


def handle_kept(
    app: Flask, state: VoxState, record: KeptCallback, replay: bool = False, link: str = ""
) -> str:
    """Handle a failed or queued callback from the item the store kept, as its job or a replay
    (``replay``) does (a queued callback is taken); return the outcome. Its span links to the
    trace context ``link`` (a job's), else to the one kept with it."""
    arrival = Arrival(
        record.item, record.account_id, record.callback_id, record.type, link or record.trace
    )
    _tell(job_started, app, arrival, replay=replay, kept_at=record.kept_at)
    outcome = handle_batch(app, state, [arrival], take_queued=True)[0]
    if outcome in (FAILED, IN_PROGRESS):
        log_outcome(arrival.callback_id, arrival.type, arrival.account_id, outcome, level=WARNING)
    return outcome


def kept_callbacks(state: VoxState) -> tuple[list[KeptCallback], int]:
    """The failed and queued callbacks of the accounts this application is configured for,
    oldest first, and how many others the store keeps (another application's, sharing it)."""
    records = state.store.kept()
    accounts = state.settings.accounts
    mine = [record for record in records if record.account_id in accounts]
    others = len(records) - len(mine)
    if others:
        logger.warning(
            "%d failed or queued callback(s) of accounts this application is not configured for"
            " are left untouched: another application shares this store; give each its own"
            " VOXCALLBACKS_NAMESPACE",
            others,
        )
    return mine, others


def _claim(state: VoxState, arrivals: list[Arrival], take_queued: bool) -> list[Claim]:
    """Claim every callback in one store call, each pinned to the digest of its body."""
    keys = [(a.account_id, a.callback_id, digest(a.body)) for a in arrivals]
    settings = state.settings
    return state.store.claim_many(keys, settings.lease_seconds, settings.dedup_ttl, take_queued)


def _not_run(app: Flask, arrival: Arrival, claim: Claim, earlier: str | None) -> str | None:
    """The outcome of a callback whose claim says it must not run now, or None when it must.

    ``earlier`` is the outcome of the same callback earlier in the batch, if it came twice.
    Another body is REJECTED; a callback done, waiting for its job, or handled (or queued)
    earlier in the batch is a DUPLICATE; one claimed elsewhere is IN_PROGRESS (or shares the
    outcome of its earlier copy, FAILED).
    """
    if claim.status is ClaimStatus.MISMATCH:
        reject(app, arrival.item, Rejection(BODY_MISMATCH, arrival.account_id, arrival.callback_id))
        return REJECTED
    if claim.status in (ClaimStatus.DONE, ClaimStatus.QUEUED) or earlier in (ACCEPTED, QUEUED):
        callback = _build(arrival)
        if callback is not None:
            send(callback_duplicate, app, callback=callback)
        return DUPLICATE
    if claim.status is ClaimStatus.BUSY:
        if earlier:
            return earlier
        _tell(callback_in_progress, app, arrival)
        return IN_PROGRESS
    return None


def _build(arrival: Arrival) -> Callback[Payload] | None:
    """The typed callback, or None (logged) when it cannot be built."""
    try:
        return arrival.callback()
    except Exception as error:
        logger.error(
            "callback %s type=%s account=%s cannot be built (%s); it is kept as failed",
            arrival.callback_id,
            printable(arrival.type),
            arrival.account_id,
            printable(f"{type(error).__name__}: {error}", limit=300),
        )
        return None


def _run(app: Flask, state: VoxState, arrival: Arrival, claim: Claim) -> str:
    """Build a claimed callback and dispatch it to the receivers that have not yet succeeded
    for it (in its span, when tracing); record a failure at once. ACCEPTED or FAILED."""
    if state.tracing is None:
        return _run_traced(app, state, arrival, claim, _NO_SPAN)
    with state.tracing.span(
        arrival.account_id, arrival.callback_id, arrival.type, arrival.link
    ) as span:
        return _run_traced(app, state, arrival, claim, span)


class _NoSpan:
    def failed(self, reason: str) -> None:
        pass


_NO_SPAN = _NoSpan()


def _run_traced(
    app: Flask, state: VoxState, arrival: Arrival, claim: Claim, span: CallbackSpan
) -> str:
    settings = state.settings
    started = clock()
    callback = _build(arrival)
    if callback is None:
        result = Dispatched(["the callback could not be built: see the log"], claim.succeeded)
    else:
        result = dispatch(app, callback, claim.succeeded)
    elapsed = clock() - started
    if elapsed > settings.lease_seconds:
        logger.warning(
            "handlers of callback %s took %.0f s, longer than VOXCALLBACKS_LEASE_SECONDS=%d:"
            " another worker may have run it too; raise the lease",
            arrival.callback_id,
            elapsed,
            settings.lease_seconds,
        )
    if not result.errors and state.store.transactional:
        result = _commit(state, arrival, claim, result)
    if not result.errors:
        if callback_completed.receivers:
            send(callback_completed, app, callback=callback, duration=elapsed)
        return ACCEPTED
    span.failed(result.errors[0])
    try:
        state.store.fail(
            arrival.account_id,
            arrival.callback_id,
            claim.token,
            "\n".join(result.errors),
            arrival.kept(),
            settings.failure_retention,
            result.succeeded,
        )
    except Exception:
        # Not recorded: the claim holds until its lease ends, then a redelivery runs it again.
        logger.exception(
            "store error while recording the failure of callback %s", arrival.callback_id
        )
    _tell(callback_failed, app, arrival, errors=tuple(result.errors), duration=elapsed)
    return FAILED


def _commit(state: VoxState, arrival: Arrival, claim: Claim, result: Dispatched) -> Dispatched:
    """Commit the transaction of a callback whose receivers succeeded, with its done marker; a
    commit that fails (a receiver's write the database refuses, a lost connection) fails the
    callback: nothing of it was written."""
    try:
        state.store.complete(
            arrival.account_id, arrival.callback_id, claim.token, state.settings.dedup_ttl
        )
    except Exception as error:
        reason = printable(f"{type(error).__name__}: {error}", limit=300)
        return Dispatched([f"the transaction of its receivers could not commit: {reason}"], ())
    return result


def _tell(signal: NamedSignal, app: Flask, arrival: Arrival, **extra: Any) -> None:
    """Send a lifecycle signal about ``arrival``, when it has receivers."""
    if signal.receivers:
        send(
            signal,
            app,
            account_id=arrival.account_id,
            callback_id=arrival.callback_id,
            type=arrival.type,
            **extra,
        )


def _log_outcomes(arrivals: list[Arrival], outcomes: list[str]) -> None:
    """One line per callback: accepted and queued ones at INFO, the others at DEBUG (the view
    sums them up, with the rejections, in one line per batch)."""
    if not logger.isEnabledFor(_HIGHEST_LEVEL):
        return  # none would be written: 0.8% of the instructions per callback at batch 1,000
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


#: Log level of the line for each outcome. Rejections, duplicates, callbacks in progress and
#: failures are summed up once per batch by the view, so that a flood of forged items or of
#: redeliveries cannot flood the log.
_LEVELS: dict[str, int] = {
    ACCEPTED: logging.INFO,
    QUEUED: logging.INFO,
    DUPLICATE: logging.DEBUG,
    REJECTED: logging.DEBUG,
    IN_PROGRESS: logging.DEBUG,
    FAILED: logging.DEBUG,
}
#: The most severe of those levels: a logger not enabled for it writes none of the lines.
_HIGHEST_LEVEL = max(_LEVELS.values())
WARNING = logging.WARNING


def log_outcome(
    callback_id: object,
    type_name: object,
    account_id: object,
    outcome: str,
    reason: str = "",
    level: int | None = None,
) -> None:
    """The one log line written for every item of a batch."""
    if level is None:
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
