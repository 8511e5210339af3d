"""views.py, the HTTP side: one test per row of the response policy table in README.rst."""

from __future__ import annotations

import json

import pytest
from helpers import ENDPOINT, make_app

from flask_voxcallbacks import callback_received, callback_rejected, min_balance_reached, views
from flask_voxcallbacks.testing import make_batch, make_callback, record_callbacks

EMPTY_SUMMARY = {"accepted": 0, "rejected": 0, "duplicates": 0, "in_progress": 0, "failed": 0}


def summary(**counts: int) -> dict[str, int]:
    return {**EMPTY_SUMMARY, **counts}


def test_200_with_summary_for_a_parsed_batch(client) -> None:
    response = client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert response.status_code == 200
    assert response.get_json() == summary(accepted=1)


def test_200_for_an_empty_batch(client) -> None:
    response = client.post(ENDPOINT, json={"callbacks": []})
    assert response.status_code == 200
    assert response.get_json() == EMPTY_SUMMARY


def test_200_for_a_mixed_batch_dispatches_the_authentic_items(client, seen) -> None:
    good = make_callback("min_balance")
    bad = make_callback("sms_inbound", salt="wrong")
    response = client.post(ENDPOINT, json=make_batch(bad, good))
    assert response.status_code == 200
    assert response.get_json() == summary(accepted=1, rejected=1)
    assert [c.callback_id for c in seen.received] == [good["callback_id"]]
    assert [reason for _, reason in seen.rejected] == ["hash_mismatch"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"   ", "empty body"),
        (b"{not json", "invalid JSON"),
        (b"[]", "top level is a JSON array"),
        (b'"callbacks"', "top level is a JSON string"),
        (b"{}", '"callbacks" is missing'),
        (b'{"callbacks": {}}', '"callbacks" is a JSON object'),
        (b'{"callbacks": null}', '"callbacks" is a JSON null'),
        (b'{"callbacks": [1]}', "callbacks[0] is a JSON number"),
        (b'{"callbacks": [{}, []]}', "callbacks[1] is a JSON array"),
        (b"true", "the top level is a JSON boolean"),
        (b'{"callbacks": [{"balance": NaN}]}', "invalid JSON: NaN is not a JSON value"),
        (b'{"callbacks": [{"balance": -Infinity}]}', "invalid JSON: -Infinity is not a JSON value"),
        (b"\xff", "the body is not UTF-8 text"),
        (b"[" * 100_000, "invalid JSON: nested too deeply"),
        (b'{"callbacks": [{"id": 1' + b"0" * 5000 + b"}]}", "invalid JSON: a number is too long"),
    ],
)
def test_400_names_what_is_wrong(client, seen, body: bytes, message: str) -> None:
    response = client.post(ENDPOINT, data=body, content_type="application/json")
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert seen.received == [] and seen.rejected == []


def test_403_when_every_item_is_inauthentic(client, seen) -> None:
    items = [make_callback("min_balance", api_key="other"), make_callback("js_fail", salt="x")]
    response = client.post(ENDPOINT, json=make_batch(*items))
    assert response.status_code == 403
    assert response.get_json() == summary(rejected=2)
    assert seen.received == []


def test_413_over_the_body_cap() -> None:
    app = make_app(VOXCALLBACKS_MAX_CONTENT_LENGTH=2000)
    items = [make_callback("min_balance") for _ in range(10)]
    with record_callbacks(app) as seen:
        response = app.test_client().post(ENDPOINT, json=make_batch(*items))
    assert response.status_code == 413
    assert response.get_json() == {"error": "body over 2000 bytes"}
    assert seen == [], "nothing of a refused body is handled"


def test_body_cap_overrides_the_app_wide_limit() -> None:
    app = make_app(MAX_CONTENT_LENGTH=100, VOXCALLBACKS_MAX_CONTENT_LENGTH=100_000)
    with record_callbacks(app) as seen:
        response = app.test_client().post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert response.status_code == 200 and len(seen) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
def test_405_for_other_methods(client, method: str) -> None:
    response = client.open(ENDPOINT, method=method)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


