"""``redis://host:port/db``: shared by every worker on every host (needs the ``redis`` extra)."""

from __future__ import annotations

import json
from typing import Any, Mapping

import redis

from .base import BUSY, CLAIMED, DONE, MISMATCH, Claim, FailedCallback, Store

# Keys per callback (field = "account_id:callback_id"): ``rec:`` a hash with the pinned
# ``digest`` and ``done``, expiring with the record; ``claim:`` the lease token (PX lease);
# ``failure:`` a hash with the failure ``record`` (JSON) and ``attempts``, expiring with the
# retention. ``failed`` is a sorted set of the failed fields by time.

# KEYS: rec, claim. ARGV: digest, token, lease ms, ttl s.
_CLAIM = """
local pinned = redis.call('HGET', KEYS[1], 'digest')
if pinned and pinned ~= ARGV[1] then return 'mismatch' end
if redis.call('HGET', KEYS[1], 'done') then return 'done' end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 'busy' end
if not pinned then
  redis.call('HSET', KEYS[1], 'digest', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
elseif redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 'claimed'
"""
# KEYS: rec, claim, failure, failed index. ARGV: token, ttl s, field.
_COMPLETE = """
redis.call('HSET', KEYS[1], 'done', '1')
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[3])
return 1
"""
# KEYS: rec, claim, failure, failed index. ARGV: token, field, record, failed_at, retention s.
_FAIL = """
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if redis.call('HGET', KEYS[1], 'done') then return 0 end
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

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        return cls(redis.Redis.from_url(url))

    def _keys(self, account_id: int, callback_id: int) -> tuple[str, str, str, str]:
        """The record, claim and failure keys of a callback, and its field name."""
        field = f"{account_id}:{callback_id}"
        p = self.prefix
        return f"{p}rec:{field}", f"{p}claim:{field}", f"{p}failure:{field}", field

    def claim(
        self, account_id: int, callback_id: int, digest: str, lease_seconds: int, ttl: int
    ) -> Claim:
        rec, claim, _, _ = self._keys(account_id, callback_id)
        token = self.new_token()
        result = self._claim(keys=[rec, claim], args=[digest, token, lease_seconds * 1000, ttl])
        status = _text(result)
        if status == "claimed":
            return Claim(CLAIMED, token)
        return Claim({"done": DONE, "mismatch": MISMATCH}.get(status, BUSY))

    def complete(self, account_id: int, callback_id: int, token: str, ttl: int) -> None:
        rec, claim, failure, field = self._keys(account_id, callback_id)
        self._complete(keys=[rec, claim, failure, self._failed_key], args=[token, ttl, field])

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
        record = json.dumps(
            {"type": str(item.get("type", "")), "error": error, "failed_at": now, "item": item}
        )
        self._fail(
            keys=[rec, claim, failure, self._failed_key],
            args=[token, field, record, now, retention],
        )

    def failed(self) -> list[FailedCallback]:
        fields = [_text(f) for f in self.client.zrange(self._failed_key, 0, -1)]
        pipeline = self.client.pipeline(transaction=False)
        for field in fields:
            pipeline.hmget(f"{self.prefix}failure:{field}", ["record", "attempts"])
        result, expired = [], []
        for field, (raw_record, attempts) in zip(fields, pipeline.execute()):
            if raw_record is None:
                expired.append(field)
                continue
            account_id, callback_id = (int(part) for part in field.split(":"))
            record = json.loads(raw_record)
            result.append(
                FailedCallback(
                    account_id,
                    callback_id,
                    record["type"],
                    record["error"],
                    record["failed_at"],
                    int(attempts or 1),
                    record["item"],
                )
            )
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


def _text(value: Any) -> str:
    """Redis replies are bytes unless the client decodes them."""
    return value.decode() if isinstance(value, bytes) else str(value)
