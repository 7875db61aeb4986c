"""The FastAPI application: loads bundles at start-up, serves the three task routers plus health,
readiness, model info and metrics."""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import logging
import math
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app import __version__
from app.core.backends import load_backend
from app.core.batching import (
    BatchFailedError,
    MicroBatcher,
    Neighbourhood,
    QueueFullError,
    ShuttingDownError,
)
from app.core.bundle import (
    BundleError,
    BundleRef,
    load_bundle,
    read_manifest,
    resolve_bundle_dir,
    scan_bundles,
    unused_by,
)
from app.core.catalog import ModelCatalog, model_in_body
from app.core.contract import install_contract, shown_errors, unsupported_media_type
from app.core.device import Capabilities, select_device
from app.core.fairpool import FairPool
from app.core.logs import configure_logging, request_id_var
from app.core.metrics import Metrics
from app.core.middleware import ServiceMiddleware
from app.core.models_info import ModelsResponse, describe_models, models_response, rss_mib
from app.core.schemas import HealthStatus, ReadinessStatus
from app.core.service import AppState, ClientDisconnectedError, ModelService, StateDep
from app.core.settings import Settings
from app.core.task import ModelTask
from app.core.workers import Readiness, run_dir
from app.web import install_web

log = logging.getLogger("app")

# Task packages the service knows how to serve, by task (a manifest's `task`); each exports `Task`
# (its pipeline, task.py) and `router` (routes.py).
TASK_PACKAGES: dict[str, str] = {"sentiment": "app.sentiment", "ner": "app.ner", "forecast": "app.forecast"}


def _available(packages: Mapping[str, str]) -> dict[str, ModuleType]:
    return {
        name: importlib.import_module(path)
        for name, path in packages.items()
        if importlib.util.find_spec(path) is not None
    }


def load_task(
    bundle_dir: Path,
    modules: Mapping[str, ModuleType],
    settings: Settings,
    capabilities: Capabilities | None = None,
) -> ModelTask[Any, Any, Any, Any]:
    """The bundle in `bundle_dir` (verified: schema, checksums) loaded by the task package its
    manifest names, with the backend (BACKEND, MODEL_BACKEND), device, precision and threads
    `settings` give it: what every service worker loads, and what bulk scoring loads, so both
    answer with the same graph. The graphs of the backends not in use may be absent (the image
    leaves model.pt out)."""
    task_name = read_manifest(bundle_dir).task
    kind = settings.backend_for(bundle_dir.parent.name, task_name)
    bundle = load_bundle(bundle_dir, may_lack=unused_by(kind))
    if task_name not in modules:
        raise BundleError(
            f"{bundle.path}: manifest task {task_name!r} is not served here (tasks: {', '.join(modules)})"
        )
    device = select_device(settings.device, kind, capabilities or Capabilities.probe())
    precision = settings.precision_for(bundle.name, task_name)
    backend = load_backend(kind, bundle, device, settings.threads_per_model, precision)
    task: ModelTask[Any, Any, Any, Any] = modules[task_name].Task(bundle, backend)
    return task


def default_bundle_dir(settings: Settings, task: str) -> Path:
    """The bundle a request to /<task> without `model` gets (see ModelCatalog), found on disk
    without loading anything: DEFAULT_MODELS' choice for `task` ("name" or "name@version"), else
    the model named after the task, else the first name serving it; MODEL_VERSIONS' version of
    it, else the highest. For bulk scoring, which serves one model (`--model` sets DEFAULT_MODELS)."""
    spec = settings.default_model_map.get(task)
    if spec is None:
        refs, _ = scan_bundles(settings.model_dir, settings.model_names)
        names = sorted({r.name for r in refs if r.task == task})
        spec = task if task in names or not names else names[0]
    name, _, version = spec.partition("@")
    path = resolve_bundle_dir(settings.model_dir, name, version or settings.model_version_map.get(name))
    found = read_manifest(path).task
    if found != task:
        raise BundleError(f"model {name!r} ({path}) is a {found} model, not a {task} model")
    return path


def find_bundles(settings: Settings, modules: Mapping[str, ModuleType]) -> tuple[list[BundleRef], list[str]]:
    """The bundles under MODEL_DIR this service can serve (MODELS: only those names), and why
    each other one found there is not served."""
    refs, problems = scan_bundles(settings.model_dir, settings.model_names)
    servable = [r for r in refs if r.task in modules]
    problems += [
        f"{r.path}: manifest task {r.task!r} is not served here (tasks: {', '.join(modules)})"
        for r in refs
        if r.task not in modules
    ]
    return servable, problems


