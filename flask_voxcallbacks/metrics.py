"""Prometheus metrics, on with ``VOXCALLBACKS_METRICS = "prometheus"`` (the ``[prometheus]``
extra): counted from the lifecycle signals, and read from the store when scraped.

Every label value is bounded: a callback type from the known list (``other`` for the rest, which
a sender chooses), an outcome, a rejection reason. Counters and histograms follow
``prometheus_client``'s multiprocess mode under gunicorn (``PROMETHEUS_MULTIPROC_DIR``); the
store's figures come from :class:`StoreCollector`, registered on the registry the metrics are
exposed from.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from typing import Any

from flask import Flask
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .auth import REASONS
from .callbacks import Callback, RejectedCallback
from .registry import CALLBACK_TYPES, Payload
from .signals import (
    callback_completed,
    callback_duplicate,
    callback_failed,
    callback_in_progress,
    callback_queued,
    callback_rejected,
    job_started,
)
from .state import EXTENSION_NAME, VoxState

#: The label of a type that is not one of the known types.
OTHER = "other"
#: Seconds a callback waits between being queued and its job starting.
WAIT_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, float("inf"))


def _type(name: object) -> str:
    return name if isinstance(name, str) and name in CALLBACK_TYPES else OTHER


class StoreCollector(Collector):
    """What the stores of the applications set up with metrics keep, read at each scrape: the
    failed and queued callbacks of their accounts, the age of the oldest queued one, and whether
    each store answers (``voxcallbacks_store_up``)."""

    def __init__(self, *apps: Flask) -> None:
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet(apps)

    def add(self, app: Flask) -> None:
        self._apps.add(app)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        kept = GaugeMetricFamily(
            "voxcallbacks_kept_callbacks",
            "Callbacks kept for a job or a replay, by state.",
            labels=["state"],
        )
        oldest = GaugeMetricFamily(
            "voxcallbacks_oldest_queued_age_seconds",
            "Age of the oldest callback waiting for its job (0 when none waits).",
        )
        up = GaugeMetricFamily(
            "voxcallbacks_store_up", "Whether every store answered (1) or one did not (0)."
        )
        counts = {"failed": 0, "queued": 0}
        queued_since: list[float] = []
        answered = True
        seen: set[str] = set()
        for app in list(self._apps):
            state = app.extensions.get(EXTENSION_NAME)
            if not isinstance(state, VoxState) or state.store.identity in seen:
                continue
            seen.add(state.store.identity)
            try:
                records = state.store.kept()
            except Exception:
                answered = False
                continue
            accounts = state.settings.accounts
            for record in records:
                if record.account_id in accounts:
                    counts["queued" if record.queued else "failed"] += 1
                    if record.queued:
                        queued_since.append(record.kept_at)
        for name, count in counts.items():
            kept.add_metric([name], count)
        oldest.add_metric([], max(0.0, time.time() - min(queued_since)) if queued_since else 0.0)
        up.add_metric([], 1.0 if answered else 0.0)
        yield kept
        yield oldest
        yield up


class Metrics:
    """The metrics of one registry, fed by the lifecycle signals of the applications installed
    on it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.callbacks = Counter(
            "voxcallbacks_callbacks",
            "Authentic and refused callbacks by type and outcome (as in the answer's summary).",
            ["type", "outcome"],
            registry=registry,
        )
        self.rejections = Counter(
            "voxcallbacks_rejections", "Refused items by reason.", ["reason"], registry=registry
        )
        self.duration = Histogram(
            "voxcallbacks_handler_duration_seconds",
            "Seconds a callback's building and receivers took, by type.",
            ["type"],
            registry=registry,
        )
        self.queue_wait = Histogram(
            "voxcallbacks_queue_wait_seconds",
            "Seconds from a callback being queued to its job starting.",
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.replays = Counter(
            "voxcallbacks_replays", "Replayed callbacks by outcome.", ["outcome"], registry=registry
        )
        self.store = StoreCollector()
        registry.register(self.store)
        #: The callbacks a replay is running now, to count its outcome.
        self._replaying: set[tuple[int, int]] = set()

    def install(self, app: Flask) -> None:
        self.store.add(app)
        callback_completed.connect(self.on_completed, sender=app)
        callback_failed.connect(self.on_failed, sender=app)
        callback_queued.connect(self.on_queued, sender=app)
        callback_in_progress.connect(self.on_in_progress, sender=app)
        callback_duplicate.connect(self.on_duplicate, sender=app)
        callback_rejected.connect(self.on_rejected, sender=app)
        job_started.connect(self.on_job_started, sender=app)

    def on_completed(self, sender: Flask, callback: Callback[Payload], **extra: Any) -> None:
        label = _type(callback.type)
        self.callbacks.labels(label, "accepted").inc()
        self.duration.labels(label).observe(extra["duration"])
        self._replayed((callback.account_id, callback.callback_id), "accepted")

    def on_failed(self, sender: Flask, **extra: Any) -> None:
        label = _type(extra["type"])
        self.callbacks.labels(label, "failed").inc()
        self.duration.labels(label).observe(extra["duration"])
        self._replayed((extra["account_id"], extra["callback_id"]), "failed")

    def on_queued(self, sender: Flask, **extra: Any) -> None:
        self.callbacks.labels(_type(extra["type"]), "queued").inc()

    def on_in_progress(self, sender: Flask, **extra: Any) -> None:
        self.callbacks.labels(_type(extra["type"]), "in_progress").inc()
        self._replayed((extra["account_id"], extra["callback_id"]), "in_progress")

    def on_duplicate(self, sender: Flask, callback: Callback[Payload], **extra: Any) -> None:
        self.callbacks.labels(_type(callback.type), "duplicate").inc()
        self._replayed((callback.account_id, callback.callback_id), "duplicate")

    def on_rejected(self, sender: Flask, callback: RejectedCallback, **extra: Any) -> None:
        reason = extra.get("reason")
        self.callbacks.labels(_type(callback.type), "rejected").inc()
        self.rejections.labels(reason if reason in REASONS else OTHER).inc()

    def on_job_started(self, sender: Flask, **extra: Any) -> None:
        if extra["replay"]:
            self._replaying.add((extra["account_id"], extra["callback_id"]))
        else:
            self.queue_wait.observe(max(0.0, time.time() - extra["kept_at"]))

    def _replayed(self, key: tuple[int, int], outcome: str) -> None:
        if key in self._replaying:
            self._replaying.discard(key)
            self.replays.labels(outcome).inc()


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, Metrics] = weakref.WeakKeyDictionary()


