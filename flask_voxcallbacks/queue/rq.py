"""The RQ engine of queue mode: jobs go to an RQ queue on a Redis server and are run by
``flask voxcallbacks worker``, inside the application."""

from __future__ import annotations

from typing import Sequence

import redis
from flask import Flask, current_app
from rq import Queue as RQ
from rq import Retry, Worker

from ..config import redact_url
from ..handling import FAILED, run_job
from ..state import get_state
from .base import ENQUEUE_TIMEOUT, JobFailed, Queue, QueueError, retry_delays

#: The job function, by name: the worker imports it.
JOB = "flask_voxcallbacks.queue.rq.run_callback"


class RQQueue(Queue):
    def __init__(self, redis_url: str, name: str, url: str) -> None:
        #: The workers' connection, whose blocking reads RQ times itself.
        self.connection = redis.Redis.from_url(redis_url)
        self.queue = RQ(name, connection=self.connection)
        # A request's enqueue gives up after ENQUEUE_TIMEOUT s on a server that does not answer
        # (unless the URL sets its own socket timeouts).
        self._sending = redis.Redis.from_url(
            redis_url, socket_timeout=ENQUEUE_TIMEOUT, socket_connect_timeout=ENQUEUE_TIMEOUT
        )
        self._sender = RQ(name, connection=self._sending)
        self.description = redact_url(url)

    def enqueue(self, app: Flask, keys: Sequence[tuple[int, int]], retries: int) -> None:
        retry = Retry(max=retries, interval=retry_delays(retries)) if retries else None
        # A job may run as long as its claim's lease: the handlers would be stopped, and the
        # callback left claimed, if RQ's own timeout (180 s by default) ended the job earlier.
        state = get_state(app)
        settings = state.settings
        timeout = settings.lease_seconds
        trace = state.tracing.context() if state.tracing is not None else ""
        jobs = [
            RQ.prepare_data(
                JOB,
                args=(account_id, callback_id, settings.namespace, state.store.identity, trace),
                timeout=timeout,
                result_ttl=0,
                retry=retry,
                description=f"voximplant callback {callback_id} of account {account_id}",
            )
            for account_id, callback_id in keys
        ]
        try:
            self._sender.enqueue_many(jobs)
        except redis.RedisError as error:
            raise QueueError(f"the RQ queue's Redis server took no job: {error}") from None

    def worker(self) -> Worker:
        return Worker([self.queue], connection=self.connection)

    def errors(self, app: Flask) -> list[str]:
        try:
            self._sending.ping()
        except redis.RedisError as error:
            return [f"the RQ queue's Redis server does not answer: {error}"]
        return []

    def workers(self, app: Flask) -> int | None:
        try:
            return int(Worker.count(queue=self._sender))
        except redis.RedisError:
            return None

    def close(self) -> None:
        self.connection.close()
        self._sending.close()


def run_callback(
    account_id: int, callback_id: int, namespace: str = "", store: str = "", trace: str = ""
) -> str:
    """Handle a queued callback; run by ``flask voxcallbacks worker`` in the application's
    context. A failure raises, so that RQ retries the job as its ``Retry`` says; a job of
    another application raises :class:`JobRefused` and stays in RQ's failed jobs."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    outcome = run_job(app, account_id, callback_id, namespace, store, trace)
    if outcome == FAILED:
        raise JobFailed(account_id, callback_id)
    return outcome