async def _load_catalog(
    settings: Settings,
    modules: Mapping[str, ModuleType],
    metrics: Metrics,
    executor: ThreadPoolExecutor,
    decode_pool: FairPool,
    refs: list[BundleRef],
    problems: list[str],
) -> ModelCatalog:
    """Load and warm up every bundle in `refs`. One that fails (checksum, schema, its task's
    section, the runtime) is skipped with an error log naming it, and the others are served:
    after a reload a bad new bundle must not take down what was being served. None at all is
    an error."""
    for problem in problems:
        log.error("bundle refused", extra={"error": problem})
    capabilities = Capabilities.probe()
    loop = asyncio.get_running_loop()
    services: dict[str, ModelService[Any, Any]] = {}
    skipped = list(problems)
    neighbourhood = Neighbourhood()  # this worker's models, which share its loop and cores
    for ref in refs:
        before = rss_mib()
        try:
            task = load_task(ref.path, modules, settings, capabilities)
            # Warm-up: the first call of a runtime allocates and specialises; pay that before /readyz.
            await loop.run_in_executor(executor, task.predict_batch, task.warmup_items())
        except Exception as exc:  # any failure of one bundle is that bundle's, not the service's
            skipped.append(f"{ref.path}: {exc}")
            # A BundleError says all there is to say; anything else gets its traceback.
            trace = None if isinstance(exc, BundleError) else exc
            log.error("bundle refused", extra={"bundle": str(ref.path), "error": str(exc)}, exc_info=trace)
            continue
        batcher: MicroBatcher[Any, Any] = MicroBatcher(
            ref.name,
            task.predict_batch,
            executor,
            settings.batching_for(ref.name, ref.task),
            size_of=task.item_size,
            cost_follows_size=task.cost_follows_size,
            observer=metrics,
            version=ref.version,
            neighbourhood=neighbourhood,
        )
        backend = task.backend
        services[ref.key] = ModelService(
            task=task,
            batcher=batcher,
            timeout_s=settings.request_timeout_s,
            limits=settings.input_limits,
            decode_executor=decode_pool.lane(ref.key),
            rss_mib=round(rss_mib() - before, 1),
        )
        log.info(
            "model loaded",
            extra={
                "model": ref.name,
                "version": ref.version,
                "task": ref.task,
                "backend": backend.name,
                "precision": backend.precision,
                "threads": settings.threads_per_model,
                "device": backend.device,
            },
        )
    if not services:
        where = settings.model_dir.resolve()
        if not skipped:
            raise BundleError(
                f"no model bundles under {where} (expected <name>/<version>/manifest.json; "
                "set MODEL_DIR, or train with `python -m training.<task>`)"
            )
        raise BundleError(f"no model under {where} could be served: " + "; ".join(skipped))
    return ModelCatalog(services, settings.default_model_map, settings.model_version_map, skipped)


def create_app(settings: Settings | None = None, task_packages: Mapping[str, str] = TASK_PACKAGES) -> FastAPI:
    settings = settings or Settings()
    modules = _available(task_packages)
    configure_logging(settings.log_level)
    metrics = Metrics()
    state = AppState(settings=settings, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refs, problems = find_bundles(settings, modules)
        # One inference thread per served model: a flood on one never queues another's batches.
        executor = ThreadPoolExecutor(max_workers=max(1, len(refs)), thread_name_prefix="infer")
        # Two decode threads: one tokenises while the other waits for the GIL; more only slow the loop.
        # Shared by the models in turn, so a flooded model's tokenising never queues another's.
        decode_pool = FairPool(2, thread_name_prefix="decode")
        catalog = await _load_catalog(settings, modules, metrics, executor, decode_pool, refs, problems)
        for svc in catalog.services.values():
            svc.batcher.start()
        state.catalog = catalog
        # Everything loaded so far (models, vocabularies, spaCy) lives as long as the process: move
        # it out of the cyclic GC's reach. Otherwise each full collection walks millions of these
        # objects while holding the GIL, and every request in flight waits ~100 ms (p99 was 10x
        # p50 on short texts).
        gc.collect()
        gc.freeze()
        state.readiness = Readiness(run_dir(), settings.worker_count)
        state.readiness.set(True)
        metrics.ready.set(1)
        try:
            yield
        finally:
            state.readiness.set(False)
            metrics.ready.set(0)
            results = await asyncio.gather(
                *(s.batcher.drain(settings.shutdown_drain_s) for s in catalog.services.values())
            )
            executor.shutdown(wait=True)
            decode_pool.shutdown(wait=True)
            metrics.close()
            state.load.close()
            log.info("shut down", extra={"drained": all(results)})

    app = FastAPI(
        title="lstm-serve",
        version=__version__,
        description="REST inference for three LSTM-family models: sentiment (BiLSTM), named entities "
        "(BiLSTM-CRF) and time-series forecasting (LSTM regressor), with dynamic micro-batching.",
        lifespan=lifespan,
        docs_url=None,  # app.web serves /docs and /redoc with their assets from here (no CDN)
        redoc_url=None,
    )
    state.attach(app.state)

    for module in modules.values():
        app.include_router(module.router)

    _add_operational_routes(app)
    install_web(app)
    install_contract(
        app,
        settings,
        lambda: {t: state.catalog.choices(t) for t in state.catalog.tasks},
        lambda: describe_models(state),
    )
    _add_error_handlers(app)
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        door=ModelDoor(state),
        load=state.load,
        refusal_delay_s=settings.refusal_delay_ms / 1000,
    )
    # Outermost, so browsers' preflights are answered before the API-key check.
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "x-api-key", "x-request-id"],
        )
    return app


