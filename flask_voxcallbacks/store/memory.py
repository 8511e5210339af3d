"""``memory://``: a store inside one process, for development and single-process servers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Mapping

from .base import BUSY, CLAIMED, DONE, Claim, FailedCallback, Store

Key = tuple[int, int]


@dataclass
class _Entry:
    token: str = ""
    lease_until: float = 0.0
    done_until: float = 0.0


class MemoryStore(Store):
    """Claims and failures in dictionaries guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Key, _Entry] = {}
        self._failures: dict[Key, FailedCallback] = {}
        self._claims_since_sweep = 0

    def claim(self, account_id: int, callback_id: int, lease_seconds: int) -> Claim:
        key = (account_id, callback_id)
        now = self.now()
        with self._lock:
            self._sweep(now)
            entry = self._entries.setdefault(key, _Entry())
            if entry.done_until > now:
                return Claim(DONE)
            if entry.lease_until > now:
                return Claim(BUSY)
            entry.token = self.new_token()
            entry.lease_until = now + lease_seconds
            return Claim(CLAIMED, entry.token)

    def complete(self, account_id: int, callback_id: int, token: str, ttl: int) -> None:
        key = (account_id, callback_id)
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
            entry.done_until = self.now() + ttl
            if entry.token == token:
                entry.lease_until = 0.0
            self._failures.pop(key, None)

    def fail(
        self,
        account_id: int,
        callback_id: int,
        token: str,
        error: str,
        item: Mapping[str, Any],
    ) -> None:
        key = (account_id, callback_id)
        with self._lock:
            previous = self._failures.get(key)
            self._failures[key] = FailedCallback(
                account_id,
                callback_id,
                str(item.get("type", "")),
                error,
                self.now(),
                (previous.attempts if previous else 0) + 1,
                dict(item),
            )
            entry = self._entries.get(key)
            if entry is not None and entry.token == token:
                entry.lease_until = 0.0

    def failed(self) -> list[FailedCallback]:
        with self._lock:
            return sorted(self._failures.values(), key=lambda f: f.failed_at)

    def prune(self, older_than: float) -> int:
        cutoff = self.now() - older_than
        with self._lock:
            old = [key for key, f in self._failures.items() if f.failed_at < cutoff]
            for key in old:
                del self._failures[key]
            self._sweep(self.now(), force=True)
            return len(old)

    def _sweep(self, now: float, force: bool = False) -> None:
        """Drop expired done markers and leases now and then, so memory stays bounded."""
        self._claims_since_sweep += 1
        if not force and self._claims_since_sweep < 1000:
            return
        self._claims_since_sweep = 0
        stale = [
            key
            for key, entry in self._entries.items()
            if entry.done_until <= now and entry.lease_until <= now and key not in self._failures
        ]
        for key in stale:
            del self._entries[key]
