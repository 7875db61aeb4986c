"""Prometheus series, one registry per app instance (so tests can build many apps).

With several worker processes (`WORKERS`), every worker writes its series to prometheus-client's
multiprocess files in the shared run folder and `/metrics`, whichever worker answers it, reads all
of them: counters and histograms add up over the workers (dead ones included, so totals never go
back), the queue depth is the sum over live workers and `lstm_ready` their minimum.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from app.core.workers import PROMETHEUS_ENV

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
FRACTION_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Set by `python -m app` before it starts the workers (prometheus-client reads it at import).
        folder = os.environ.get(PROMETHEUS_ENV)
        self.multiprocess_dir = Path(folder) if folder else None
        r = self.registry
        self.requests = Counter(
            "lstm_requests", "HTTP requests answered.", ["endpoint", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "lstm_request_latency_seconds",
            "HTTP request latency.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "lstm_errors", "Requests that failed, by kind.", ["endpoint", "kind"], registry=r
        )
        self.items = Counter(
            "lstm_items", "Items (texts, sentences, series) predicted.", ["model"], registry=r
        )
        self.batch_size = Histogram(
            "lstm_batch_size", "Items per model call.", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.padding = Histogram(
            "lstm_batch_padding_fraction",
            "Share of each padded batch that is padding.",
            ["model"],
            buckets=FRACTION_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "lstm_inference_seconds",
            "Time of one model call.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue = Gauge(
            "lstm_queue_depth", "Items waiting per model.", ["model"], registry=r, multiprocess_mode="livesum"
        )
        self.handed_back = Counter(
            "lstm_connections_handed_back",
            "Keep-alive connections closed after a response because this worker had more than its "
            "share (the client reconnects to a less busy worker).",
            registry=r,
        )
        self.ready = Gauge(
            "lstm_ready",
            "1 when every configured model is loaded and warm (in every worker).",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.ready.set(0)
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def request_done(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """One answered request. The labelled children are looked up once per (endpoint, method,
        status) and kept: this runs for every request, on the event loop."""
        key = (endpoint, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(endpoint, method, str(status)),
                self.latency.labels(endpoint),
                self.errors.labels(endpoint, str(status)) if status >= 400 else None,
            )
            self._children[key] = children
        requests, latency, errors = children
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    # BatchObserver protocol (app.core.batching)
    def batch_done(self, model: str, size: int, padding_fraction: float, seconds: float) -> None:
        self.batch_size.labels(model).observe(size)
        self.padding.labels(model).observe(padding_fraction)
        self.inference.labels(model).observe(seconds)
        self.items.labels(model).inc(size)

    def queue_depth(self, model: str, depth: int) -> None:
        self.queue.labels(model).set(depth)

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def close(self) -> None:
        """This worker is exiting: its live gauges (queue depth, readiness) stop counting."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
