"""The store interface: atomic claims, done markers and the failed-callback record."""

from __future__ import annotations

import abc
import time
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

#: Results of :meth:`Store.claim`.
CLAIMED = "claimed"
DONE = "done"
BUSY = "busy"


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: ``status`` is CLAIMED, DONE or BUSY; ``token`` proves ownership."""

    status: str
    token: str = ""


@dataclass(frozen=True)
class FailedCallback:
    """A callback whose handlers failed, kept until a later attempt succeeds."""

    account_id: int
    callback_id: int
    type: str
    error: str
    failed_at: float
    attempts: int
    item: Mapping[str, Any]


class Store(abc.ABC):
    """Where claims, done markers and failures live.

    ``claim`` is atomic across every process sharing the store: of concurrent claims on one key,
    exactly one gets CLAIMED. A key is claimable when it is new, failed, done past its TTL, or
    claimed past its lease (the worker holding it is presumed dead).
    """

    @abc.abstractmethod
    def claim(self, account_id: int, callback_id: int, lease_seconds: int) -> Claim:
        """Try to take ``(account_id, callback_id)`` for processing."""

    @abc.abstractmethod
    def complete(self, account_id: int, callback_id: int, token: str, ttl: int) -> None:
        """Mark a claimed callback handled; drop its failure record; remember it for ``ttl`` s."""

    @abc.abstractmethod
    def fail(
        self,
        account_id: int,
        callback_id: int,
        token: str,
        error: str,
        item: Mapping[str, Any],
    ) -> None:
        """Record a failed attempt with its raw item, and release the claim."""

    @abc.abstractmethod
    def failed(self) -> list[FailedCallback]:
        """Every callback whose last attempt failed, oldest first."""

    @abc.abstractmethod
    def prune(self, older_than: float) -> int:
        """Remove failure records older than ``older_than`` seconds; return how many."""

    def close(self) -> None:  # noqa: B027 - a no-op is right for stores without connections
        """Release connections."""

    @staticmethod
    def new_token() -> str:
        return uuid.uuid4().hex

    @staticmethod
    def now() -> float:
        return time.time()
