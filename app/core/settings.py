"""Every setting of the service, in one place. Read from environment variables (upper-case field
names, e.g. `BACKEND=torchscript`) and from a `.env` file in the working directory."""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.batching import BatchingConfig
from app.core.limits import InputLimits
from app.core.workers import resolve_workers, threads_per_worker, usable_cpus


class ModelBatching(BaseModel):
    """Per-model overrides of the batching settings; unset fields take the global value."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int | None = Field(None, ge=1, le=1024)
    max_batch_wait_ms: float | None = Field(None, ge=0, le=1000)
    max_queue_size: int | None = Field(None, ge=1)
    shared_queue_size: int | None = Field(None, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        protected_namespaces=(),
        # `NAME=` (compose's `${NAME:-}`, a blank line in .env) means "the default", for every setting.
        env_ignore_empty=True,
    )

    # Models
    model_dir: Path = Field(
        Path("models"),
        description="Folder holding <name>/<version>/ bundles; each manifest's `task` says which "
        "endpoint serves it. SIGHUP to `python -m app` reads it again (RELOAD_POLL_S: on its own).",
    )
    models: str = Field(
        "", description="Comma-separated model names to serve; empty serves every bundle in MODEL_DIR."
    )
    default_models: str = Field(
        "",
        description="What a request without `model` gets, per task: comma-separated task=name, e.g. "
        "`sentiment=sst5`. Unset: the model named after the task (the shipped one), else the first "
        "served name.",
    )
    model_versions: str = Field(
        "",
        description='The version `"model": "name"` (and the task\'s default) gets, per model: '
        "comma-separated name=version, e.g. `sentiment=1.0.0`. Unset: the highest served version. "
        "Every version stays reachable as name@version.",
    )
    reload_poll_s: float = Field(
        0.0,
        ge=0,
        description="Look at MODEL_DIR every this many seconds and reload when its bundles changed, as "
        "on SIGHUP (for mounts updated in place, e.g. a Kubernetes volume); 0: only on SIGHUP.",
    )
    reload_handover_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Reload: how long a worker being replaced keeps answering, closing each connection "
        "after its response so clients reconnect to the new worker, before it drains and exits.",
    )
    backend: Literal["onnx", "torchscript"] = Field("onnx", description="Inference runtime.")
    model_backend: dict[str, Literal["onnx", "torchscript"]] = Field(
        default_factory=dict,
        description='Per-model BACKEND as JSON, e.g. {"sentiment": "torchscript"}, where one runtime is '
        "faster for that model's shapes.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where inference runs.")
    threads: int = Field(
        0, ge=0, description="Intra-op threads per model in each worker; 0: the cores split over the workers."
    )
    precision: Literal["auto", "float32", "int8"] = Field(
        "auto",
        description="ONNX graph: int8 (a bundle's `onnx_int8` artifact), float32, or auto: int8 where "
        "the bundle's quantization section says it passed its accuracy gate.",
    )
    model_precision: dict[str, Literal["auto", "float32", "int8"]] = Field(
        default_factory=dict, description='Per-model PRECISION as JSON, e.g. {"ner": "float32"}.'
    )

    # Batching
    batching: bool = Field(True, description="Dynamic micro-batching; off runs each item alone.")
    max_batch_size: int = Field(32, ge=1, le=1024, description="Most items in one model call.")
    max_batch_wait_ms: float = Field(
        1.0, ge=0, le=1000, description="Longest wait to fill a batch (only while under load)."
    )
    max_queue_size: int = Field(
        1024,
        ge=1,
        description="Items per model and worker admitted but not answered (tokenising, queued or running) "
        "before 503; checked before any work.",
    )
    shared_queue_size: int | None = Field(
        None,
        ge=1,
        description="The bound of a model getting requests at more than 8x the rate of another model of "
        "the worker that had one in the last second: a flood beside lightly used models then holds no "
        "more of the worker's event loop and cores than this, and they keep their latency "
        "(bench/models.md, isolation); models loaded alike never hold each other back. Default: half of "
        "MAX_BATCH_SIZE. A request is never refused for its own size alone.",
    )
    refusal_delay_ms: float = Field(
        500.0,
        ge=0,
        le=5000,
        description="A request refused at the door (model at capacity) gets its 503 after this long, "
        "without spending CPU meanwhile: clients that retry at once then cost ~2 refusals/s per "
        "connection, not thousands, and admitted work keeps the event loop; 0: at once.",
    )
    inline_predict_ms: float = Field(
        2.0,
        ge=0,
        le=100,
        description="A lone model call (one item, nothing queued) expected, from earlier lone calls of "
        "its size, to take at most this long runs on the event loop instead of the inference thread, "
        "saving the hand-off; 0: never.",
    )
    model_batching: dict[str, ModelBatching] = Field(
        default_factory=dict,
        description='Per-model overrides as JSON, e.g. {"forecast": {"max_batch_size": 64}}.',
    )
    request_timeout_s: float = Field(30.0, gt=0, description="Per-request deadline before 504.")
    shutdown_drain_s: float = Field(20.0, ge=0, description="SIGTERM: time to finish queued work.")

    # Input limits, enforced before any model work
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body (413).")
    max_items_per_request: int = Field(64, ge=1, description="Texts or series per request.")
    max_text_chars: int = Field(20_000, ge=1, description="Characters per text.")
    max_tokens_per_sequence: int = Field(512, ge=1, description="Tokens per pre-tokenised sentence.")
    max_series_values: int = Field(10_000, ge=1, description="Values per posted series.")

    # Server
    workers: int | Literal["auto"] = Field(
        "auto", description="Worker processes sharing the port, each with every model; auto: one per core."
    )
    host: str = Field("0.0.0.0", description="Bind address.")
    port: int = Field(8000, ge=1, le=65535, description="Bind port.")
    probe_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="Port where `python -m app` answers GET /healthz and /readyz outside the request "
        "path (point orchestrator probes here); 0: off.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    api_key: SecretStr | None = Field(
        None,
        description="When set, every API endpoint needs X-API-Key; /healthz, /readyz and the browser "
        "pages (/, /docs, /redoc, /openapi.json) stay open.",
    )
    cors_origins: str = Field("", description="Comma-separated allowed CORS origins; empty: CORS off.")

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        # `API_KEY=` in compose or .env means "no key", not "the empty key".
        return None if value in ("", None) else value

    def batching_for(self, model: str, task: str | None = None) -> BatchingConfig:
        """The batcher's configuration for `model`: its overrides (by model name, else by its
        task), else the global settings; batching off means every item runs alone, with no wait."""
        o = self.model_batching.get(model) or self.model_batching.get(task or model, ModelBatching())
        size = o.max_batch_size or self.max_batch_size
        wait_ms = self.max_batch_wait_ms if o.max_batch_wait_ms is None else o.max_batch_wait_ms
        # Half the configured batch, even with batching off: the bound is about work held, not batches.
        shared = o.shared_queue_size or self.shared_queue_size or max(1, size // 2)
        if not self.batching:
            size, wait_ms = 1, 0.0
        return BatchingConfig(
            max_batch_size=size,
            max_wait_s=wait_ms / 1000,
            max_queue=o.max_queue_size or self.max_queue_size,
            inline_budget_s=self.inline_predict_ms / 1000,
            shared_queue=shared,
        )

    @property
    def input_limits(self) -> InputLimits:
        return InputLimits(
            max_items_per_request=self.max_items_per_request,
            max_text_chars=self.max_text_chars,
            max_tokens_per_sequence=self.max_tokens_per_sequence,
            max_series_values=self.max_series_values,
        )

    @property
    def graceful_shutdown_s(self) -> int:
        """SHUTDOWN_DRAIN_S as uvicorn's `timeout_graceful_shutdown`, which takes whole seconds and
        reads None (and only None) as "wait for ever": rounded up, so a drain under a second is
        still a deadline, never shorter than asked."""
        return math.ceil(self.shutdown_drain_s)

    @field_validator("workers")
    @classmethod
    def _positive_workers(cls, value: int | str) -> int | str:
        if value != "auto" and int(value) < 1:
            raise ValueError("WORKERS must be at least 1, or auto")
        return value

    @cached_property
    def worker_count(self) -> int:
        return resolve_workers(self.workers, usable_cpus())

    @cached_property
    def threads_per_model(self) -> int:
        """Runtime threads per model in each worker: THREADS, or the cores split over the workers."""
        return threads_per_worker(self.threads, self.worker_count, usable_cpus())

    # Per-model settings are looked up by model name, then by its task (a user's `sst5` follows
    # what is set for `sentiment` unless it is named itself).
    def backend_for(self, model: str, task: str | None = None) -> Literal["onnx", "torchscript"]:
        return self.model_backend.get(model) or self.model_backend.get(task or model, self.backend)

    def precision_for(self, model: str, task: str | None = None) -> Literal["auto", "float32", "int8"]:
        return self.model_precision.get(model) or self.model_precision.get(task or model, self.precision)

    @cached_property
    def default_model_map(self) -> dict[str, str]:
        """DEFAULT_MODELS as {task: name}."""
        return _pairs(self.default_models, "DEFAULT_MODELS", "task=name")

    @cached_property
    def model_version_map(self) -> dict[str, str]:
        """MODEL_VERSIONS as {name: version}."""
        return _pairs(self.model_versions, "MODEL_VERSIONS", "name=version")

    @field_validator("default_models", "model_versions")
    @classmethod
    def _well_formed_pairs(cls, value: str) -> str:
        _pairs(value, "the setting", "key=value")
        return value

    @cached_property
    def model_names(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]

    @cached_property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


def _pairs(text: str, setting: str, form: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = (x.strip() for x in part.partition("="))
        if not sep or not key or not value:
            raise ValueError(f"{setting}: {part!r} is not {form}")
        out[key] = value
    return out