def install(app: Flask, registry: CollectorRegistry | None) -> Metrics:
    """Count ``app``'s callbacks on ``registry`` (prometheus_client's default one when None)."""
    target = REGISTRY if registry is None else registry
    metrics = _by_registry.get(target)
    if metrics is None:
        metrics = _by_registry[target] = Metrics(target)
    metrics.install(app)
    return metrics


def exposition_registry(app: Flask) -> CollectorRegistry:
    """A registry to expose ``app``'s metrics from: under gunicorn with
    ``PROMETHEUS_MULTIPROC_DIR`` set, the counts of every worker (dead ones included) read from
    that folder; else prometheus_client's default registry's; and the store's figures."""
    registry = CollectorRegistry()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Default())
    registry.register(StoreCollector(app))
    return registry


class _Default(Collector):
    """The metrics of prometheus_client's default registry, but the store's (exposed once)."""

    def collect(self) -> Iterator[Any]:
        for family in REGISTRY.collect():
            if not family.name.startswith(_STORE_FAMILIES):
                yield family


_STORE_FAMILIES = (
    "voxcallbacks_kept_callbacks",
    "voxcallbacks_oldest_queued",
    "voxcallbacks_store_up",
)


def mark_process_dead(pid: int) -> None:
    """For gunicorn's ``child_exit`` hook: a worker that exits keeps its counts; its live gauges
    go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