def test_500_when_a_handler_fails_so_the_sender_retries(client, app, vox_log) -> None:
    def broken(sender, callback, **extra):
        raise RuntimeError("database is down")

    with callback_received.connected_to(broken, sender=app):
        response = client.post(ENDPOINT, json=make_batch(make_callback("min_balance")))
    assert response.status_code == 500
    assert response.get_json() == summary(failed=1)
    assert "database is down" in vox_log.text


def test_content_type_is_ignored(client, seen) -> None:
    import json

    body = json.dumps(make_batch(make_callback("min_balance")))
    response = client.post(ENDPOINT, data=body, content_type="text/plain")
    assert response.status_code == 200
    assert len(seen.received) == 1


def test_custom_path() -> None:
    app = make_app(VOXCALLBACKS_PATH="/hooks/5e3f1c0d/vox")
    client = app.test_client()
    item = make_callback("min_balance")
    with record_callbacks(app) as seen:
        assert client.post("/hooks/5e3f1c0d/vox", json=make_batch(item)).status_code == 200
        assert client.post(ENDPOINT, json=make_batch(item)).status_code == 404
    assert [c.callback_id for c in seen] == [item["callback_id"]]


def test_a_failure_wins_over_in_progress_in_a_mixed_batch(app, client) -> None:
    from flask_voxcallbacks.pinning import body_digest
    from flask_voxcallbacks.state import get_state

    busy, failing, fine = (make_callback(t) for t in ("js_fail", "min_balance", "card_expired"))
    get_state(app).store.claim(
        busy["account_id"], busy["callback_id"], body_digest(busy), lease_seconds=60, ttl=60
    )

    def broken(sender, callback, **extra):
        raise RuntimeError("crm down")

    with min_balance_reached.connected_to(broken, sender=app):
        response = client.post(ENDPOINT, json=make_batch(busy, failing, fine))
    assert response.status_code == 500
    assert response.get_json() == summary(accepted=1, in_progress=1, failed=1)
    assert "Retry-After" not in response.headers


def test_503_with_retry_after_when_nothing_failed(app, client) -> None:
    from flask_voxcallbacks.pinning import body_digest
    from flask_voxcallbacks.state import get_state

    busy, fine = make_callback("js_fail"), make_callback("card_expired")
    get_state(app).store.claim(
        busy["account_id"], busy["callback_id"], body_digest(busy), lease_seconds=60, ttl=60
    )
    response = client.post(ENDPOINT, json=make_batch(busy, fine, {"account_id": "x"}))
    assert response.status_code == 503
    assert response.get_json() == summary(accepted=1, in_progress=1, rejected=1)


def test_body_cap_boundary() -> None:
    import json

    body = json.dumps(make_batch(make_callback("min_balance"))).encode()
    exact = make_app(VOXCALLBACKS_MAX_CONTENT_LENGTH=len(body)).test_client()
    assert exact.post(ENDPOINT, data=body).status_code == 200
    short = make_app(VOXCALLBACKS_MAX_CONTENT_LENGTH=len(body) - 1).test_client()
    assert short.post(ENDPOINT, data=body).status_code == 413


def test_413_over_the_item_cap_before_any_item_is_authenticated(seen, vox_log) -> None:
    app = make_app(VOXCALLBACKS_MAX_ITEMS=3)
    rejected: list[object] = []
    client = app.test_client()
    with callback_rejected.connected_to(lambda sender, **kw: rejected.append(kw), sender=app):
        over = client.post(ENDPOINT, json=make_batch(*[{} for _ in range(4)]))
        at_cap = client.post(ENDPOINT, json=make_batch(*[make_callback("js_fail")] * 3))
    assert over.status_code == 413
    assert over.get_json() == {"error": "4 items in one batch; at most 3 are accepted"}
    assert rejected == [], "no item of the refused batch was looked at"
    assert at_cap.status_code == 200
    assert next(r.getMessage() for r in vox_log.records if r.levelname == "WARNING") == (
        "batch refused: 4 items, over VOXCALLBACKS_MAX_ITEMS=3"
    )


def test_a_utf8_byte_order_mark_is_accepted(client, seen) -> None:
    body = b"\xef\xbb\xbf" + json.dumps(make_batch(make_callback("js_fail"))).encode()
    assert client.post(ENDPOINT, data=body).status_code == 200
    assert len(seen.received) == 1


