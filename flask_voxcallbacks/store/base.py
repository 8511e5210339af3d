"""The store interface: atomic claims pinned to a body digest, done markers, kept callbacks."""

from __future__ import annotations

import abc
import itertools
import os
import secrets
import time
import warnings
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Collection, Mapping, NamedTuple, Sequence

_counter = itertools.count()
#: The random part of this process's claim tokens, drawn again in a forked child.
_prefix = secrets.token_hex(8)


def _new_prefix() -> None:
    global _prefix
    _prefix = secrets.token_hex(8)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_new_prefix)


class Name(str, Enum):
    """A fixed name that reads as its value in logs, JSON and comparisons with text."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class ClaimStatus(Name):
    """The answer of :meth:`Store.claim_many` for one callback."""

    #: Taken: this worker runs it (the claim's ``token`` proves it).
    CLAIMED = "claimed"
    #: Handled already.
    DONE = "done"
    #: Claimed by another worker whose lease has not ended.
    BUSY = "busy"
    #: Pinned to another body.
    MISMATCH = "mismatch"
    #: Kept for its job (queue mode); only a job or a replay takes it.
    QUEUED = "queued"


CLAIMED = ClaimStatus.CLAIMED
DONE = ClaimStatus.DONE
BUSY = ClaimStatus.BUSY
MISMATCH = ClaimStatus.MISMATCH
QUEUED = ClaimStatus.QUEUED


class KeptState(Name):
    """Why a callback is kept with its item."""

    #: Its last attempt failed; a redelivery, a job's retry or ``replay`` runs it again.
    FAILED = "failed"
    #: It waits for its job (queue mode).
    QUEUED = "queued"


#: The command that creates the tables of the stores in a database the user owns.
INIT_DB = "flask voxcallbacks init-db"


class TableMissingError(RuntimeError):
    """The store's table does not exist yet: ``flask voxcallbacks init-db`` creates it."""


def table_name(namespace: str = "") -> str:
    """The table of a namespace in an SQL database: ``voxcallbacks`` or
    ``voxcallbacks_<namespace>``."""
    return f"voxcallbacks_{namespace}" if namespace else "voxcallbacks"


class Key(NamedTuple):
    """A callback in the store: callback ids are unique within an account."""

    account_id: int
    callback_id: int


# What the batched methods take, one tuple per callback (plain tuples: a batch of 1,000 builds
# them on the hot path).
#: ``(account_id, callback_id, digest)``: a callback to claim, pinned to its body's digest.
ToClaim = tuple[int, int, str]
#: ``(account_id, callback_id, token)``: a claimed callback to record as done.
ToComplete = tuple[int, int, str]
#: ``(account_id, callback_id, token, item)``: a claimed callback to keep for its job.
ToQueue = tuple[int, int, str, Mapping[str, Any]]


class Claim(NamedTuple):
    """The answer to a claim: its ``status``; ``token`` proves ownership of a CLAIMED key;
    ``succeeded`` names the receivers that an earlier attempt of a CLAIMED callback recorded as
    succeeded (they are not run again)."""

    status: ClaimStatus
    token: str = ""
    succeeded: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeptCallback:
    """A callback kept with its item: FAILED (its handlers failed; kept until an attempt succeeds
    or its retention ends) or QUEUED (waiting for its job in queue mode; ``error`` is empty).

    ``kept_at`` is when it last failed or was queued. ``item`` is the body pinned at the first
    authentic arrival, without its ``hash``. ``succeeded`` names the receivers that have succeeded
    for it (see :func:`receiver_ids <flask_voxcallbacks.dispatch.receiver_ids>`); the others are
    named in ``error``. ``trace``, while it is queued, is the trace context of the request that
    queued it (a W3C ``traceparent``, with ``VOXCALLBACKS_TRACING``); else ``""``.
    """

    account_id: int
    callback_id: int
    type: str
    error: str
    kept_at: float
    attempts: int
    item: Mapping[str, Any] = field(repr=False)
    state: KeptState = KeptState.FAILED
    succeeded: tuple[str, ...] = ()
    trace: str = ""

    @property
    def key(self) -> Key:
        return Key(self.account_id, self.callback_id)

    @property
    def queued(self) -> bool:
        return self.state is KeptState.QUEUED

    @property
    def failed_at(self) -> float:
        """Deprecated: ``kept_at``."""
        warnings.warn(
            "KeptCallback.failed_at is deprecated; use kept_at", DeprecationWarning, stacklevel=2
        )
        return self.kept_at


