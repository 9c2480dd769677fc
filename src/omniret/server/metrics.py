"""Prometheus metrics of one app, in their own registry (no process-global state).

``omniret_http_requests_total{method,route,status}``, ``omniret_http_request_seconds{method,route}``
(a histogram), ``omniret_http_requests_in_flight``, and ``omniret_index_items`` read at scrape time.
The ``route`` label is the route template (``/items/{item_id}``), never the raw path, so the number
of series stays bounded whatever clients send.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The counters and histograms of one server."""

    def __init__(self, item_count: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("omniret_http_requests", "HTTP requests answered",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("omniret_http_request_seconds", "HTTP request latency in seconds",
                                 ("method", "route"), buckets=_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("omniret_http_requests_in_flight", "HTTP requests being answered",
                               registry=self.registry)
        self.items = Gauge("omniret_index_items", "items in the index", registry=self.registry)
        self.items.set_function(lambda: float(item_count()))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - t0)
