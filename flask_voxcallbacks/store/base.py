"""The store interface: atomic claims pinned to a body digest, done markers, failure records."""

from __future__ import annotations

import abc
import itertools
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Collection, Mapping, Sequence

_counter = itertools.count()
_prefix = (0, "")

#: Results of :meth:`Store.claim`.
CLAIMED = "claimed"
DONE = "done"
BUSY = "busy"
MISMATCH = "mismatch"
#: The callback waits in a queue for a job (queue mode); only a job or a replay takes it.
QUEUED = "queued"


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: ``status`` is CLAIMED, DONE, BUSY, MISMATCH or QUEUED; ``token``
    proves ownership of a CLAIMED key; ``succeeded`` names the receivers that an earlier attempt
    of a CLAIMED callback recorded as succeeded (they are not run again)."""

    status: str
    token: str = ""
    succeeded: tuple[str, ...] = ()


@dataclass(frozen=True)
class FailedCallback:
    """A callback whose handlers failed, kept until an attempt succeeds or its retention ends;
    or, when ``queued`` is true, a callback waiting for its job in queue mode (``error`` is empty
    and ``failed_at`` is when it was queued).

    ``item`` is the body pinned at the first authentic arrival, without its ``hash``.
    ``succeeded`` names the receivers that have succeeded for it (see :func:`receiver_ids
    <flask_voxcallbacks.dispatch.receiver_ids>`); the others are named in ``error``.
    """

    account_id: int
    callback_id: int
    type: str
    error: str
    failed_at: float
    attempts: int
    item: Mapping[str, Any] = field(repr=False)
    queued: bool = False
    succeeded: tuple[str, ...] = ()


class Store(abc.ABC):
    """Where claims, done markers and failures live.

    Each ``(account_id, callback_id)`` key has a record pinned to the digest of the body that first
    claimed it. The record lives ``ttl`` seconds from its first claim, ``ttl`` seconds from its
    completion, or ``retention`` seconds from its last failure; after that the key is new again.

    ``claim`` is atomic across every process sharing the store: of concurrent claims on one key,
    exactly one gets CLAIMED. A claim with another digest than the pinned one gets MISMATCH and
    changes nothing. Otherwise a key is claimable when it is new, failed, or claimed past its lease
    (the worker holding it is presumed dead); a done key answers DONE and a leased one BUSY.
    """

    @abc.abstractmethod
    def claim_many(
        self,
        keys: Sequence[tuple[int, int, str]],
        lease_seconds: int,
        ttl: int,
        take_queued: bool = False,
    ) -> list[Claim]:
        """Claim each ``(account_id, callback_id, digest)`` in order, as ``claim`` would, in one
        round trip to the store; a key repeated in ``keys`` is BUSY (or MISMATCH) the second
        time. A queued callback answers QUEUED, unless ``take_queued`` (a job, a replay) is set:
        then it is claimed like a failed one."""

    @abc.abstractmethod
    def queue_many(
        self, queued: Sequence[tuple[int, int, str, Mapping[str, Any]]], retention: int
    ) -> None:
        """Keep the item of each claimed ``(account_id, callback_id, token, item)`` as queued
        (for ``retention`` s, listed by ``failed``) and release its claim, in one round trip."""

    @abc.abstractmethod
    def unqueue_many(self, keys: Sequence[tuple[int, int]]) -> None:
        """Forget that these callbacks are queued (their jobs could not be enqueued): the next
        arrival claims them afresh. Done or failed callbacks are left as they are."""

    @abc.abstractmethod
    def pending(self, account_id: int, callback_id: int) -> FailedCallback | None:
        """The queued or failed record of one callback, or None when it has none."""

    @abc.abstractmethod
    def complete_many(self, claimed: Sequence[tuple[int, int, str]], ttl: int) -> None:
        """Complete each ``(account_id, callback_id, token)``, as ``complete`` would, in one
        round trip to the store."""

    def claim(
        self, account_id: int, callback_id: int, digest: str, lease_seconds: int, ttl: int
    ) -> Claim:
        """Try to take ``(account_id, callback_id)`` for processing of the body ``digest``."""
        return self.claim_many([(account_id, callback_id, digest)], lease_seconds, ttl)[0]

    def complete(self, account_id: int, callback_id: int, token: str, ttl: int) -> None:
        """Mark a claimed callback handled; drop its failure record; remember it for ``ttl`` s."""
        self.complete_many([(account_id, callback_id, token)], ttl)

    @abc.abstractmethod
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
        """Record a failed attempt with its item (kept ``retention`` s) and the receivers that
        have succeeded for it (the next claim returns them), and release the claim.

        A callback that another worker completed in the meantime stays done.
        """

    @abc.abstractmethod
    def failed(self) -> list[FailedCallback]:
        """Every callback whose last attempt failed and whose retention has not ended, oldest
        first."""

    @abc.abstractmethod
    def prune(self, older_than: float, accounts: Collection[int] | None = None) -> int:
        """Remove failure records (error and item) older than ``older_than`` seconds, of the
        given ``accounts`` only when they are given, and forget expired records; return how many
        failures were removed. A pruned key stays pinned to its body until its record expires."""

    def warnings(self) -> list[str]:
        """Set-up problems that weaken a guarantee (shown by ``flask voxcallbacks check``)."""
        return []

    def close(self) -> None:  # noqa: B027 - a no-op is right for stores without connections
        """Release connections."""

    @staticmethod
    def new_token() -> str:
        """A token no other claim ever gets: a random prefix per process and a counter."""
        global _prefix
        pid = os.getpid()
        if _prefix[0] != pid:  # a new process, or a fork of one
            _prefix = (pid, secrets.token_hex(8))
        return f"{_prefix[1]}{next(_counter)}"

    @staticmethod
    def now() -> float:
        return time.time()
