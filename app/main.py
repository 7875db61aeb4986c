"""The FastAPI application: loads bundles at start-up, serves the three task routers plus health,
readiness, model info and metrics."""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
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
from app.core.batching import BatchFailedError, MicroBatcher, QueueFullError, ShuttingDownError
from app.core.bundle import BundleError, discover_tasks, load_bundle, resolve_bundle_dir, unused_by
from app.core.contract import install_contract, shown_errors, unsupported_media_type
from app.core.device import Capabilities, select_device
from app.core.logs import configure_logging, request_id_var
from app.core.metrics import Metrics
from app.core.middleware import ServiceMiddleware
from app.core.service import AppState, ClientDisconnectedError, ModelService, StateDep
from app.core.settings import Settings
from app.core.task import ModelTask
from app.core.workers import Readiness, run_dir
from app.web import install_web

log = logging.getLogger("app")

# Task packages the service knows how to serve, by model name; each exports `Task` (its pipeline,
# task.py) and `router` (routes.py).
TASK_PACKAGES: dict[str, str] = {"sentiment": "app.sentiment", "ner": "app.ner", "forecast": "app.forecast"}


def _available(packages: Mapping[str, str]) -> dict[str, ModuleType]:
    return {
        name: importlib.import_module(path)
        for name, path in packages.items()
        if importlib.util.find_spec(path) is not None
    }


def load_task(
    name: str, module: ModuleType, settings: Settings, capabilities: Capabilities | None = None
) -> ModelTask[Any, Any, Any, Any]:
    """Model `name`'s task on its newest bundle under MODEL_DIR, with the backend (BACKEND,
    MODEL_BACKEND), device, precision and threads `settings` give it: what every service worker
    loads at start-up, and what bulk scoring loads, so both answer with the same graph."""
    kind = settings.backend_for(name)
    bundle = load_bundle(resolve_bundle_dir(settings.model_dir, name), may_lack=unused_by(kind))
    if bundle.manifest.task != name:
        raise BundleError(f"{bundle.path}: manifest task is {bundle.manifest.task!r}, expected {name!r}")
    device = select_device(settings.device, kind, capabilities or Capabilities.probe())
    backend = load_backend(kind, bundle, device, settings.threads_per_model, settings.precision_for(name))
    task: ModelTask[Any, Any, Any, Any] = module.Task(bundle, backend)
    return task


def _load_services(
    settings: Settings,
    modules: Mapping[str, ModuleType],
    metrics: Metrics,
    executor: ThreadPoolExecutor,
    decode_executor: ThreadPoolExecutor,
) -> dict[str, ModelService[Any, Any]]:
    names = settings.model_names or discover_tasks(settings.model_dir)
    if not names:
        raise BundleError(
            f"no model bundles under {settings.model_dir.resolve()} "
            "(expected <model>/<version>/manifest.json; "
            "set MODEL_DIR, or train with `python -m training.<model>`)"
        )
    capabilities = Capabilities.probe()
    services: dict[str, ModelService[Any, Any]] = {}
    for name in names:
        if name not in modules:
            raise BundleError(f"unknown model {name!r}: this service serves {', '.join(modules)}")
        task = load_task(name, modules[name], settings, capabilities)
        backend = task.backend
        batcher: MicroBatcher[Any, Any] = MicroBatcher(
            name,
            task.predict_batch,
            executor,
            settings.batching_for(name),
            size_of=task.item_size,
            cost_follows_size=task.cost_follows_size,
            observer=metrics,
        )
        services[name] = ModelService(
            task=task,
            batcher=batcher,
            timeout_s=settings.request_timeout_s,
            limits=settings.input_limits,
            decode_executor=decode_executor,
        )
        log.info(
            "model loaded",
            extra={
                "model": name,
                "version": task.manifest.version,
                "backend": backend.name,
                "precision": backend.precision,
                "threads": settings.threads_per_model,
                "device": backend.device,
            },
        )
    return services


def create_app(settings: Settings | None = None, task_packages: Mapping[str, str] = TASK_PACKAGES) -> FastAPI:
    settings = settings or Settings()
    modules = _available(task_packages)
    configure_logging(settings.log_level)
    metrics = Metrics()
    state = AppState(settings=settings, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One inference thread per model: models run concurrently, each one batch at a time.
        executor = ThreadPoolExecutor(max_workers=max(1, len(modules)), thread_name_prefix="infer")
        # Two decode threads: one tokenises while the other waits for the GIL; more only slow the loop.
        decode_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
        services = _load_services(settings, modules, metrics, executor, decode_executor)
        loop = asyncio.get_running_loop()
        for name, svc in services.items():
            # Warm-up: the first call of a runtime allocates and specialises; pay that before /readyz.
            await loop.run_in_executor(executor, svc.task.predict_batch, svc.task.warmup_items())
            svc.batcher.start()
            log.info("model warm", extra={"model": name})
        state.services = services
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
                *(s.batcher.drain(settings.shutdown_drain_s) for s in services.values())
            )
            executor.shutdown(wait=True)
            decode_executor.shutdown(wait=True)
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
    install_contract(app, settings)
    _add_error_handlers(app)
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        door=_door(state),
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


def _door(state: AppState) -> Callable[[str], str | None]:
    """Admission at the door: a POST to /<model> is refused while that model is at capacity."""

    def refusal(path: str) -> str | None:
        service = state.services.get(path[1:])
        return None if service is None else service.batcher.refusal()

    return refusal


def _add_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: every configured model loaded and warm.")
    async def readyz(state: StateDep) -> JSONResponse:
        if not state.readiness.all_ready():  # with several workers: every one of them
            return JSONResponse({"status": "not ready", "models": sorted(state.services)}, status_code=503)
        return JSONResponse({"status": "ready", "models": sorted(state.services)})

    @app.get("/models", tags=["operations"], summary="Each served bundle's manifest, without large tables.")
    async def models(state: StateDep) -> dict[str, Any]:
        return {
            name: {
                "manifest": svc.task.manifest.summary(),
                "backend": svc.task.backend.name,
                "precision": svc.task.backend.precision,
                "device": svc.task.backend.device,
                "workers": state.settings.worker_count,
                "threads_per_worker": state.settings.threads_per_model,
                "batching": svc.batcher.info() | {"enabled": state.settings.batching},
            }
            for name, svc in state.services.items()
        }

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics.")
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
