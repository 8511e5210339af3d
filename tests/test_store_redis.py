"""What only the Redis store does: its schemes, its round trips, its failed index."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from helpers import BODY, DAY, ITEM

from flask_voxcallbacks.store import open_store


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://localhost:6380/0", "unix:///run/redis.sock"]
)
def test_every_redis_scheme_opens_a_redis_store(url: str) -> None:
    store = open_store(url)
    assert type(store).__name__ == "RedisStore"
    store.close()


@pytest.fixture
def private_redis_url(tmp_path: Path) -> Iterator[str]:
    """A server of this test's own, whose command counts no other test's leftovers add to."""
    from servers import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    yield server.url
    server.stop()


def test_a_batch_costs_redis_two_round_trips(private_redis_url: str) -> None:
    import redis
    from helpers import ENDPOINT, make_app

    from flask_voxcallbacks.testing import make_batch, make_callback

    app = make_app(VOXCALLBACKS_STORE=private_redis_url)
    client = redis.Redis.from_url(private_redis_url)

    def evalsha_calls() -> int:
        stats = client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)) + int(
            stats.get("cmdstat_eval", {}).get("calls", 0)
        )

    items = [make_callback("min_balance") for _ in range(10)]
    app.test_client().post(ENDPOINT, json=make_batch(items[0]))  # loads the scripts
    before = evalsha_calls()
    response = app.test_client().post(ENDPOINT, json=make_batch(*items[1:]))
    assert response.get_json()["accepted"] == 9
    assert evalsha_calls() - before == 2, "one call claims the batch, one completes it"
    client.close()


def test_redis_prune_takes_the_pruned_callbacks_out_of_the_failed_index(redis_url: str) -> None:
    store = open_store(redis_url)
    try:
        for callback_id in (5, 6):
            claim = store.claim(7, callback_id, BODY, lease_seconds=60, ttl=DAY)
            store.fail(7, callback_id, claim.token, "boom", ITEM, retention=DAY)
        index = store._failed_key  # type: ignore[attr-defined]
        assert sorted(store.client.zrange(index, 0, -1)) == [b"7:5", b"7:6"]  # type: ignore[attr-defined]
        later = time.time() + 1
        store.now = lambda: later  # type: ignore[method-assign]
        assert store.prune(older_than=0) == 2
        assert store.client.zrange(index, 0, -1) == []  # type: ignore[attr-defined]
    finally:
        store.close()


def test_redis_warnings_name_each_setting_to_change(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    store = open_store(redis_url)
    eviction = (
        "Redis maxmemory-policy is allkeys-lru: under memory pressure it may evict done markers"
        " and pins, and an evicted callback id can be replayed with any body; set"
        " maxmemory-policy noeviction"
    )
    nothing_kept = (
        "Redis persists nothing (appendonly no, no save points): failed callbacks and done"
        " markers are lost when it restarts; set appendonly yes"
    )
    limited_url = redis_url.replace("redis://", "redis://limited:secret-pw@")
    try:
        assert store.warnings() == []
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.config_set("appendonly", "no")
        assert store.warnings() == [eviction, nothing_kept]
        client.config_set("save", "3600 1")
        assert store.warnings() == [eviction], "save points persist the data too"
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("save", "")
        assert store.warnings() == [nothing_kept]
        client.config_set("appendonly", "yes")
        assert store.warnings() == []
        # A user that may not run CONFIG (a managed Redis often forbids it).
        client.acl_setuser(
            "limited",
            enabled=True,
            passwords=["+secret-pw"],
            keys=["*"],
            commands=["+@all", "-config"],
        )
        limited = open_store(limited_url)
        assert limited.warnings() == [
            "the Redis server refuses CONFIG GET: make sure its maxmemory-policy is noeviction and"
            " that it persists its data (appendonly yes)"
        ]
        limited.close()
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("appendonly", "yes")
        client.config_set("save", "")
        client.acl_deluser("limited")
        client.close()
        store.close()


def test_a_claim_holds_its_lease_for_exactly_the_seconds_asked(redis_url: str) -> None:
    import redis

    store = open_store(redis_url)
    client = redis.Redis.from_url(redis_url)

    def server_ms() -> int:
        seconds, micros = (int(part) for part in client.time())
        return seconds * 1000 + micros // 1000

    before = server_ms()
    store.claim(1, 5, BODY, lease_seconds=1000, ttl=DAY)
    after = server_ms()
    lease = int(client.hget("voxcallbacks:cb:1:5", "lease"))  # type: ignore[arg-type]
    assert before + 1_000_000 <= lease <= after + 1_000_000
    client.close()
    store.close()


def test_a_redis_store_made_directly_uses_the_keys_of_no_namespace(redis_url: str) -> None:
    import redis

    from flask_voxcallbacks.store.redis import RedisStore

    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client)
    claim = store.claim(1, 5, BODY, lease_seconds=60, ttl=DAY)
    store.fail(1, 5, claim.token, "boom", ITEM, retention=DAY)
    keys = {key.decode() for key in client.keys("*")}
    assert keys == {"voxcallbacks:cb:1:5", "voxcallbacks:failed"}
    assert store.identity.endswith("#voxcallbacks:")
    client.close()
