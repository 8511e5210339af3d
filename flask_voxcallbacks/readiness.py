"""Whether an application would handle callbacks now: what ``flask voxcallbacks check`` prints,
and the verdict readiness probes ask for (``VoxCallbacks.check_ready``, ``check --ready``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from flask import Flask

from .config import ConfigurationError, load_settings, redact_url
from .handling import kept_callbacks
from .safe_text import printable
from .state import get_state


@dataclass(frozen=True)
class Readiness:
    """The verdict on an application's set-up, with what it was drawn from.

    ``errors`` are problems that fail every callback (a store or broker that cannot be reached, a
    missing Celery app); ``warnings`` weaken a guarantee without failing callbacks. No line holds
    a secret.
    """

    #: What was found, one line each: the endpoint, the accounts, the store, the queue.
    facts: tuple[str, ...]
    warnings: tuple[str, ...]
    errors: tuple[str, ...]

    @property
    def ready(self) -> bool:
        """Whether callbacks would be handled: no error (warnings allowed)."""
        return not self.errors


def store_errors(app: Flask) -> list[str]:
    """Why a worker of ``app`` could not run the jobs its web application queues: a memory store
    (the callbacks are in the web process's memory) or a store that cannot be read."""
    state = get_state(app)
    store_url = redact_url(state.settings.store_url)
    if state.settings.store_url.startswith("memory:"):
        return [
            "VOXCALLBACKS_STORE is memory://: a worker cannot see the callbacks the web"
            " application queued in its own memory; give both the same sqlite:// or redis:// store"
        ]
    try:
        state.store.kept()
    except Exception as error:
        return [_unreadable(store_url, error)]
    return []


def _unreadable(store_url: str, error: Exception) -> str:
    reason = printable(f"{type(error).__name__}: {error}", limit=300)
    return f"the store {store_url} cannot be read: {reason}"


def check_readiness(app: Flask) -> Readiness:
    """Check ``app``'s configuration, store and queue as ``flask voxcallbacks check`` does."""
    try:
        state = get_state(app)
        # The configuration again: it may have changed since init_app.
        settings = load_settings(app.config)
    except (ConfigurationError, RuntimeError) as error:
        return Readiness((), (), (str(error),))
    facts = [f"Endpoint: POST {settings.path}"]
    warnings: list[str] = []
    errors: list[str] = []
    for account_id, credentials in sorted(settings.accounts.items()):
        role = "main" if account_id == settings.account_id else "extra"
        salt = "salt set" if credentials.salt else "no salt (hash without salt)"
        facts.append(f"Account {account_id} ({role}): {salt}")
        if not credentials.salt:
            warnings.append(
                f"account {account_id} has no salt: set a security salt on Voximplant's Webhooks"
                " page and the same in the configuration"
            )
    store_url = redact_url(state.settings.store_url)
    where = getattr(state.store, "path", None)
    resolved = f" (the file {os.path.realpath(where)})" if isinstance(where, str) else ""
    facts.append(f"Store: {store_url}{resolved}")
    if state.settings.store_url.startswith("memory:") and not (app.debug or app.testing):
        warnings.append(
            "memory:// remembers handled callbacks in this process only and forgets them on"
            " restart; in production use sqlite:// (one host) or redis:// (several hosts)"
        )
    try:
        kept = len(kept_callbacks(state)[0])
        warnings += state.store.warnings()
    except Exception as error:
        errors.append(_unreadable(store_url, error))
    else:
        facts.append(f"Failed or queued callbacks: {kept}")
    if state.queue is not None:
        facts.append(f"Queue: {state.queue.description}")
        warnings += state.queue.warnings(app)
        problems = state.queue.errors(app)
        errors += (printable(problem, limit=300) for problem in problems)
        workers = None if problems else state.queue.workers(app)
        if workers is not None:
            facts.append(f"Workers listening: {workers}")
        if workers == 0:
            warnings.append(
                "no worker listens on the queue: callbacks are answered 200 and wait,"
                " queued, until one starts"
            )
    return Readiness(tuple(facts), tuple(warnings), tuple(errors))
