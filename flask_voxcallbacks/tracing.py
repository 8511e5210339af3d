"""OpenTelemetry tracing, on with ``VOXCALLBACKS_TRACING = "opentelemetry"`` (the
``[opentelemetry]`` extra: the API only; the application sets up the SDK and its exporter).

One CONSUMER span per callback around its receivers, named ``process <type>``, with the messaging
attributes: inline, a child of the current span (the request's, when the application traces its
requests); in a job, linked to the span of the request that queued the callback, whose trace
context the job carries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .registry import CALLBACK_TYPES

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER = trace.get_tracer("flask_voxcallbacks")


class _CallbackSpan:
    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def failed(self, reason: str) -> None:
        self.span.set_status(Status(StatusCode.ERROR, reason))


class OpenTelemetryTracing:
    """Spans around callbacks, through the OpenTelemetry API."""

    def context(self) -> str:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier.get("traceparent", "")

    @contextmanager
    def span(
        self, account_id: int, callback_id: int, type_name: str, link: str
    ) -> Iterator[_CallbackSpan]:
        links = []
        if link:
            linked = trace.get_current_span(_PROPAGATOR.extract({"traceparent": link}))
            if linked.get_span_context().is_valid:
                links.append(Link(linked.get_span_context()))
        # A type the sender chose would make the span name unbounded.
        label = type_name if type_name in CALLBACK_TYPES else "other"
        attributes = {
            "messaging.system": "voximplant",
            "messaging.operation": "process",
            "messaging.operation.type": "process",
            "messaging.message.id": f"{account_id}:{callback_id}",
            "voxcallbacks.type": label,
        }
        with _TRACER.start_as_current_span(
            f"process {label}", kind=SpanKind.CONSUMER, links=links, attributes=attributes
        ) as span:
            yield _CallbackSpan(span)
