"""The interface of queue mode's engines, its errors and its constants: what the request, the
jobs and the engines share. Imports nothing of the package above ``config``."""

from __future__ import annotations

import abc
from typing import Sequence

from flask import Flask

CELERY = "celery"
#: The name of the Celery task and the RQ job function.
TASK_NAME = "flask_voxcallbacks.run_callback"
DEFAULT_RQ_QUEUE = "voxcallbacks"
#: Seconds a request waits for its queue to take its jobs: a broker that does not answer
#: within them fails the request (the sender redelivers) instead of holding it.
ENQUEUE_TIMEOUT = 5


class QueueError(RuntimeError):
    """A job could not be enqueued; the message says why (never with a password)."""


class JobFailed(RuntimeError):
    """Raised by a job whose handlers failed, so that its queue retries it (or marks it failed);
    the failure itself is recorded in the store, as inline."""

    def __init__(self, account_id: int, callback_id: int) -> None:
        super().__init__(
            f"handlers of callback {callback_id} (account {account_id}) failed;"
            " see `flask voxcallbacks failed`"
        )
        self.account_id = account_id
        self.callback_id = callback_id

    def __reduce__(self) -> tuple[type[JobFailed], tuple[int, int]]:
        # Queues pickle the exception of a failed job; rebuild it from the ids.
        return type(self), (self.account_id, self.callback_id)


class JobRefused(RuntimeError):
    """Raised by a job that reached a worker of another application (another namespace, or an
    account this application is not configured for): nothing is run or dropped, the job fails
    loudly, and the callback stays queued in its own application's store."""

    def __reduce__(self) -> tuple[type[JobRefused], tuple[str]]:
        return type(self), (str(self),)


class Queue(abc.ABC):
    """Where the jobs of queued callbacks go."""

    #: What the queue is, fit to show (``celery``, ``rq://host:port/db?queue=name``).
    description: str

    @abc.abstractmethod
    def enqueue(self, app: Flask, keys: Sequence[tuple[int, int]], retries: int) -> None:
        """Enqueue one job per ``(account_id, callback_id)``, each retried up to ``retries``
        times with back-off when its handlers fail; raise :class:`QueueError` when the jobs
        cannot all be enqueued."""

    def warnings(self, app: Flask) -> list[str]:
        """Set-up problems that weaken a guarantee (shown by ``flask voxcallbacks check``)."""
        return []

    def errors(self, app: Flask) -> list[str]:
        """Set-up problems that fail every callback: a broker that cannot be reached, an engine
        that is not set up (``flask voxcallbacks check`` exits 1)."""
        return []

    def workers(self, app: Flask) -> int | None:
        """How many workers listen on the queue now, or None when the engine cannot tell."""
        return None

    def close(self) -> None:  # noqa: B027 - a no-op is right for queues without connections
        """Release connections."""


def retry_delays(retries: int) -> list[int]:
    """Seconds to wait before each retry of a failed job: 10 s, then four times longer each
    time, at most an hour."""
    return [min(10 * 4**attempt, 3600) for attempt in range(retries)]


def default_rq_queue(namespace: str) -> str:
    """The RQ queue of an application whose URL names none: one per namespace."""
    return f"{DEFAULT_RQ_QUEUE}_{namespace}" if namespace else DEFAULT_RQ_QUEUE
