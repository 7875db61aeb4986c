"""GET /models: the served models, typed (clients generated from the OpenAPI document read it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from app.core.bundle import Headline, version_key
from app.core.service import AppState, ModelService


class BatchingInfo(BaseModel):
    enabled: bool = Field(description="BATCHING: off runs each item alone.")
    max_batch_size: int
    max_wait_ms: float
    max_queue: int = Field(
        description="Items admitted at once per worker before 503 (this model's own bound)."
    )
    shared_queue: int = Field(
        description="The bound beside a lightly used model of the same worker (SHARED_QUEUE_SIZE)."
    )
    inline_predict_ms: float
    queue_depth: int = Field(description="Items queued now, in the worker that answered.")
    in_flight: int = Field(description="Items admitted and not answered, in the worker that answered.")


class ModelInfo(BaseModel):
    name: str = Field(description="The model's name: its folder under MODEL_DIR.")
    version: str = Field(description="Its version: the bundle's folder under the model's.")
    key: str = Field(description="`name@version`: the value of a request's `model` that pins this version.")
    task: str = Field(description="The endpoint family serving it: POST /<task>.")
    default: bool = Field(description="Whether a request to /<task> without `model` gets this one.")
    default_version: bool = Field(description='Whether `"model": "<name>"` gets this version.')
    labels: list[str] = Field(description="What it predicts: class labels, or entity types for NER.")
    headline: Headline = Field(description="Its headline metric, from the manifest.")
    backend: str = Field(description="Runtime: onnx or torchscript.")
    precision: str = Field(description="float32, or int8 for a quantized ONNX graph.")
    device: str
    workers: int = Field(description="Worker processes, each holding every served model.")
    threads_per_worker: int = Field(description="Runtime threads per model in each worker.")
    batching: BatchingInfo
    rss_mib: float | None = Field(
        None,
        description="How much the answering worker's resident memory grew while loading and warming "
        "this model, MiB (the first model of a worker also pays for shared libraries).",
    )
    manifest: dict[str, Any] = Field(description="The bundle's manifest without large tables.")


class ModelsResponse(BaseModel):
    models: list[ModelInfo] = Field(description="Every served model and version, by task and name.")
    defaults: dict[str, str] = Field(
        description="Per task, the `name@version` a request without `model` gets (DEFAULT_MODELS, "
        "MODEL_VERSIONS)."
    )
    choices: dict[str, list[str]] = Field(
        description="Per task, every value its endpoint's `model` field accepts."
    )
    skipped: list[str] = Field(
        description="Bundles found under MODEL_DIR and not served, each with why (bad checksum, "
        "manifest, section...). They are also logged at start-up."
    )
    worker_rss_mib: float = Field(description="Resident memory of the worker that answered, MiB.")


def rss_mib() -> float:
    """This process's resident memory, MiB (Linux; 0 where /proc is not there)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def model_info(state: AppState, service: ModelService[Any, Any]) -> ModelInfo:
    catalog = state.catalog
    task = service.task
    return ModelInfo(
        name=service.name,
        version=service.version,
        key=service.key,
        task=service.task_name,
        default=catalog.default(service.task_name) is service,
        default_version=catalog.is_default_version(service),
        labels=task.output_labels(),
        headline=task.manifest.headline,
        backend=task.backend.name,
        precision=task.backend.precision,
        device=task.backend.device,
        workers=state.settings.worker_count,
        threads_per_worker=state.settings.threads_per_model,
        batching=BatchingInfo(enabled=state.settings.batching, **service.batcher.info()),
        rss_mib=service.rss_mib,
        manifest=task.manifest.summary(),
    )


def models_response(state: AppState) -> ModelsResponse:
    catalog = state.catalog
    ordered = sorted(catalog.services.values(), key=lambda s: (s.task_name, s.name, version_key(s.version)))
    defaults = {task: svc.key for task in catalog.tasks if (svc := catalog.default(task)) is not None}
    return ModelsResponse(
        models=[model_info(state, s) for s in ordered],
        defaults=defaults,
        choices={task: catalog.choices(task) for task in catalog.tasks},
        skipped=catalog.skipped,
        worker_rss_mib=round(rss_mib(), 1),
    )


def describe_models(state: AppState) -> list[str]:
    """One Markdown line per served model and version, for the OpenAPI document's description."""
    lines = []
    for m in models_response(state).models:
        architecture = m.manifest.get("architecture", {})
        summary = architecture.get("summary") or architecture.get("name", "")
        h = m.headline
        default = ", the default" if m.default else ""
        labels = ", ".join(m.labels[:12]) + (", ..." if len(m.labels) > 12 else "")
        lines.append(
            f"- **{m.name}** {m.version} (`POST /{m.task}`{default}): {summary}; {h.metric} {h.value:g} "
            f"({h.split}); {'types' if m.task == 'ner' else 'labels'}: {labels}"
        )
    return lines
