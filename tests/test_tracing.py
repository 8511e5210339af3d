"""tracing.py: one OpenTelemetry span per callback, a child of the request's span inline, and
linked to it from the job in queue mode (test_queue.py follows it into real workers)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from helpers import ENDPOINT, make_app, without_extra
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from flask_voxcallbacks import ConfigurationError, sms_received
from flask_voxcallbacks.testing import make_batch, make_callback

_EXPORTER = InMemorySpanExporter()


_WITH_EXPORTER: list[TracerProvider] = []


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # The process has one tracer provider, set once (by whichever test comes first).
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    if provider not in _WITH_EXPORTER:
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        _WITH_EXPORTER.append(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_one_consumer_span_per_callback_under_the_request_span(spans: Any) -> None:
    app = make_app(VOXCALLBACKS_TRACING="opentelemetry")
    low, sms = make_callback("min_balance"), make_callback("sms_inbound")

    def broken(sender: Any, callback: Any, **extra: Any) -> None:
        raise ConnectionError("crm down")

    tracer = trace.get_tracer("test")
    with (
        sms_received.connected_to(broken, sender=app),
        tracer.start_as_current_span("POST /voximplant/callbacks") as request,
    ):
        app.test_client().post(ENDPOINT, json=make_batch(low, sms))
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert set(finished) == {"process min_balance", "process sms_inbound", request.name}
    for item in (low, sms):
        span = finished[f"process {item['type']}"]
        assert span.kind is SpanKind.CONSUMER
        assert span.parent is not None
        assert span.parent.span_id == request.get_span_context().span_id
        assert span.context.trace_id == request.get_span_context().trace_id
        assert span.attributes == {
            "messaging.system": "voximplant",
            "messaging.operation": "process",
            "messaging.operation.type": "process",
            "messaging.message.id": f"{item['account_id']}:{item['callback_id']}",
            "voxcallbacks.type": item["type"],
        }
    assert finished["process min_balance"].status.status_code is StatusCode.UNSET
    failed = finished["process sms_inbound"].status
    assert failed.status_code is StatusCode.ERROR
    assert "ConnectionError: crm down" in (failed.description or "")


def test_a_job_span_links_to_the_request_that_queued_it(spans: Any, redis_url: str) -> None:
    rq = "rq://" + redis_url[len("redis://") :].rsplit("/", 1)[0] + "/1?queue=vox-trace"
    app = make_app(
        VOXCALLBACKS_TRACING="opentelemetry", VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=rq
    )
    item = make_callback("min_balance")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /voximplant/callbacks") as request:
        assert app.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 200
    from rq import SimpleWorker

    from flask_voxcallbacks.state import get_state

    queue = get_state(app).queue
    with app.app_context():
        SimpleWorker([queue.queue], connection=queue.connection).work(burst=True)  # type: ignore[union-attr]
    (job,) = [span for span in spans.get_finished_spans() if span.name == "process min_balance"]
    assert job.parent is None, "the job starts its own trace"
    (link,) = job.links
    assert link.context.trace_id == request.get_span_context().trace_id
    assert link.context.span_id == request.get_span_context().span_id


def test_tracing_needs_its_extra_and_imports_nothing_when_off() -> None:
    said = without_extra("opentelemetry", "VOXCALLBACKS_TRACING", "opentelemetry")
    assert "flask-voxcallbacks[opentelemetry]" in said


def test_a_bad_tracing_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match='VOXCALLBACKS_TRACING must be "opentelemetry"'):
        make_app(VOXCALLBACKS_TRACING="zipkin")


def test_a_replayed_queued_callback_links_to_the_request_that_queued_it(
    spans: Any, redis_url: str
) -> None:
    """Its job was lost: the replay's span links to the request through the context kept with
    the queued callback."""
    rq = "rq://" + redis_url[len("redis://") :].rsplit("/", 1)[0] + "/1?queue=vox-lost"
    app = make_app(
        VOXCALLBACKS_TRACING="opentelemetry", VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=rq
    )
    item = make_callback("js_fail")
    with trace.get_tracer("test").start_as_current_span("POST callbacks") as request:
        assert app.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 200
    from flask_voxcallbacks.state import get_state

    get_state(app).queue.queue.empty()  # type: ignore[union-attr]
    result = app.test_cli_runner().invoke(args=["voxcallbacks", "replay", str(item["callback_id"])])
    assert result.exit_code == 0, result.output
    (span,) = [s for s in spans.get_finished_spans() if s.name == "process js_fail"]
    (link,) = span.links
    assert link.context.trace_id == request.get_span_context().trace_id
    assert link.context.span_id == request.get_span_context().span_id


def test_a_job_enqueued_without_its_trace_links_through_the_queued_callback(
    spans: Any, redis_url: str
) -> None:
    """A job whose arguments carry no trace context (enqueued by hand, or by a version that did
    not pass it) links to the request through the context kept with the queued callback."""
    from flask_voxcallbacks.handling import run_job
    from flask_voxcallbacks.queue.rq import run_callback
    from flask_voxcallbacks.state import get_state

    rq = "rq://" + redis_url[len("redis://") :].rsplit("/", 1)[0] + "/1?queue=vox-bare"
    app = make_app(
        VOXCALLBACKS_TRACING="opentelemetry", VOXCALLBACKS_STORE=redis_url, VOXCALLBACKS_QUEUE=rq
    )
    items = [make_callback("min_balance"), make_callback("sms_inbound")]
    with trace.get_tracer("test").start_as_current_span("POST callbacks") as request:
        assert app.test_client().post(ENDPOINT, json=make_batch(*items)).status_code == 200
    get_state(app).queue.queue.empty()  # type: ignore[union-attr]
    with app.app_context():
        assert run_callback(items[0]["account_id"], items[0]["callback_id"]) == "accepted"
        assert run_job(app, items[1]["account_id"], items[1]["callback_id"]) == "accepted"
    for name in ("process min_balance", "process sms_inbound"):
        (span,) = [s for s in spans.get_finished_spans() if s.name == name]
        (link,) = span.links
        assert link.context.span_id == request.get_span_context().span_id


def test_a_celery_job_carries_the_trace_context_of_its_request(spans: Any, redis_url: str) -> None:
    import base64
    import json

    import redis
    from celery import Celery

    from flask_voxcallbacks.queue import TASK_NAME

    broker = redis_url.rsplit("/", 1)[0] + "/1"
    app = make_app(
        VOXCALLBACKS_TRACING="opentelemetry",
        VOXCALLBACKS_STORE=redis_url,
        VOXCALLBACKS_QUEUE="celery",
    )
    celery = Celery(app.name)
    celery.conf.update(broker_url=broker, task_ignore_result=True)
    app.extensions["celery"] = celery
    item = make_callback("min_balance")
    with trace.get_tracer("test").start_as_current_span("POST callbacks") as request:
        assert app.test_client().post(ENDPOINT, json=make_batch(item)).status_code == 200
    with redis.Redis.from_url(broker) as client:
        (raw,) = client.lrange("celery", 0, -1)
        client.delete("celery")
    args, kwargs, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
    context = request.get_span_context()
    assert kwargs["trace"] == (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )
    assert celery.tasks[TASK_NAME].apply(args=args, kwargs=kwargs).get() == "accepted"
    (span,) = [s for s in spans.get_finished_spans() if s.name == "process min_balance"]
    (link,) = span.links
    assert link.context.span_id == context.span_id
