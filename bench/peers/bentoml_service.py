"""BentoML serving /sentiment and /ner:
`PEER_WORKERS=N bentoml serve bench.peers.bentoml_service:Peer --host 127.0.0.1 --port PORT`.

BentoML's adaptive batching (at most 32 texts per call) in each of N worker processes. The body
is the one lstm-serve takes, `{"texts": [...]}`: the batchable parameter's list is the batch
dimension, so BentoML concatenates concurrent requests' texts into one model call."""

from __future__ import annotations

import os
from typing import Any

import bentoml

from bench.peers.common import Pipeline


def _run(pipeline: Pipeline, texts: list[str]) -> list[dict[str, Any]]:
    prepared = [pipeline.prepare({"texts": [t]}) for t in texts]
    return [pipeline.answer(p, r) for p, r in zip(prepared, pipeline.predict(prepared), strict=True)]


@bentoml.service(workers=int(os.environ.get("PEER_WORKERS", "1")), traffic={"timeout": 60})
class Peer:
    def __init__(self) -> None:
        self.sentiment_pipeline = Pipeline("sentiment")
        self.ner_pipeline = Pipeline("ner")

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=30_000)  # type: ignore[untyped-decorator]
    def sentiment(self, texts: list[str]) -> list[dict[str, Any]]:
        return _run(self.sentiment_pipeline, texts)

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=30_000)  # type: ignore[untyped-decorator]
    def ner(self, texts: list[str]) -> list[dict[str, Any]]:
        return _run(self.ner_pipeline, texts)
