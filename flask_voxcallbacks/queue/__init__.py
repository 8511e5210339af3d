"""Queue mode, chosen by ``VOXCALLBACKS_QUEUE``: the request keeps each authentic callback as
queued in the store and enqueues a job naming it; the job, on a worker, runs it through the same
claim -> dispatch -> record path as inline handling (:func:`~flask_voxcallbacks.handling.run_job`).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import Flask

from ..config import ConfigurationError, redact_url
from .base import (
    CELERY,
    DEFAULT_RQ_QUEUE,
    ENQUEUE_TIMEOUT,
    TASK_NAME,
    JobFailed,
    JobRefused,
    Queue,
    QueueError,
    default_rq_queue,
    retry_delays,
)

__all__ = [
    "CELERY",
    "DEFAULT_RQ_QUEUE",
    "ENQUEUE_TIMEOUT",
    "TASK_NAME",
    "JobFailed",
    "JobRefused",
    "Queue",
    "QueueError",
    "default_rq_queue",
    "open_queue",
    "retry_delays",
]

KEY = "VOXCALLBACKS_QUEUE"


def open_queue(url: str, app: Flask, namespace: str = "") -> Queue | None:
    """The queue a ``VOXCALLBACKS_QUEUE`` value names, or None for inline handling."""
    if not url:
        return None
    if url == CELERY:
        try:
            from .celery import CeleryQueue
        except ImportError:
            raise ConfigurationError(
                f"{KEY}={CELERY!r} needs the celery package:"
                " pip install 'flask-voxcallbacks[celery]'"
            ) from None
        return CeleryQueue(app)
    parts = urlsplit(url)
    if parts.scheme != "rq":
        raise ConfigurationError(
            f"{KEY} must be {CELERY!r} or an RQ URL such as rq://localhost:6379/0?queue=name,"
            f" not {redact_url(url)!r}"
        )
    names = parse_qs(parts.query).get("queue", [default_rq_queue(namespace)])
    try:
        from .rq import RQQueue
    except ImportError:
        raise ConfigurationError(
            f"{KEY}={redact_url(url)} needs the rq package: pip install 'flask-voxcallbacks[rq]'"
        ) from None
    redis_url = parts._replace(scheme="redis", query="").geturl()
    try:
        return RQQueue(redis_url, names[-1], url)
    except ValueError as error:
        raise ConfigurationError(f"{KEY}={redact_url(url)} is not a valid URL: {error}") from None
