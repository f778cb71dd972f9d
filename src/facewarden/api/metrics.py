"""GET /metrics in the Prometheus text format: request counts and latencies per route template, in-flight
requests, the process, and the service's own numbers (gallery, audit log, key store, outcome counts).

Labels never carry a raw path (it may hold a subject's name), a key or a person: only the route template
(`/v1/subjects/{subject}/verify`), the method and the status class. Each app has its own registry, so several
apps in one process (the tests) never share or clash over metrics.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from facewarden.api.access_log import route_template
from facewarden.api.deps import Caller
from facewarden.api.errors import ERROR_RESPONSES, ResponseWatch
from facewarden.service.telemetry import TelemetrySnapshot

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # face work takes 0.1-3 s


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("method", "route", "status")
        self.requests = Counter("facewarden_http_requests", "HTTP requests by route template and status class",
                                labels, registry=registry)
        self.latency = Histogram("facewarden_http_request_duration_seconds", "Time to answer, by route template",
                                 labels, buckets=_BUCKETS, registry=registry)
        self.in_flight = Gauge("facewarden_http_requests_in_flight", "Requests being served now", registry=registry)


class MetricsMiddleware:
    """Pure ASGI (no body buffering): times each HTTP request and labels it after routing has named the route."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        watched = ResponseWatch(send)
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, watched)
        finally:
            self.metrics.in_flight.dec()
            status = watched.status or 500  # what the client sees if the app raised before answering
            method = scope.get("method", "")
            labels = (method if method in _METHODS else "OTHER", route_template(scope, "unmatched"),
                      f"{status // 100}xx")  # the template, never the raw path
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)


class _SnapshotCollector(Collector):
    """The service's numbers for one scrape, taken after the caller was authorised."""

    def __init__(self, snap: TelemetrySnapshot) -> None:
        self.snap = snap

    def collect(self) -> Any:
        snap = self.snap
        yield GaugeMetricFamily("facewarden_gallery_templates", "Templates in this process's 1:N gallery",
                                value=snap.gallery_templates)
        yield GaugeMetricFamily("facewarden_subjects", "Enrolled subjects, every tenant", value=snap.subjects)
        yield GaugeMetricFamily("facewarden_audit_log_entries", "Entries in the audit log (its head's size)",
                                value=snap.audit_entries)
        yield GaugeMetricFamily("facewarden_audit_signed_tree_size", "Size of the newest signed tree head",
                                value=snap.audit_signed_size)
        if snap.audit_signed_at_ms is not None:
            yield GaugeMetricFamily("facewarden_audit_signed_head_timestamp_seconds",
                                    "When the newest tree head was signed", value=snap.audit_signed_at_ms / 1000)
        kek = GaugeMetricFamily("facewarden_kek_current_version", "Current key-encryption key version",
                                labels=["provider"])
        kek.add_metric([snap.kek_provider], snap.kek_current_version)
        yield kek
        yield GaugeMetricFamily("facewarden_kek_versions", "KEK versions not yet retired", value=snap.kek_versions)
        keys = GaugeMetricFamily("facewarden_data_keys", "Data keys in the key store, by the KEK version wrapping them",
                                 labels=["kek_version"])
        for version, n in sorted(snap.data_keys_per_version.items()):
            keys.add_metric([str(version)], n)
        yield keys
        outcomes = CounterMetricFamily("facewarden_operations", "Audited operations by outcome code (enrol, "
                                       "add_photos, verify, identify, liveness_check, login...)",
                                       labels=["operation", "outcome"])
        for (operation, outcome), n in sorted(snap.outcomes.items()):
            outcomes.add_metric([operation, outcome], n)
        yield outcomes


router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/metrics", tags=["operations"], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
def metrics(request: Request, who: Caller) -> Response:
    """Prometheus metrics; for keys with the `metrics` role (a scraper), `auditor` or `admin` of the
    deployment's own tenant. Counts, sizes and latencies only: nothing personal."""
    snap = request.app.state.service.telemetry.snapshot(who)
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_SnapshotCollector(snap))
    body = generate_latest(request.app.state.metrics_registry) + generate_latest(scrape)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    """Register the middleware and the route; call after the other middleware so every answer is counted."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # memory, CPU and open files of this process
    app.state.metrics_registry = registry
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    app.include_router(router)

