"""What only the Redis store does: its schemes, its round trips, its failed index."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from helpers import BODY, DAY, ITEM, lost_completion

from flask_voxcallbacks.store import open_store
from flask_voxcallbacks.store.base import BUSY, CLAIMED, DONE


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://localhost:6380/0", "unix:///run/redis.sock"]
)
def test_every_redis_scheme_opens_a_redis_store(url: str) -> None:
    store = open_store(url)
    assert type(store).__name__ == "RedisStore"
    store.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Any]:
    """A server of this test's own: whose command counts no other test's leftovers add to, and
    which the test may restart."""
    from servers import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_redis_url(private_redis: Any) -> str:
    return str(private_redis.url)


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


def test_a_completion_is_sent_without_waiting_and_read_by_the_next_call(redis_url: str) -> None:
    """The request is answered while the server runs the completion; the store's next call
    reads its reply first, so it sees the callbacks done."""
    import redis

    store = open_store(redis_url)
    other = redis.Redis.from_url(redis_url)  # another process's view
    claims = store.claim_many([(1, i, BODY) for i in range(3)], lease_seconds=60, ttl=DAY)
    store.complete_many([(1, i, c.token) for i, c in enumerate(claims)], ttl=DAY)
    assert store._unanswered is not None, "the reply is not read yet"  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while other.hget("voxcallbacks:cb:1:0", "done") != b"1":  # run as soon as it arrives
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert [store.claim(1, i, BODY, lease_seconds=60, ttl=DAY).status for i in range(3)] == [
        DONE
    ] * 3
    assert store._unanswered is None  # type: ignore[attr-defined]
    other.close()
    store.close()


@pytest.mark.parametrize("call", ["claim", "fail", "kept", "find_kept", "knows", "close"])
def test_every_call_reads_the_reply_of_the_completion_first(redis_url: str, call: str) -> None:
    store = open_store(redis_url)
    first, second = (store.claim(1, i, BODY, lease_seconds=60, ttl=DAY) for i in (1, 2))
    store.complete(1, 1, first.token, ttl=DAY)
    if call == "claim":
        store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY)
    elif call == "fail":
        store.fail(1, 2, second.token, "boom", ITEM, retention=DAY)
    elif call == "close":
        store.close()
    else:
        getattr(store, call)(*((1, 1) if call != "kept" else ()))
    assert store._unanswered is None  # type: ignore[attr-defined]
    store.close()


def test_a_claim_loads_its_script_again_where_the_server_lost_it(redis_url: str) -> None:
    import redis

    store = open_store(redis_url)
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    with redis.Redis.from_url(redis_url) as client:
        client.script_flush()
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    store.close()


def test_a_claim_after_the_server_restarted_runs_on_a_new_connection(private_redis: Any) -> None:
    store = open_store(private_redis.url)
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    private_redis.stop()
    private_redis.start()  # the same port and data, no scripts; the old connection is closed
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == BUSY, "kept"
    store.close()


def test_a_completion_loads_its_script_again_where_the_server_lost_it(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    store = open_store(redis_url)
    first = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 1, first.token, ttl=DAY)  # opens the connection of the completions
    second = store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
    with redis.Redis.from_url(redis_url) as client:
        client.script_flush()  # as a restarted server, or an operator, does
    store.complete(1, 2, second.token, ttl=DAY)
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    store.close()


def test_a_failed_completion_is_logged_with_the_next_call(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    store = open_store(redis_url)
    claim = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    store.knows(1, 99)  # every connection the store uses is open
    client = redis.Redis.from_url(redis_url)
    client.delete("voxcallbacks:failed")
    client.set("voxcallbacks:failed", "not a sorted set")  # the script's ZREM will fail
    client.hset("voxcallbacks:cb:1:1", "queued", "1")
    connections = client.info("stats")["total_connections_received"]
    store.complete(1, 1, claim.token, ttl=DAY)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "not read yet"
    store.knows(1, 1)
    assert "WRONGTYPE" in lost_completion(caplog.records)
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == CLAIMED
    assert client.info("stats")["total_connections_received"] == connections, (
        "a completion the server refused leaves the connection in use"
    )
    client.close()
    store.close()


def test_a_completion_after_the_server_restarted_opens_a_new_connection(
    private_redis: Any,
) -> None:
    store = open_store(private_redis.url)
    first = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 1, first.token, ttl=DAY)
    second = store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
    private_redis.stop()
    private_redis.start()  # the same port and data, no scripts
    # Sent on the broken connection, or refused at once: the callback stays claimed.
    with contextlib.suppress(Exception):
        store.complete(1, 2, second.token, ttl=DAY)
    assert store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status == BUSY
    third = store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 3, third.token, ttl=DAY)  # on a new connection
    assert store.claim(1, 3, BODY, lease_seconds=60, ttl=DAY).status == DONE
    store.close()


def test_a_forked_process_sends_its_completions_on_its_own_connection(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(redis_url)
    first = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 1, first.token, ttl=DAY)  # the parent's reply, unread
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: completes its own claim, leaves the parent's reply alone
        claim = store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY)
        store.complete(1, 2, claim.token, ttl=DAY)
        status = store.claim(1, 2, BODY, lease_seconds=60, ttl=DAY).status
        store.close()
        os.write(writer, str(status).encode())
        os._exit(0)
    os.close(writer)
    _, code = os.waitpid(pid, 0)
    assert os.read(reader, 100) == b"done" and code == 0
    assert store._unanswered is not None, "the child did not read it"  # type: ignore[attr-defined]
    assert store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY).status == DONE
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "the reply was the parent's"
    store.close()


def clients_once_settled(watcher: Any, expected: int) -> int:
    """The server's count of connected clients once it is down to ``expected``, or after 5 s:
    the server notices a closed connection on its next turn."""
    deadline = time.monotonic() + 5
    while watcher.info("clients")["connected_clients"] > expected and time.monotonic() < deadline:
        time.sleep(0.01)
    count: int = watcher.info("clients")["connected_clients"]
    return count


def test_closing_the_store_ends_its_connections_on_the_server(private_redis: Any) -> None:
    import redis

    client = redis.Redis.from_url(private_redis.url)
    alone = client.info("clients")["connected_clients"]  # this test's own
    store = open_store(private_redis.url)
    claim = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 1, claim.token, ttl=DAY)
    assert store.knows(1, 1)
    assert client.info("clients")["connected_clients"] > alone
    store.close()
    assert clients_once_settled(client, alone) == alone
    client.close()


def test_closing_a_store_leaves_the_connection_pool_it_was_given_connected(
    private_redis: Any,
) -> None:
    """A pool of the application's, which other clients may share, stays the application's: the
    store ends only the connection it opened itself."""
    import redis

    from flask_voxcallbacks.store.redis import RedisStore

    watcher = redis.Redis.from_url(private_redis.url)
    pool = redis.ConnectionPool.from_url(private_redis.url)
    redis.Redis(connection_pool=pool).ping()  # the pool keeps one connection, idle
    with_pool = watcher.info("clients")["connected_clients"]
    store = RedisStore(redis.Redis(connection_pool=pool))
    claim = store.claim(1, 1, BODY, lease_seconds=60, ttl=DAY)
    store.complete(1, 1, claim.token, ttl=DAY)
    assert store.knows(1, 1)
    assert watcher.info("clients")["connected_clients"] > with_pool, "the store's own"
    store.close()
    assert clients_once_settled(watcher, with_pool) == with_pool
    assert redis.Redis(connection_pool=pool).ping()
    pool.disconnect()
    watcher.close()
