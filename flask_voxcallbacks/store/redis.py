"""``redis://host:port/db``: shared by every worker on every host (needs the ``redis`` extra)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from typing import Any, Collection, Mapping, Sequence, cast

import redis

from ..safe_text import printable
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

# One hash per callback, ``cb:account_id:callback_id``, expiring with its record: ``digest`` pins
# the body of the first claim; ``token`` and ``lease`` (the end of the lease, in ms of the
# server's clock) while a worker holds the claim; ``done`` once handled; ``record`` (JSON) and
# ``attempts`` while its last attempt failed, with ``queued`` instead while it waits for its job in
# queue mode; ``ok`` (a JSON list) names the receivers that have succeeded for a failed
# callback. ``failed`` is a sorted set of the failed (and queued) callbacks, named
# ``account_id:callback_id``, by time.

# One call claims every key of a batch, in order. KEYS: the hash of each callback. ARGV: lease
# ms, ttl s, take queued ("1" or "0"), the token prefix, and the digests of the callbacks as a
# JSON array (one argument costs the client less to send than one per callback); the token of
# callback i is the prefix followed by i. Returns one letter per callback, its status:
# c(laimed), m(ismatch), d(one), q(ueued) or b(usy), in one string (read faster than a list);
# then, for each claimed callback whose receivers partly succeeded before, i and its ``ok``.
# A new key lives for the ttl, and never less than the lease.
_CLAIM = """
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local lease = tonumber(ARGV[1])
local ttl = math.max(tonumber(ARGV[2]) * 1000, lease)
local digests = cjson.decode(ARGV[5])
local statuses = {}
local result = {''}
for i = 1, #KEYS do
  local key, digest = KEYS[i], digests[i]
  local fields = redis.call('HMGET', key, 'digest', 'done', 'queued', 'lease', 'ok')
  local pinned = fields[1]
  if pinned and pinned ~= digest then
    statuses[i] = 'm'
  elseif fields[2] then
    statuses[i] = 'd'
  elseif fields[3] and ARGV[3] ~= '1' then
    statuses[i] = 'q'
  elseif fields[4] and tonumber(fields[4]) > now then
    statuses[i] = 'b'
  else
    redis.call('HSET', key, 'digest', digest, 'token', ARGV[4] .. i, 'lease', now + lease)
    if not pinned then
      redis.call('PEXPIRE', key, ttl)
    elseif redis.call('PTTL', key) < lease then
      redis.call('PEXPIRE', key, lease)
    end
    statuses[i] = 'c'
    if fields[5] then
      result[#result + 1] = i
      result[#result + 1] = fields[5]
    end
  end
end
result[1] = table.concat(statuses)
return result
"""
# The failed index names a callback by its hash's name without the prefix; each script that
# changes the index gets the prefix's length and cuts the name from the key.

# One call completes every callback of a batch. KEYS: the failed index, then the hash of each
# callback. ARGV: ttl s, the prefix's length. Whoever holds the claim, it goes: a done callback
# is never claimed again. A key without a pin (never claimed, or expired) is left alone: a done
# marker without a pin would take any body for a duplicate.
_COMPLETE = """
for i = 2, #KEYS do
  local key = KEYS[i]
  if redis.call('HEXISTS', key, 'digest') == 1 then
    redis.call('HSET', key, 'done', '1')
    redis.call('HDEL', key, 'token', 'lease', 'ok')
    if redis.call('HDEL', key, 'record', 'attempts', 'queued') > 0 then
      redis.call('ZREM', KEYS[1], string.sub(key, ARGV[2] + 1))
    end
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return 1
"""
# One call keeps the items of a batch as queued and releases their claims; a callback never
# claimed (no pin) or done is left alone. KEYS: the failed index, then the hash of each
# callback. ARGV: retention s, queued at, the prefix's length, then token and record for each
# callback.
_QUEUE = """
for i = 2, #KEYS do
  local key = KEYS[i]
  local token, record = ARGV[2 * i], ARGV[2 * i + 1]
  local fields = redis.call('HMGET', key, 'done', 'token', 'digest')
  if fields[3] and not fields[1] then
    redis.call('HSET', key, 'record', record, 'queued', '1')
    redis.call('EXPIRE', key, ARGV[1])
    redis.call('ZADD', KEYS[1], ARGV[2], string.sub(key, ARGV[3] + 1))
    if fields[2] == token then redis.call('HDEL', key, 'token', 'lease') end
  end
end
return 1
"""
# KEYS: the failed index, then the hash of each callback. ARGV: the prefix's length.
_UNQUEUE = """
for i = 2, #KEYS do
  if redis.call('HDEL', KEYS[i], 'queued') == 1 then
    redis.call('HDEL', KEYS[i], 'record', 'attempts')
    redis.call('ZREM', KEYS[1], string.sub(KEYS[i], ARGV[1] + 1))
  end
end
return 1
"""
# KEYS: the hash of the callback, the failed index. ARGV: token, record, failed at, retention s,
# the prefix's length, the receivers that succeeded (a JSON list, or empty).
_FAIL = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'token', 'lease')
end
if redis.call('HGET', KEYS[1], 'done') then return 0 end
redis.call('HDEL', KEYS[1], 'queued', 'ok')
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'ok', ARGV[6]) end
redis.call('HSET', KEYS[1], 'record', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], string.sub(KEYS[1], ARGV[5] + 1))
return 1
"""


logger = logging.getLogger("flask_voxcallbacks")


class RedisStore(Store):
    """One hash per callback with a TTL, claimed and updated by Lua scripts; every key of a
    namespace starts with ``voxcallbacks:<namespace>:`` (``voxcallbacks:`` without one).

    The claims and completions of a process go out on a connection of its own, shared by its
    threads under a lock, with commands packed by the store itself (redis-py's packing and
    connection pool cost a web worker 0.14 ms of CPU time per batch of 10). A completion does
    not wait for its reply (see complete_many); every other call of the store first reads that
    reply, so that it runs after the completion, as when the completion waited.
    """

    def __init__(self, client: redis.Redis, prefix: str = "voxcallbacks:") -> None:
        self.client = client
        self.prefix = prefix
        self._hash_prefix = f"{prefix}cb:"
        #: What the scripts cut from a hash's name to name the callback in the failed index.
        self._name_start = len(self._hash_prefix)
        self._failed_key = f"{prefix}failed"
        self._claim_sha = _sha(_CLAIM)
        self._complete_sha = _sha(_COMPLETE)
        self._fail = client.register_script(_FAIL)
        self._queue = client.register_script(_QUEUE)
        self._unqueue = client.register_script(_UNQUEUE)
        self._lock = threading.Lock()
        #: The connection of this process's claims and completions, and the process that opened
        #: it (a redis-py connection, whose class and typing change between its versions).
        self._sender: Any = None
        self._pid = 0
        #: The completion sent whose reply has not been read yet, as sent.
        self._unanswered: bytes | None = None
        #: Whether the client's connection pool is the store's own (from_url), to disconnect on
        #: close: redis-py before 5.0.1 leaves the pool of a client made by from_url open.
        self._owns_pool = False

    @classmethod
    def from_url(cls, url: str, namespace: str = "") -> RedisStore:
        prefix = f"voxcallbacks:{namespace}:" if namespace else "voxcallbacks:"
        store = cls(redis.Redis.from_url(url), prefix)
        store._owns_pool = True
        return store

    def _hash(self, account_id: int, callback_id: int) -> str:
        """The name of a callback's hash; without the prefix, its name in the failed index."""
        return f"{self._hash_prefix}{_name(account_id, callback_id)}"

    def claim_many(
        self,
        keys: Sequence[ToClaim],
        lease_seconds: int,
        ttl: int,
        take_queued: bool = False,
    ) -> list[Claim]:
        if not keys:
            return []
        prefix = f"{self.new_token()}."
        names = [self._hash(account_id, callback_id) for account_id, callback_id, _ in keys]
        digests = json.dumps([digest for _, _, digest in keys])
        args = [lease_seconds * 1000, ttl, "1" if take_queued else "0", prefix, digests]
        answer = self._call(_pack("EVALSHA", self._claim_sha, len(names), *names, *args))
        claims = [
            Claim(CLAIMED, f"{prefix}{i}") if status == "c" else Claim(_STATUSES[status])
            for i, status in enumerate(_text(answer[0]), 1)
        ]
        for index, succeeded in zip(answer[1::2], answer[2::2]):
            i = int(index)
            claims[i - 1] = Claim(CLAIMED, f"{prefix}{i}", _names(succeeded))
        return claims

    def queue_many(self, queued: Sequence[ToQueue], retention: int, trace: str = "") -> None:
        if not queued:
            return
        self._settle()
        now = self.now()
        names = [self._failed_key]
        args: list[Any] = [retention, now, self._name_start]
        for account_id, callback_id, token, item in queued:
            names.append(self._hash(account_id, callback_id))
            args += [token, _record(item, "", now, trace)]
        self._queue(keys=names, args=args)

    def unqueue_many(self, keys: Sequence[tuple[int, int]]) -> None:
        if not keys:
            return
        self._settle()
        names = [self._failed_key, *(self._hash(a, c) for a, c in keys)]
        self._unqueue(keys=names, args=[self._name_start])

    def find_kept(self, account_id: int, callback_id: int) -> KeptCallback | None:
        self._settle()
        # redis-py before 7 types every answer as possibly awaitable; this client is synchronous.
        values = cast(
            list[Any], self.client.hmget(self._hash(account_id, callback_id), _RECORD_FIELDS)
        )
        return _failed(_name(account_id, callback_id), values)

    def knows(self, account_id: int, callback_id: int) -> bool:
        self._settle()
        return bool(self.client.exists(self._hash(account_id, callback_id)))

    @property
    def identity(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        return f"redis://{where}/{kwargs.get('db', 0)}#{self.prefix}"

    def complete_many(self, claimed: Sequence[ToComplete], ttl: int) -> None:
        """Send the completions in one call, and read its reply with the next call of the
        store: the request is answered meanwhile. The server runs it before any later call of
        this process, which reads the reply first."""
        if not claimed:
            return
        names = [self._failed_key, *(self._hash(a, c) for a, c, _ in claimed)]
        command = _pack("EVALSHA", self._complete_sha, len(names), *names, ttl, self._name_start)
        with self._lock:
            self._read_reply()
            try:
                self._connection().send_packed_command([command], check_health=False)
            except redis.RedisError:
                self._drop()
                raise
            self._unanswered = command

    def _call(self, command: bytes) -> Any:
        """Send a packed script call on the store's connection and return its reply. A server
        that lacks the script (restarted, or its scripts flushed) gets it, and the call again;
        a connection found broken (a restarted server) is replaced once."""
        with self._lock:
            self._read_reply()
            for attempt in range(2):
                try:
                    return _run_script(self._connection(), command)
                except (redis.ConnectionError, redis.TimeoutError):
                    self._drop()
                    if attempt:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> Any:
        """The connection of this process's claims and completions, opened on first use with
        the scripts loaded (a process forked from another opens its own). Call with the lock
        held."""
        if self._sender is None or self._pid != os.getpid():
            self._sender = self.client.connection_pool.make_connection()
            self._pid = os.getpid()
            for script in (_CLAIM, _COMPLETE):
                self._sender.send_packed_command([_pack("SCRIPT", "LOAD", script)])
                self._sender.read_response()
        return self._sender

    def _drop(self) -> None:
        """Close the connection of the completions (the next one opens another). Call with the
        lock held."""
        if self._sender is not None:  # redis-py shuts a socket down only in its own process
            self._sender.disconnect()
        self._sender = None

    def _settle(self) -> None:
        """Read the reply of the completion sent last, if any."""
        if self._unanswered is not None:
            with self._lock:
                self._read_reply()

    def _read_reply(self) -> None:
        """Read the reply of the completion sent last; log it if it failed (its callbacks stay
        claimed until their lease ends, as when a completion raises). A server that lacks the
        script (restarted, or its scripts flushed) gets it, and the completion again. Call with
        the lock held."""
        command, self._unanswered = self._unanswered, None
        if command is None or self._sender is None or self._pid != os.getpid():
            return  # nothing sent, or sent by the parent of this forked process: its reply
        sender = self._sender
        try:
            try:
                sender.read_response()
            except redis.exceptions.NoScriptError:
                _load_and_run(sender, command)
        except redis.RedisError as error:
            if not isinstance(error, redis.ResponseError):
                self._drop()
            logger.error(
                "store error while recording handled callbacks as done (%s); they stay"
                " claimed until their lease ends",
                printable(f"{type(error).__name__}: {error}", limit=300),
            )

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
        self._settle()
        now = self.now()
        ok = json.dumps(list(succeeded)) if succeeded else ""
        self._fail(
            keys=[self._hash(account_id, callback_id), self._failed_key],
            args=[token, _record(item, error, now), now, retention, self._name_start, ok],
        )

    def kept(self) -> list[KeptCallback]:
        self._settle()
        members = cast(list[bytes], self.client.zrange(self._failed_key, 0, -1))
        fields = [_text(f) for f in members]
        pipeline = self.client.pipeline(transaction=False)
        for field in fields:
            pipeline.hmget(f"{self._hash_prefix}{field}", _RECORD_FIELDS)
        result, expired = [], []
        for field, values in zip(fields, pipeline.execute()):
            found = _failed(field, values)
            if found is None:
                expired.append(field)
            else:
                result.append(found)
        if expired:
            self.client.zrem(self._failed_key, *expired)
        return result

    def prune(self, older_than: float, accounts: Collection[int] | None = None) -> int:
        cutoff = self.now() - older_than
        old = [
            f
            for f in self.kept()
            if f.kept_at < cutoff and (accounts is None or f.account_id in accounts)
        ]
        if old:
            # The failure goes; the pin stays until the hash expires.
            pipeline = self.client.pipeline(transaction=False)
            for f in old:
                pipeline.hdel(
                    self._hash(f.account_id, f.callback_id), "record", "attempts", "queued", "ok"
                )
            pipeline.zrem(self._failed_key, *(_name(f.account_id, f.callback_id) for f in old))
            pipeline.execute()
        return len(old)

    def warnings(self) -> list[str]:
        try:
            config = cast(dict[str, Any], self.client.config_get("maxmemory-policy"))
            policy = _text(config.get("maxmemory-policy"))
            persistence = cast(dict[str, Any], self.client.config_get("appendonly"))
            saves = cast(dict[str, Any], self.client.config_get("save"))
        except redis.ResponseError:
            return [
                "the Redis server refuses CONFIG GET: make sure its maxmemory-policy is"
                " noeviction and that it persists its data (appendonly yes)"
            ]
        found = []
        if policy != "noeviction":
            found.append(
                f"Redis maxmemory-policy is {policy}: under memory pressure it may evict done"
                " markers and pins, and an evicted callback id can be replayed with any body;"
                " set maxmemory-policy noeviction"
            )
        if _text(persistence.get("appendonly")) != "yes" and not _text(saves.get("save")):
            found.append(
                "Redis persists nothing (appendonly no, no save points): failed callbacks and"
                " done markers are lost when it restarts; set appendonly yes"
            )
        return found

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._read_reply()
            self._drop()
        self.client.close()
        if self._owns_pool:
            self.client.connection_pool.disconnect()


def _sha(script: str) -> str:
    """The name Redis gives a script (EVALSHA)."""
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


_SCRIPTS = {_sha(script).encode(): script for script in (_CLAIM, _COMPLETE)}


def _pack(*args: str | int) -> bytes:
    """A command in the Redis protocol (RESP): its arguments as bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else b"%d" % arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _run_script(sender: Any, command: bytes) -> Any:
    """Send a packed EVALSHA and return its reply; when the server lacks the script, load it
    and send the call again."""
    sender.send_packed_command([command], check_health=False)
    try:
        return sender.read_response()
    except redis.exceptions.NoScriptError:
        return _load_and_run(sender, command)


def _load_and_run(sender: Any, command: bytes) -> Any:
    """Load the script a packed EVALSHA names, then send the call again; its reply."""
    sha = command.split(b"\r\n", 5)[4]  # *N, $7, EVALSHA, $40, the script's name
    sender.send_packed_command([_pack("SCRIPT", "LOAD", _SCRIPTS[sha])])
    sender.read_response()
    sender.send_packed_command([command], check_health=False)
    return sender.read_response()


def _name(account_id: int, callback_id: int) -> str:
    """How the failed index, and the hash's name after its prefix, name a callback."""
    return f"{account_id}:{callback_id}"


_STATUSES = {"b": BUSY, "d": DONE, "m": MISMATCH, "q": QUEUED}
#: The fields of a callback's hash that make its failed or queued record.
_RECORD_FIELDS = ["record", "attempts", "queued", "ok"]


def _names(value: Any) -> tuple[str, ...]:
    """The receiver identities of an ``ok`` field."""
    return tuple(json.loads(value)) if value else ()


def _record(item: Mapping[str, Any], error: str, at: float, trace: str = "") -> str:
    """The JSON kept as a callback's ``record`` while it is failed or queued (with the trace
    context of the request that queued it)."""
    record = {"type": str(item.get("type", "")), "error": error, "failed_at": at, "item": item}
    if trace:
        record["trace"] = trace
    return json.dumps(record)


def _failed(field: str, values: Sequence[Any]) -> KeptCallback | None:
    """The failed or queued callback named ``field``, from its hash's ``record``, ``attempts``,
    ``queued`` and ``ok``; None when it has no record."""
    raw_record, attempts, queued, ok = values
    if raw_record is None:
        return None
    account_id, callback_id = (int(part) for part in field.split(":"))
    record = json.loads(raw_record)
    return KeptCallback(
        account_id,
        callback_id,
        record["type"],
        record["error"],
        record["failed_at"],
        int(attempts or 0),
        record["item"],
        KeptState.QUEUED if queued is not None else KeptState.FAILED,
        _names(ok),
        record.get("trace", ""),
    )


def _text(value: Any) -> str:
    """Redis replies are bytes unless the client decodes them."""
    return value.decode() if isinstance(value, bytes) else str(value)
