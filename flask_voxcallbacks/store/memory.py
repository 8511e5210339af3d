"""``memory://``: a store inside one process, for development and single-process servers."""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

from .base import (
    BUSY,
    CLAIMED,
    DONE,
    MISMATCH,
    QUEUED,
    Claim,
    KeptCallback,
    KeptState,
    Store,
    ToClaim,
    ToComplete,
    ToQueue,
)

Key = tuple[int, int]
#: The answers without a token, built once: building a frozen Claim costs 0.7 us (timeit), a
#: few per cent of what a redelivered callback costs.
_MISMATCH, _DONE, _BUSY, _QUEUED = Claim(MISMATCH), Claim(DONE), Claim(BUSY), Claim(QUEUED)


@dataclass
class _Record:
    """A callback claimed, failed or queued, and not done."""

    digest: str
    expires_at: float
    token: str = ""
    lease_until: float = 0.0
    failure: KeptCallback | None = None

    @property
    def deadline(self) -> float:
        """When the record can be forgotten: its expiry, or the end of its lease if later."""
        return max(self.expires_at, self.lease_until)


class MemoryStore(Store):
    """Records in two dictionaries guarded by one lock.

    A done callback, most of what the store remembers, is a plain ``(digest, deadline)`` tuple in
    ``_done``. The garbage collector stops tracking such tuples, so a store that remembers a
    million ids adds little to the collector's full passes. A callback claimed, failed or queued
    is a ``_Record`` in ``_open``; a key is in one dictionary at most.

    Expired records are forgotten as time passes, at a cost that does not grow with the number of
    records: a heap holds one ``(time, key)`` entry per key, at or before the key's deadline, and
    each claim pops the entries whose time has come. A popped key whose deadline has moved later
    is pushed again at its new deadline; a deadline that moves later (a redelivery, a failure)
    pushes nothing, so that a callback failing again and again keeps one entry.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Key, _Record] = {}
        self._done: dict[Key, tuple[str, float]] = {}
        self._deadlines: list[tuple[float, Key]] = []
        #: The time of each key's entry in the heap.
        self._scheduled: dict[Key, float] = {}

    def _schedule(self, key: Key, deadline: float) -> None:
        scheduled = self._scheduled.get(key)
        if scheduled is None or deadline < scheduled:
            # An earlier entry replaces a later one, which is skipped when it is popped.
            self._scheduled[key] = deadline
            heapq.heappush(self._deadlines, (deadline, key))

    def _live(self, key: Key, now: float) -> _Record | None:
        record = self._open.get(key)
        if record is not None and record.deadline <= now:
            del self._open[key]
            return None
        return record

    def claim_many(
        self,
        keys: Sequence[ToClaim],
        lease_seconds: int,
        ttl: int,
        take_queued: bool = False,
    ) -> list[Claim]:
        now = self.now()
        with self._lock:
            self._sweep(now)
            return [
                self._claim((a, c), digest, now, lease_seconds, ttl, take_queued)
                for a, c, digest in keys
            ]

    def _claim(
        self, key: Key, digest: str, now: float, lease_seconds: int, ttl: int, take_queued: bool
    ) -> Claim:
        done = self._done.get(key)
        if done is not None:
            if done[1] > now:
                return _DONE if done[0] == digest else _MISMATCH
            del self._done[key]
        record = self._live(key, now)
        if record is None:
            record = self._open[key] = _Record(digest, now + ttl)
        elif record.digest != digest:
            return _MISMATCH
        elif record.failure is not None and record.failure.queued and not take_queued:
            # Queued, even while a job runs it: the item is kept until a job handles it.
            return _QUEUED
        elif record.lease_until > now:
            return _BUSY
        record.token = self.new_token()
        record.lease_until = now + lease_seconds
        self._schedule(key, record.deadline)
        failure = record.failure
        return Claim(CLAIMED, record.token, failure.succeeded if failure is not None else ())

    def complete_many(self, claimed: Sequence[ToComplete], ttl: int) -> None:
        until = self.now() + ttl
        with self._lock:
            for account_id, callback_id, token in claimed:
                key = (account_id, callback_id)
                record = self._open.pop(key, None)
                if record is not None:
                    digest = record.digest
                    # A claim taken over by another worker keeps the key until its lease ends.
                    deadline = until if record.token == token else max(until, record.lease_until)
                elif key in self._done:
                    digest, deadline = self._done[key][0], until
                else:
                    continue
                self._done[key] = (digest, deadline)
                self._schedule(key, deadline)

    def queue_many(self, queued: Sequence[ToQueue], retention: int, trace: str = "") -> None:
        now = self.now()
        with self._lock:
            for account_id, callback_id, token, item in queued:
                key = (account_id, callback_id)
                record = self._open.get(key)
                if record is None:
                    continue
                record.failure = KeptCallback(
                    account_id,
                    callback_id,
                    str(item.get("type", "")),
                    "",
                    now,
                    0,
                    dict(item),
                    KeptState.QUEUED,
                    trace=trace,
                )
                record.expires_at = max(record.expires_at, now + retention)
                if record.token == token:
                    record.lease_until = 0.0
                self._schedule(key, record.deadline)

    def unqueue_many(self, keys: Sequence[tuple[int, int]]) -> None:
        with self._lock:
            for key in keys:
                record = self._open.get(key)
                if record is not None and record.failure is not None and record.failure.queued:
                    record.failure = None

    def find_kept(self, account_id: int, callback_id: int) -> KeptCallback | None:
        now = self.now()
        with self._lock:
            record = self._open.get((account_id, callback_id))
            if record is None or record.expires_at <= now:
                return None
            return record.failure

    def knows(self, account_id: int, callback_id: int) -> bool:
        key = (account_id, callback_id)
        now = self.now()
        with self._lock:
            done = self._done.get(key)
            if done is not None and done[1] > now:
                return True
            record = self._open.get(key)
            return record is not None and record.deadline > now

    def fail(
        self,
        account_id: int,
        callback_id: int,
        token: str,
        error: str,
        item: Mapping[str, Any],
        retention: int,
        succeeded: Sequence[str] = (),
    ) -> None:
        now = self.now()
        with self._lock:
            record = self._open.get((account_id, callback_id))
            if record is None:
                return
            previous = record.failure.attempts if record.failure else 0
            record.failure = KeptCallback(
                account_id,
                callback_id,
                str(item.get("type", "")),
                error,
                now,
                previous + 1,
                dict(item),
                succeeded=tuple(succeeded),
            )
            record.expires_at = now + retention
            if record.token == token:
                record.lease_until = 0.0
            self._schedule((account_id, callback_id), record.deadline)

    def kept(self) -> list[KeptCallback]:
        now = self.now()
        with self._lock:
            failures = [
                r.failure
                for r in self._open.values()
                if r.failure is not None and r.expires_at > now
            ]
        return sorted(failures, key=lambda f: f.kept_at)

    def prune(self, older_than: float, accounts: Collection[int] | None = None) -> int:
        now = self.now()
        cutoff = now - older_than
        with self._lock:
            old = [
                r
                for (account_id, _), r in self._open.items()
                if r.failure is not None
                and r.failure.kept_at < cutoff
                and (accounts is None or account_id in accounts)
            ]
            for record in old:
                record.failure = None
            self._sweep(now)
            return len(old)

    def _sweep(self, now: float) -> None:
        """Forget the records whose deadline has passed."""
        deadlines = self._deadlines
        scheduled = self._scheduled
        while deadlines and deadlines[0][0] <= now:
            at, key = heapq.heappop(deadlines)
            if scheduled.get(key) != at:
                continue  # replaced by an earlier entry
            del scheduled[key]
            done = self._done.get(key)
            if done is not None:
                if done[1] <= now:
                    del self._done[key]
                else:
                    self._schedule(key, done[1])
                continue
            record = self._open.get(key)
            if record is not None:
                if record.deadline <= now:
                    del self._open[key]
                else:
                    self._schedule(key, record.deadline)
