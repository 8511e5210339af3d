"""The Celery engine of queue mode: each job is a task of the Celery app that Flask's Celery
pattern keeps in ``app.extensions["celery"]``, run by the application's ordinary
``celery -A ... worker``."""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Sequence

from celery import Celery, Task, shared_task, signals  # type: ignore[import-untyped]
from flask import Flask, current_app, has_app_context

from ..handling import FAILED, logger, run_job
from ..readiness import store_errors
from ..state import EXTENSION_NAME, get_state
from .base import CELERY, ENQUEUE_TIMEOUT, TASK_NAME, JobFailed, Queue, QueueError, retry_delays

#: The applications set up with this engine, to find the one a worker's task belongs to.
_apps: weakref.WeakSet[Flask] = weakref.WeakSet()


class CeleryQueue(Queue):
    description = CELERY

    def __init__(self, app: Flask) -> None:
        _apps.add(app)

    def enqueue(self, app: Flask, keys: Sequence[tuple[int, int]], retries: int) -> None:
        celery = _celery_of(app)
        state = get_state(app)
        job = {"namespace": state.settings.namespace, "store": state.store.identity}
        if state.tracing is not None:
            job["trace"] = state.tracing.context()

        def send() -> None:
            with celery.connection_for_write() as connection:
                _connect_once(connection)
                for account_id, callback_id in keys:
                    celery.send_task(
                        TASK_NAME,
                        args=(account_id, callback_id),
                        kwargs={"retries": retries, **job},
                        connection=connection,
                        retry=False,
                    )

        # Jobs a silent broker takes after the deadline find their callbacks no longer queued.
        problem = _within_deadline(send, "voxcallbacks-enqueue")
        if problem is not None:
            raise QueueError(f"the Celery broker took no job: {problem}")

    def errors(self, app: Flask) -> list[str]:
        try:
            celery = _celery_of(app)
        except QueueError as error:
            return [str(error)]

        def connect() -> None:
            with celery.connection_for_write() as connection:
                _connect_once(connection)

        problem = _within_deadline(connect, "voxcallbacks-check")
        return [] if problem is None else [f"the Celery broker cannot be reached: {problem}"]

    def workers(self, app: Flask) -> int | None:
        try:
            replies = _celery_of(app).control.inspect(timeout=1).ping()
        except Exception:
            return None
        return len(replies or {})


@signals.worker_init.connect(weak=False)  # type: ignore[untyped-decorator]
def _refuse_a_store_it_cannot_use(sender: Any, **extra: Any) -> None:
    """At a Celery worker's start: stop it, in one line, when the store of an application it
    runs jobs for is memory:// or cannot be read, before it takes a job it could not run."""
    celery = getattr(sender, "app", None)
    for app in [app for app in _apps if app.extensions.get("celery") is celery]:
        problems = store_errors(app)
        if problems:
            logger.error("the worker cannot start: %s", problems[0])
            # SystemExit, unlike an exception, passes through Celery's signal dispatch.
            raise SystemExit(1)


def _connect_once(connection: Any) -> None:
    """One quick attempt: a broker that refuses the connection fails the request at once (the
    sender redelivers the callbacks) rather than after Celery's minutes of retries. A broker that
    accepts it and never answers holds the attempt as long as the connection's own socket
    timeouts let it: the request gives up on it at ENQUEUE_TIMEOUT (see _within_deadline)."""
    connection.ensure_connection(max_retries=1, interval_start=0)


def _within_deadline(work: Callable[[], None], name: str) -> str | None:
    """Run ``work`` on a thread and wait ENQUEUE_TIMEOUT seconds at most: a broker that accepts
    the connection and then never answers would otherwise hold the request for ever. None when
    ``work`` returned; else what went wrong."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except Exception as error:
            failure.append(error)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(ENQUEUE_TIMEOUT)
    if thread.is_alive():
        return f"no answer within {ENQUEUE_TIMEOUT} s"
    if failure:
        return f"{type(failure[0]).__name__}: {failure[0]}"
    return None


def _celery_of(app: Flask) -> Celery:
    celery = app.extensions.get("celery")
    if not isinstance(celery, Celery):
        raise QueueError(
            'VOXCALLBACKS_QUEUE is "celery" but app.extensions["celery"] holds no Celery app:'
            " set it up as in Flask's Celery pattern (celery_init_app)"
        )
    return celery


@shared_task(  # type: ignore[untyped-decorator]
    name=TASK_NAME, bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def run_callback(
    task: Task,
    account_id: int,
    callback_id: int,
    retries: int = 0,
    namespace: str = "",
    store: str = "",
    trace: str = "",
) -> str:
    """Handle a queued callback in the application's context; a failure is retried ``retries``
    times with back-off, then left to ``flask voxcallbacks replay``."""
    app = _flask_app(task.app)
    with app.app_context():
        outcome = run_job(app, account_id, callback_id, namespace, store, trace)
    if outcome == FAILED:
        attempt = task.request.retries
        if attempt < retries:
            raise task.retry(countdown=retry_delays(retries)[attempt], max_retries=retries)
        raise JobFailed(account_id, callback_id)
    return outcome


def _flask_app(celery: Any) -> Flask:
    """The application a task runs for: the current one (Flask's Celery pattern runs tasks in
    its context), else the one whose ``extensions["celery"]`` is the task's Celery app."""
    if has_app_context() and EXTENSION_NAME in current_app.extensions:
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        return app
    apps = list(_apps)
    matching = [app for app in apps if app.extensions.get("celery") is celery]
    if len(matching) == 1:
        return matching[0]
    if not matching and len(apps) == 1:
        return apps[0]
    raise RuntimeError(
        f"cannot tell which of {len(apps)} Flask applications runs the task {TASK_NAME}:"
        ' keep each Celery app in its application\'s extensions["celery"]'
    )
