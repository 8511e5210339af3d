"""``redis://host:port/db``: shared by every worker on every host (needs the ``redis`` extra)."""

from __future__ import annotations

import json
from typing import Any, Mapping

from .base import BUSY, CLAIMED, DONE, Claim, FailedCallback, Store

try:
    import redis
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "VOXCALLBACKS_STORE=redis://... needs the redis package: "
        "pip install 'flask-voxcallbacks[redis]'"
    ) from error

# KEYS: claim, done. ARGV: token, lease ms.
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'done' end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'claimed' end
return 'busy'
"""
# KEYS: claim, done, failed hash, attempts hash. ARGV: token, ttl s, field.
_COMPLETE = """
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
return 1
"""
# KEYS: claim, failed hash, attempts hash. ARGV: token, field, record.
_FAIL = """
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisStore(Store):
    """Claims as ``SET NX PX`` keys, done markers with a TTL, failures in a hash (no TTL)."""

    def __init__(self, client: redis.Redis, prefix: str = "voxcallbacks:") -> None:
        self.client = client
        self.prefix = prefix
        self._failed_key = f"{prefix}failed"
        self._attempts_key = f"{prefix}attempts"
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._fail = client.register_script(_FAIL)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        return cls(redis.Redis.from_url(url))

    def _keys(self, account_id: int, callback_id: int) -> tuple[str, str, str]:
        field = f"{account_id}:{callback_id}"
        return f"{self.prefix}claim:{field}", f"{self.prefix}done:{field}", field

    def claim(self, account_id: int, callback_id: int, lease_seconds: int) -> Claim:
        claim_key, done_key, _ = self._keys(account_id, callback_id)
        token = self.new_token()
        result = self._claim(keys=[claim_key, done_key], args=[token, lease_seconds * 1000])
        status = _text(result)
        if status == "claimed":
            return Claim(CLAIMED, token)
        return Claim(DONE if status == "done" else BUSY)

    def complete(self, account_id: int, callback_id: int, token: str, ttl: int) -> None:
        claim_key, done_key, field = self._keys(account_id, callback_id)
        self._complete(
            keys=[claim_key, done_key, self._failed_key, self._attempts_key],
            args=[token, ttl, field],
        )

    def fail(
        self,
        account_id: int,
        callback_id: int,
        token: str,
        error: str,
        item: Mapping[str, Any],
    ) -> None:
        claim_key, _, field = self._keys(account_id, callback_id)
        record = json.dumps(
            {
                "type": str(item.get("type", "")),
                "error": error,
                "failed_at": self.now(),
                "item": dict(item),
            }
        )
        self._fail(
            keys=[claim_key, self._failed_key, self._attempts_key], args=[token, field, record]
        )

    def failed(self) -> list[FailedCallback]:
        records = self.client.hgetall(self._failed_key)
        attempts = self.client.hgetall(self._attempts_key)
        result = []
        for raw_field, raw_record in records.items():
            account_id, callback_id = (int(part) for part in _text(raw_field).split(":"))
            record = json.loads(raw_record)
            result.append(
                FailedCallback(
                    account_id,
                    callback_id,
                    record["type"],
                    record["error"],
                    record["failed_at"],
                    int(attempts.get(raw_field, 1)),
                    record["item"],
                )
            )
        return sorted(result, key=lambda f: f.failed_at)

    def prune(self, older_than: float) -> int:
        cutoff = self.now() - older_than
        old = [f"{f.account_id}:{f.callback_id}" for f in self.failed() if f.failed_at < cutoff]
        if old:
            self.client.hdel(self._failed_key, *old)
            self.client.hdel(self._attempts_key, *old)
        return len(old)

    def close(self) -> None:
        self.client.close()


def _text(value: Any) -> str:
    """Redis replies are bytes unless the client decodes them."""
    return value.decode() if isinstance(value, bytes) else str(value)
