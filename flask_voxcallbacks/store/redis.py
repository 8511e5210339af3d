"""``redis://host:port/db``: shared by every worker on every host (needs the ``redis`` extra)."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import redis

from .base import BUSY, CLAIMED, DONE, MISMATCH, QUEUED, Claim, FailedCallback, Store

# Keys per callback (field = "account_id:callback_id"): ``rec:`` a hash with the pinned
# ``digest`` and ``done``, expiring with the record; ``claim:`` the lease token (PX lease);
# ``failure:`` a hash with the failure ``record`` (JSON) and ``attempts``, and ``queued`` while
# the callback waits for its job in queue mode, expiring with the retention. ``failed`` is a
# sorted set of the failed (and queued) fields by time.

# One call claims every key of a batch, in order. KEYS: rec, claim, failure for each key.
# ARGV: lease ms, ttl s, take queued ("1" or "0"), then digest, token for each key. Returns one
# status per key.
_CLAIM = """
local statuses = {}
for i = 1, #KEYS / 3 do
  local rec, claim, failure = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local digest, token = ARGV[2 * i + 2], ARGV[2 * i + 3]
  local fields = redis.call('HMGET', rec, 'digest', 'done')
  local pinned = fields[1]
  if pinned and pinned ~= digest then
    statuses[i] = 'mismatch'
  elseif fields[2] then
    statuses[i] = 'done'
  elseif ARGV[3] ~= '1' and redis.call('HEXISTS', failure, 'queued') == 1 then
    statuses[i] = 'queued'
  elseif not redis.call('SET', claim, token, 'NX', 'PX', ARGV[1]) then
    statuses[i] = 'busy'
  else
    if not pinned then
      redis.call('HSET', rec, 'digest', digest)
      redis.call('EXPIRE', rec, ARGV[2])
    elseif redis.call('PTTL', rec) < tonumber(ARGV[1]) then
      redis.call('PEXPIRE', rec, ARGV[1])
    end
    statuses[i] = 'claimed'
  end
