"""The callback endpoint: request -> parse -> authenticate -> handle (or enqueue) -> response."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from .auth import BODY_MISMATCH, Rejection, authenticate
from .handling import (
    ACCEPTED,
    DUPLICATE,
    FAILED,
    IN_PROGRESS,
    OUTCOMES,
    QUEUED,
    REJECTED,
    Arrival,
    enqueue_batch,
    handle_batch,
    reject,
)
from .parsing import BadBatch, parse_batch
from .state import EXTENSION_NAME, VoxState, get_state

logger = logging.getLogger("flask_voxcallbacks")

#: Seconds a sender is asked to wait before redelivering a callback another worker is running.
RETRY_AFTER_SECONDS = 5


def make_blueprint(path: str) -> Blueprint:
    """A blueprint named ``voxcallbacks`` with the one POST route at ``path``."""
    blueprint = Blueprint(EXTENSION_NAME, __name__)
    # No automatic OPTIONS answer: every method but POST gets 405.
    blueprint.add_url_rule(
        path, "receive", receive, methods=["POST"], provide_automatic_options=False
    )
    return blueprint


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def receive() -> Response | tuple[Response, int]:
    """Authenticate and handle every item of a callback batch; answer with a summary."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = get_state(app)
    cap = state.settings.max_content_length
    try:
        body = _read_body(cap)
    except RequestEntityTooLarge:
        logger.warning("batch refused: body over %d bytes", cap)
        return _error(413, f"body over {cap} bytes")
    except Exception as error:
        # A chunked body that breaks off or is malformed: the WSGI server's reader raises its
        # own error (gunicorn's InvalidChunkSize, Werkzeug's ClientDisconnected, an OSError).
        logger.warning(
            "batch refused: the request body could not be read (%s)", type(error).__name__
        )
        return _error(400, "the request body could not be read (malformed or cut off)")
    try:
        items = parse_batch(body)
    except BadBatch as error:
        logger.warning("batch refused: %s", error)
        return _error(400, str(error))
    cap = state.settings.max_items
    if len(items) > cap:
        logger.warning("batch refused: %d items, over VOXCALLBACKS_MAX_ITEMS=%d", len(items), cap)
        return _error(413, f"{len(items)} items in one batch; at most {cap} are accepted")
    counts, reasons, unfinished = handle_items(app, state, items)
    _log_batch(len(items), counts, reasons, unfinished)
    return _summary(counts, len(items), queue_mode=state.queue is not None)


def _log_batch(
    total: int, counts: dict[str, int], reasons: dict[str, int], unfinished: dict[str, list[int]]
) -> None:
    """One line for a batch with anything but accepted or queued callbacks: a WARNING when some
    were rejected, failed or are in progress elsewhere, else (duplicates only) INFO."""
    parts = []
    for outcome in (FAILED, IN_PROGRESS):
        if counts[outcome]:
            ids = unfinished[outcome]
            parts.append(f"{counts[outcome]} {outcome.replace('_', ' ')} (callback {_ids(ids)})")
    if counts[REJECTED]:
        detail = ", ".join(f"{reason}={n}" for reason, n in sorted(reasons.items()))
        parts.append(f"{counts[REJECTED]} rejected ({detail})")
    if counts[DUPLICATE]:
        parts.append(f"{counts[DUPLICATE]} duplicate(s)")
    if not parts:
        return
    level = logging.INFO if parts and len(parts) == 1 and counts[DUPLICATE] else logging.WARNING
    logger.log(level, "batch of %d: %s", total, ", ".join(parts))


def _ids(callback_ids: list[int], limit: int = 5) -> str:
    """The first few distinct ids of a list."""
    distinct = list(dict.fromkeys(callback_ids))
    shown = ", ".join(str(i) for i in distinct[:limit])
    more = len(distinct) - limit
    return f"{shown} and {more} more" if more > 0 else shown


def _read_body(cap: int) -> bytes:
    """The request body, refusing more than ``cap`` bytes whether it is sized or chunked.

    Werkzeug stops a chunked body at the limit without an error, so the limit is set one byte
    higher and a body that reaches it is too large.
    """
    request.max_content_length = cap + 1
    body = request.get_data(cache=False)
    if len(body) > cap:
        raise RequestEntityTooLarge()
    return body


#: Items authenticated, built and handled together. A chunk's callbacks are freed before the next
#: chunk is built, so that a large batch neither holds every callback at once nor wakes the
#: garbage collector over them again and again; the default VOXCALLBACKS_MAX_ITEMS fits in one.
CHUNK_ITEMS = 1000


def handle_items(
    app: Flask, state: VoxState, items: list[dict[str, object]]
) -> tuple[dict[str, int], dict[str, int], dict[str, list[int]]]:
    """Authenticate each item on its own and handle the authentic ones together, chunk by chunk;
    count the outcomes and the reasons of the rejections, and list the ids of the callbacks
    that failed or are in progress elsewhere."""
    counts = dict.fromkeys(OUTCOMES, 0)
    reasons: dict[str, int] = {}
    unfinished: dict[str, list[int]] = {FAILED: [], IN_PROGRESS: []}
    for start in range(0, len(items), CHUNK_ITEMS):
        chunk = items[start : start + CHUNK_ITEMS]
        _handle_chunk(app, state, chunk, counts, reasons, unfinished)
    return counts, reasons, unfinished


def _handle_chunk(
    app: Flask,
    state: VoxState,
    items: list[dict[str, object]],
    counts: dict[str, int],
    reasons: dict[str, int],
    unfinished: dict[str, list[int]],
) -> None:
    arrivals = []
    accounts = state.settings.accounts
    for item in items:
        verdict = authenticate(item, accounts)
        if isinstance(verdict, Rejection):
            reject(app, item, verdict)
            counts[REJECTED] += 1
            reasons[verdict.reason] = reasons.get(verdict.reason, 0) + 1
            continue
        type_name = item.get("type")
        # The item is this request's own: its hash goes, so that nothing kept or shown holds it.
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


def _summary(counts: dict[str, int], total: int, queue_mode: bool) -> Response:
    """The counts as JSON (with ``queued`` in queue mode), with the status the response policy
    gives them.

    Written directly rather than through ``jsonify``: the body is a few counters, and building
    it is a measurable part of answering a one-callback batch.
    """
    queued = f', "queued": {counts[QUEUED]}' if queue_mode else ""
    body = (
        f'{{"accepted": {counts[ACCEPTED]}, "rejected": {counts[REJECTED]}, '
        f'"duplicates": {counts[DUPLICATE]}, "in_progress": {counts[IN_PROGRESS]}, '
        f'"failed": {counts[FAILED]}{queued}}}\n'
    )
    if counts[FAILED]:
        status = 500
    elif counts[IN_PROGRESS]:
        response = Response(body, 503, mimetype="application/json")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    elif total and counts[REJECTED] == total:
        status = 403
    else:
        status = 200
    return Response(body, status, mimetype="application/json")
