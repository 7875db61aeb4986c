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
            "lstm_items", "Items (texts, sentences, series) predicted.", ["model", "version"], registry=r
        )
        self.batch_size = Histogram(
            "lstm_batch_size",
            "Items per model call.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.padding = Histogram(
            "lstm_batch_padding_fraction",
            "Share of each padded batch that is padding.",
            ["model", "version"],
            buckets=FRACTION_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "lstm_inference_seconds",
            "Time of one model call.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue = Gauge(
            "lstm_queue_depth",
            "Items waiting per model.",
            ["model", "version"],
            registry=r,
            multiprocess_mode="livesum",
        )
        # Per model as well as per endpoint: with several models behind one endpoint, which of
        # them is slow or refusing is what an operator needs to see.
        self.model_requests = Counter(
            "lstm_model_requests",
            "Requests answered by each served model (door refusals included), by status.",
            ["model", "version", "status"],
            registry=r,
        )
        self.model_latency = Histogram(
            "lstm_model_request_latency_seconds",
            "HTTP request latency per served model.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
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
        self._model_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

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

    def model_request_done(self, model: str, version: str, status: int, seconds: float) -> None:
        """One answered request that a served model was chosen for (children kept, as above)."""
        key = (model, version, status)
        children = self._model_children.get(key)
        if children is None:
            children = (
                self.model_requests.labels(model, version, str(status)),
                self.model_latency.labels(model, version),
            )
            self._model_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    # BatchObserver protocol (app.core.batching)
    def batch_done(
        self, model: str, version: str, size: int, padding_fraction: float, seconds: float
    ) -> None:
        self.batch_size.labels(model, version).observe(size)
        self.padding.labels(model, version).observe(padding_fraction)
        self.inference.labels(model, version).observe(seconds)
        self.items.labels(model, version).inc(size)

    def queue_depth(self, model: str, version: str, depth: int) -> None:
        self.queue.labels(model, version).set(depth)

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