def deprecated_name(module: str, name: str) -> type[KeptCallback]:
    """What a module's ``__getattr__`` answers for a name of an earlier release (``FailedCallback``
    from this module or the package): the current class, with a warning that names the caller
    (two frames up: past this function and the ``__getattr__``)."""
    if name == "FailedCallback":
        warnings.warn(
            "FailedCallback is deprecated; use KeptCallback", DeprecationWarning, stacklevel=3
        )
        return KeptCallback
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    return deprecated_name(__name__, name)


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

    #: Whether the handling runs each callback in a transaction of the store's, which commits
    #: the receivers' own writes with the done marker (``VOXCALLBACKS_STORE = "sqlalchemy"``).
    transactional = False

    @abc.abstractmethod
    def claim_many(
        self,
        keys: Sequence[ToClaim],
        lease_seconds: int,
        ttl: int,
        take_queued: bool = False,
    ) -> list[Claim]:
        """Claim each ``(account_id, callback_id, digest)`` in order, as ``claim`` would, in one
        round trip to the store; a key repeated in ``keys`` is BUSY (or MISMATCH) the second
        time. A queued callback answers QUEUED, unless ``take_queued`` (a job, a replay) is set:
        then it is claimed like a failed one."""

    @abc.abstractmethod
    def queue_many(self, queued: Sequence[ToQueue], retention: int, trace: str = "") -> None:
        """Keep the item of each claimed ``(account_id, callback_id, token, item)`` as queued
        (for ``retention`` s, listed by ``failed``) with the ``trace`` context of the request
        that queued them, and release its claim, in one round trip."""

    @abc.abstractmethod
    def unqueue_many(self, keys: Sequence[tuple[int, int]]) -> None:
        """Forget that these callbacks are queued (their jobs could not be enqueued): the next
        arrival claims them afresh. Done or failed callbacks are left as they are."""

    @abc.abstractmethod
    def find_kept(self, account_id: int, callback_id: int) -> KeptCallback | None:
        """The kept callback (failed or queued) of one key, or None when it has none."""

    def pending(self, account_id: int, callback_id: int) -> KeptCallback | None:
        """Deprecated: :meth:`find_kept`."""
        warnings.warn(
            "Store.pending is deprecated; use find_kept", DeprecationWarning, stacklevel=2
        )
        return self.find_kept(account_id, callback_id)

    @abc.abstractmethod
    def complete_many(self, claimed: Sequence[ToComplete], ttl: int) -> None:
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
    def kept(self) -> list[KeptCallback]:
        """Every kept callback (failed or queued) whose retention has not ended, oldest first."""

    def failed(self) -> list[KeptCallback]:
        """Deprecated: :meth:`kept`."""
        warnings.warn("Store.failed is deprecated; use kept", DeprecationWarning, stacklevel=2)
        return self.kept()

    @abc.abstractmethod
    def prune(self, older_than: float, accounts: Collection[int] | None = None) -> int:
        """Remove failure records (error and item) older than ``older_than`` seconds, of the
        given ``accounts`` only when they are given, and forget expired records; return how many
        failures were removed. A pruned key stays pinned to its body until its record expires."""

    @abc.abstractmethod
    def knows(self, account_id: int, callback_id: int) -> bool:
        """Whether the store holds any record of the key (claimed, done, failed or queued)."""

    @property
    def identity(self) -> str:
        """Which store this is, without any password: two processes whose stores have the same
        identity share their records. Jobs carry it, so that a worker on another store refuses
        them instead of finding nothing to run."""
        return f"{type(self).__name__}:{id(self)}"

    def create_tables(self) -> list[str]:
        """Create the tables the store needs in a database the user owns (``flask voxcallbacks
        init-db``) and return their names; a store that sets itself up returns none."""
        return []

    def warnings(self) -> list[str]:
        """Set-up problems that weaken a guarantee (shown by ``flask voxcallbacks check``)."""
        return []

    def close(self) -> None:  # noqa: B027 - a no-op is right for stores without connections
        """Release connections."""

    @staticmethod
    def new_token() -> str:
        """A token no other claim ever gets: a random prefix per process and a counter."""
        return f"{_prefix}{next(_counter)}"

    @staticmethod
    def now() -> float:
        return time.time()