class ModelDoor:
    """Admission at the door (app.core.middleware.Door): a POST to /<task> is for the model its
    body's `model` field names (the task's default without one), refused while that model is at
    capacity. The body is read for this only where the task serves more than one model."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def reads_body(self, path: str) -> bool:
        return self.state.catalog.served(path[1:]) > 1

    def gate(self, path: str, body: bytes | None) -> ModelService[Any, Any] | None:
        known, model = model_in_body(body) if body is not None else (True, None)
        return self.state.catalog.lookup(path[1:], model) if known else None


def _add_operational_routes(app: FastAPI) -> None:
    @app.get(
        "/healthz", tags=["operations"], operation_id="healthz", summary="Liveness: the process answers."
    )
    async def healthz() -> HealthStatus:
        return HealthStatus(status="ok")

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: every configured model loaded and warm.",
        operation_id="readyz",
        response_model=ReadinessStatus,
        responses={503: {"model": ReadinessStatus, "description": "Not ready yet, or shutting down."}},
    )
    async def readyz(state: StateDep) -> JSONResponse:
        ready = state.readiness.all_ready()  # with several workers: every one of them
        body = ReadinessStatus(status="ready" if ready else "not ready", models=sorted(state.services))
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get(
        "/models",
        tags=["operations"],
        summary="The served models: each one's name, version, task, labels and runtime, and the "
        "defaults per task.",
        response_model=ModelsResponse,
        operation_id="list_models",
    )
    async def models(state: StateDep) -> ModelsResponse:
        return models_response(state)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics.", operation_id="metrics")
    async def metrics_endpoint(state: StateDep) -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"detail": message, "request_id": request_id_var.get()}, status_code=status, headers=headers
    )


def json_safe(value: Any) -> Any:
    """Validation errors echo the offending input: make it something JSON can carry (NaN and
    Infinity literals and lone surrogates are accepted by the parser but cannot be written back)
    and keep it short."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        # Lone surrogates (valid JSON escapes, invalid UTF-8) would break the response encoder.
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value if len(value) <= 200 else value[:200] + f"... ({len(value)} characters)"
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        shown = [json_safe(v) for v in value[:20]]
        return [*shown, f"... ({len(value)} items)"] if len(value) > 20 else shown
    return value


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        refusal = unsupported_media_type(request, exc)
        if refusal is not None:
            return refusal
        errors = shown_errors(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": json_safe(errors)}, status_code=422)

    @app.exception_handler(QueueFullError)
    async def queue_full(_: Request, exc: QueueFullError) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": "1"})

    @app.exception_handler(ShuttingDownError)
    async def shutting_down(_: Request, exc: ShuttingDownError) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": "5"})

    @app.exception_handler(TimeoutError)
    async def timed_out(_: Request, exc: TimeoutError) -> JSONResponse:
        return _error(504, "the request did not finish within REQUEST_TIMEOUT_S")

    @app.exception_handler(ClientDisconnectedError)
    async def client_gone(_: Request, exc: ClientDisconnectedError) -> JSONResponse:
        # Nobody reads this answer; 499 (nginx's "client closed request") keeps the metrics honest.
        return _error(499, "client closed the request")

    @app.exception_handler(BatchFailedError)
    async def batch_failed(_: Request, exc: BatchFailedError) -> JSONResponse:
        log.error("batch failed", exc_info=exc.__cause__ or exc)
        return _error(500, "inference failed for the batch holding this request; see logs by request_id")
