"""What every peer server runs per request: the project's own public pipeline, so that a peer
differs from lstm-serve only in how it serves, never in what it computes.

A user who picked LitServe, BentoML or Ray Serve instead of lstm-serve would write exactly this
glue: load the bundle, tokenise with the project's preprocessing, pad a batch and run the same
`model.onnx` through ONNX Runtime, and answer with the label and probabilities (sentiment) or
the entities with character offsets (NER). Peers read their settings from the environment
(`MODEL_DIR`, `PEER_THREADS`), set by `bench.peers.launch`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.core.backends import OnnxBackend
from app.core.bundle import load_bundle, resolve_bundle_dir
from app.core.settings import Settings
from app.main import TASK_PACKAGES
from app.ner.schemas import NerRequest
from app.sentiment.schemas import SentimentRequest

MODELS = ("sentiment", "ner")
REQUEST_TYPES: dict[str, type[BaseModel]] = {"sentiment": SentimentRequest, "ner": NerRequest}


@dataclass(frozen=True)
class Prepared:
    """One request's work: its validated body and the items `decode` made of it."""

    request: Any
    items: list[Any]


class Pipeline:
    """One model's public pipeline (`ModelTask.decode` / `predict_batch` / `encode`) on ONNX Runtime,
    float32 `model.onnx`, with the service's default input limits."""

    def __init__(self, model: str, model_dir: Path | None = None, threads: int | None = None) -> None:
        model_dir = model_dir or Path(os.environ.get("MODEL_DIR", "models"))
        threads = int(os.environ.get("PEER_THREADS", "1")) if threads is None else threads
        bundle = load_bundle(resolve_bundle_dir(model_dir, model))
        backend = OnnxBackend(bundle, "cpu", threads)
        self.model = model
        self.task: Any = importlib.import_module(TASK_PACKAGES[model]).Task(bundle, backend)
        self.task.predict_batch(self.task.warmup_items())
        self.limits = Settings(_env_file=None).input_limits
        self.request_type = REQUEST_TYPES[model]

    def prepare(self, body: dict[str, Any]) -> Prepared:
        request = self.request_type.model_validate(body)
        return Prepared(request, self.task.decode(request, self.limits))

    def predict(self, batch: Sequence[Prepared]) -> list[list[Any]]:
        """One model call for every request's items; each request gets its own rows back."""
        flat = [item for p in batch for item in p.items]
        results = self.task.predict_batch(flat) if flat else []
        out, k = [], 0
        for p in batch:
            out.append(results[k : k + len(p.items)])
            k += len(p.items)
        return out

    def answer(self, prepared: Prepared, results: list[Any]) -> dict[str, Any]:
        """The body lstm-serve answers for the same request."""
        response: BaseModel = self.task.encode(prepared.request, prepared.items, results)
        answer: dict[str, Any] = response.model_dump(mode="json", exclude_none=True)
        return answer
