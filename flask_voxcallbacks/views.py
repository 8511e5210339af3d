"""The callback endpoint, HTTP only: read the body, parse it, hand the items to
:func:`~flask_voxcallbacks.handling.handle_items`, answer with the summary."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Request, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from .handling import ACCEPTED, DUPLICATE, FAILED, IN_PROGRESS, QUEUED, REJECTED, handle_items
from .parsing import BadBatch, parse_batch
from .state import EXTENSION_NAME, get_state

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
        message = str(error)
        kind = request.mimetype
        if kind and kind != "application/json" and not kind.endswith("+json"):
            # A form or a text body: say what came, Voximplant posts application/json.
            message += f" (the request's Content-Type is {kind}; callbacks are JSON)"
        logger.warning("batch refused: %s", message)
        return _error(400, message)
    cap = state.settings.max_items
    if len(items) > cap:
        logger.warning("batch refused: %d items, over VOXCALLBACKS_MAX_ITEMS=%d", len(items), cap)
        return _error(413, f"{len(items)} items in one batch; at most {cap} are accepted")
    counts = handle_items(app, state, items)
    return _summary(counts, len(items), queue_mode=state.queue is not None)


def _read_body(cap: int) -> bytes:
    """The request body, refusing more than ``cap`` bytes whether it is sized or chunked.

    Werkzeug stops a chunked body at the limit without an error, so the limit is set one byte
    higher and a body that reaches it is too large. Flask sets the limit per request from 3.1
    on; before, the body is read from Werkzeug's input stream with the same limit.
    """
    if _PER_REQUEST_LIMIT:
        request.max_content_length = cap + 1
        body = request.get_data(cache=False)
    else:
        body = get_input_stream(request.environ, max_content_length=cap + 1).read()
    if len(body) > cap:
        raise RequestEntityTooLarge()
    return body


#: Whether Flask's request takes a body limit of its own (Flask 3.1 and later).
_PER_REQUEST_LIMIT = getattr(getattr(Request, "max_content_length", None), "fset", None) is not None


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