def test_refused_batches_are_logged_with_the_reason(vox_log) -> None:
    app = make_app(VOXCALLBACKS_MAX_CONTENT_LENGTH=100)
    client = app.test_client()
    client.post(ENDPOINT, data=b"x" * 200)
    client.post(ENDPOINT, data=b"[1]")
    warnings = [r.getMessage() for r in vox_log.records if r.levelname == "WARNING"]
    assert warnings == [
        "batch refused: body over 100 bytes",
        'batch refused: the top level is a JSON array; expected a JSON object {"callbacks": [...]}',
    ]


class _BrokenStream:
    """A request body whose connection breaks while it is read."""

    def read(self, *args: object) -> bytes:
        raise OSError("connection reset by peer")

    readline = read


def test_a_body_that_breaks_off_while_read_is_a_400_with_one_log_line(vox_log) -> None:
    app = make_app()
    seen: list[object] = []
    with callback_received.connected_to(lambda sender, **extra: seen.append(extra), app):
        response = app.test_client().post(
            ENDPOINT,
            content_type="application/json",
            environ_overrides={"wsgi.input": _BrokenStream(), "CONTENT_LENGTH": "100"},
        )
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "the request body could not be read (malformed or cut off)"
    }
    assert seen == []
    lines = [r.getMessage() for r in vox_log.records if r.name == "flask_voxcallbacks"]
    # Werkzeug reports the broken read as a disconnected client.
    assert lines == ["batch refused: the request body could not be read (ClientDisconnected)"]


@pytest.mark.parametrize(
    ("content_type", "hint"),
    [
        ("application/json", ""),
        ("application/problem+json", ""),
        ("text/plain", " (the request's Content-Type is text/plain; callbacks are JSON)"),
    ],
)
def test_a_400_names_a_content_type_that_is_not_json_after_the_parse_error(
    client, content_type: str, hint: str
) -> None:
    response = client.post(ENDPOINT, data=b"{not json", content_type=content_type)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid JSON: Expecting property name enclosed in double quotes at line 1"
        f" column 2{hint}"
    }


class _CountingStream:
    """An endless chunked body (``x`` bytes) that counts what the reader takes from it."""

    def __init__(self) -> None:
        self.taken = 0

    def read(self, size: int = -1) -> bytes:
        size = 65536 if size is None or size < 0 else size
        self.taken += size
        return b"x" * size

    def readinto(self, buffer: bytearray) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


#: Both ways of reading the body where Flask has its per-request limit (3.1 and later); the
#: fallback alone before.
_READERS = [True, False] if views._PER_REQUEST_LIMIT else [False]


@pytest.mark.parametrize(
    "per_request_limit", _READERS, ids=["flask-3.1", "flask-2.3"][-len(_READERS) :]
)
def test_the_body_is_read_up_to_one_byte_past_the_cap_and_no_further(
    monkeypatch, per_request_limit: bool
) -> None:
    """With Flask's own per-request limit (3.1) and with Werkzeug's input stream (before 3.1):
    a body of exactly the cap is read, one longer is a 413, and a chunked body with no end is
    read no further than one byte past the cap."""
    monkeypatch.setattr(views, "_PER_REQUEST_LIMIT", per_request_limit)
    body = json.dumps(make_batch(make_callback("min_balance"))).encode()
    exact = make_app(VOXCALLBACKS_MAX_CONTENT_LENGTH=len(body)).test_client()
    assert exact.post(ENDPOINT, data=body).status_code == 200
    short = make_app(VOXCALLBACKS_MAX_CONTENT_LENGTH=len(body) - 1).test_client()
    assert short.post(ENDPOINT, data=body).status_code == 413
    stream = _CountingStream()
    endless = make_app(VOXCALLBACKS_MAX_CONTENT_LENGTH=1000).test_client()
    response = endless.post(
        ENDPOINT,
        content_type="application/json",
        environ_overrides={"wsgi.input": stream, "wsgi.input_terminated": True},
        headers={"Transfer-Encoding": "chunked"},
    )
    assert response.status_code == 413
    assert stream.taken == 1001