end
return statuses
"""
# One call completes every callback of a batch. KEYS: failed index, then rec, claim, failure
# for each callback. ARGV: ttl s, then token, field for each callback.
_COMPLETE = """
for i = 1, (#KEYS - 1) / 3 do
  local rec, claim, failure = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local token, field = ARGV[2 * i], ARGV[2 * i + 1]
  redis.call('HSET', rec, 'done', '1')
  redis.call('EXPIRE', rec, ARGV[1])
  if redis.call('GET', claim) == token then redis.call('DEL', claim) end
  redis.call('DEL', failure)
  redis.call('ZREM', KEYS[1], field)
end
return 1
"""
# One call keeps the items of a batch as queued. KEYS: failed index, then rec, claim, failure
# for each callback. ARGV: retention s, queued at, then token, field, record for each callback.
_QUEUE = """
for i = 1, (#KEYS - 1) / 3 do
  local rec, claim, failure = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local token, field, record = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  if not redis.call('HGET', rec, 'done') then
    redis.call('HSET', failure, 'record', record, 'queued', '1')
    redis.call('EXPIRE', failure, ARGV[1])
    redis.call('ZADD', KEYS[1], ARGV[2], field)
    if redis.call('TTL', rec) < tonumber(ARGV[1]) then redis.call('EXPIRE', rec, ARGV[1]) end
    if redis.call('GET', claim) == token then redis.call('DEL', claim) end
  end
end
return 1
"""
# KEYS: failed index, then failure for each callback. ARGV: field for each callback.
_UNQUEUE = """
for i = 2, #KEYS do
  if redis.call('HEXISTS', KEYS[i], 'queued') == 1 then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return 1
"""
# KEYS: rec, claim, failure, failed index. ARGV: token, field, record, failed_at, retention s.
_FAIL = """
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if redis.call('HGET', KEYS[1], 'done') then return 0 end
redis.call('HDEL', KEYS[3], 'queued')
redis.call('HSET', KEYS[3], 'record', ARGV[3])
redis.call('HINCRBY', KEYS[3], 'attempts', 1)
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisStore(Store):
    """Claims as ``SET NX PX`` keys, records and failures as hashes with a TTL."""

    def __init__(self, client: redis.Redis, prefix: str = "voxcallbacks:") -> None:
        self.client = client
        self.prefix = prefix
        self._failed_key = f"{prefix}failed"
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._fail = client.register_script(_FAIL)
        self._queue = client.register_script(_QUEUE)
        self._unqueue = client.register_script(_UNQUEUE)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        return cls(redis.Redis.from_url(url))

    def _keys(self, account_id: int, callback_id: int) -> tuple[str, str, str, str]:
        """The record, claim and failure keys of a callback, and its field name."""
        field = f"{account_id}:{callback_id}"
        p = self.prefix
        return f"{p}rec:{field}", f"{p}claim:{field}", f"{p}failure:{field}", field

    def claim_many(
        self,
        keys: Sequence[tuple[int, int, str]],
        lease_seconds: int,
        ttl: int,
        take_queued: bool = False,
    ) -> list[Claim]:
        if not keys:
            return []
        tokens = [self.new_token() for _ in keys]
        names: list[str] = []
        args: list[Any] = [lease_seconds * 1000, ttl, "1" if take_queued else "0"]
        for (account_id, callback_id, digest), token in zip(keys, tokens):
            rec, claim, failure, _ = self._keys(account_id, callback_id)
            names += [rec, claim, failure]
            args += [digest, token]
        statuses = self._claim(keys=names, args=args)
        return [
            Claim(CLAIMED, token)
            if (status := _text(raw)) == "claimed"
            else Claim(_STATUSES.get(status, BUSY))
            for raw, token in zip(statuses, tokens)
        ]

    def queue_many(
        self, queued: Sequence[tuple[int, int, str, Mapping[str, Any]]], retention: int
    ) -> None:
        if not queued:
            return
        now = self.now()
        names = [self._failed_key]
        args: list[Any] = [retention, now]
        for account_id, callback_id, token, item in queued:
            rec, claim, failure, field = self._keys(account_id, callback_id)
            names += [rec, claim, failure]
            args += [token, field, _record(item, "", now)]
        self._queue(keys=names, args=args)

    def unqueue_many(self, keys: Sequence[tuple[int, int]]) -> None:
        if not keys:
            return
        names = [self._failed_key]
        fields = []
        for account_id, callback_id in keys:
            _, _, failure, field = self._keys(account_id, callback_id)
            names.append(failure)
            fields.append(field)
        self._unqueue(keys=names, args=fields)

    def pending(self, account_id: int, callback_id: int) -> FailedCallback | None:
        _, _, failure, field = self._keys(account_id, callback_id)
        values = self.client.hmget(failure, ["record", "attempts", "queued"])
        return _failed(field, values)

    def complete_many(self, claimed: Sequence[tuple[int, int, str]], ttl: int) -> None:
        if not claimed:
            return
        names = [self._failed_key]
        args: list[Any] = [ttl]
        for account_id, callback_id, token in claimed:
            rec, claim, failure, field = self._keys(account_id, callback_id)
            names += [rec, claim, failure]
            args += [token, field]
        self._complete(keys=names, args=args)

    def fail(
        self,
        account_id: int,
        callback_id: int,
        token: str,
        error: str,
        item: Mapping[str, Any],
        retention: int,
    ) -> None:
        rec, claim, failure, field = self._keys(account_id, callback_id)
        now = self.now()
        record = _record(item, error, now)
        self._fail(
            keys=[rec, claim, failure, self._failed_key],
            args=[token, field, record, now, retention],
        )

    def failed(self) -> list[FailedCallback]:
        fields = [_text(f) for f in self.client.zrange(self._failed_key, 0, -1)]
        pipeline = self.client.pipeline(transaction=False)
        for field in fields:
            pipeline.hmget(f"{self.prefix}failure:{field}", ["record", "attempts", "queued"])
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

    def prune(self, older_than: float) -> int:
        cutoff = self.now() - older_than
        old = [f for f in self.failed() if f.failed_at < cutoff]
        if old:
            fields = [f"{f.account_id}:{f.callback_id}" for f in old]
            self.client.delete(*(f"{self.prefix}failure:{field}" for field in fields))
            self.client.zrem(self._failed_key, *fields)
        return len(old)

    def warnings(self) -> list[str]:
        try:
            policy = _text(self.client.config_get("maxmemory-policy").get("maxmemory-policy"))
            persistence = self.client.config_get("appendonly")
            saves = self.client.config_get("save")
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
        self.client.close()


_STATUSES = {"done": DONE, "mismatch": MISMATCH, "queued": QUEUED}


def _record(item: Mapping[str, Any], error: str, at: float) -> str:
    """The JSON kept in a ``failure:`` hash."""
    return json.dumps(
        {"type": str(item.get("type", "")), "error": error, "failed_at": at, "item": item}
    )


def _failed(field: str, values: Sequence[Any]) -> FailedCallback | None:
    """The record of a ``failure:`` hash read as ``record``, ``attempts``, ``queued``."""
    raw_record, attempts, queued = values
    if raw_record is None:
        return None
    account_id, callback_id = (int(part) for part in field.split(":"))
    record = json.loads(raw_record)
    return FailedCallback(
        account_id,
        callback_id,
        record["type"],
        record["error"],
        record["failed_at"],
        int(attempts or 0),
        record["item"],
        queued is not None,
    )


def _text(value: Any) -> str:
    """Redis replies are bytes unless the client decodes them."""
    return value.decode() if isinstance(value, bytes) else str(value)
