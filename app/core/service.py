"""A loaded model as the HTTP layer sees it: its task, its batcher, and the request it serves; and
the typed FastAPI dependencies the routes take (`StateDep`, `service_for`: the served models of
a task, of which each request's `model` field picks one)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from app.core.batching import MicroBatcher
from app.core.bundle import model_key
from app.core.catalog import MODEL_FIELD, SCOPE_KEY, ModelCatalog
from app.core.limits import InputLimits
from app.core.metrics import Metrics
from app.core.settings import Settings
from app.core.task import ModelTask
from app.core.workers import Readiness, WorkerLoad, run_dir

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


# Requests with at most this many characters to tokenise are decoded on the event loop (~0.3 ms
# for spaCy; two thread hand-offs and the GIL round trips they cost are dearer than that).
INLINE_DECODE_COST = 1000


class ClientDisconnectedError(Exception):
    """The client went away before its answer was ready; its queued items were withdrawn."""


async def _wait_for_disconnect(request: Request) -> None:
    # The body has been read by the time a handler runs, so the next ASGI message is the
    # disconnect (uvicorn sends it when the socket closes, or after the response).
    while (await request.receive())["type"] != "http.disconnect":
        pass


@dataclass(frozen=True)
class ModelService(Generic[RequestT, ResponseT]):
    task: ModelTask[RequestT, Any, Any, ResponseT]
    batcher: MicroBatcher[Any, Any]
    timeout_s: float
    # The request limits (MAX_ITEMS_PER_REQUEST...), from the settings at start-up.
    limits: InputLimits
    request: Request | None = None
    # Where `decode` runs. A small pool of its own, not the default 40-thread one: tokenising holds
    # the GIL, so more threads add no throughput, only more contenders the event loop must win
    # the GIL against before it can answer /readyz or send a 503.
    decode_executor: Executor | None = None
    # How much this worker's resident memory grew while the model loaded and warmed up (MiB).
    rss_mib: float | None = None

    @property
    def name(self) -> str:
        return self.task.bundle.name

    @property
    def version(self) -> str:
        return self.task.bundle.version

    @property
    def task_name(self) -> str:
        return self.task.name

    @property
    def key(self) -> str:
        return model_key(self.name, self.version)

    @property
    def labels(self) -> tuple[str, str]:
        """(name, version): what the access log and the per-model metrics carry."""
        return self.name, self.version

    def refusal(self) -> str | None:
        """Why this model would refuse a new request right now (at capacity), or None."""
        return self.batcher.refusal()

    async def handle(self, body: RequestT) -> ResponseT:
        """One request through the task's pipeline: admission (503 at once when the model has
        MAX_QUEUE_SIZE items in flight, before any work), decode (in a decode thread, unless the
        request is small enough to tokenise on the event loop: long texts would stall it),
        predict through the shared batcher, encode."""
        with self.batcher.admit(self.task.request_size(body)):
            cost = self.task.decode_cost(body)
            if cost is not None and cost <= INLINE_DECODE_COST:
                items = self.task.decode(body, self.limits)
            elif self.decode_executor is None:
                items = await run_in_threadpool(self.task.decode, body, self.limits)
            else:
                loop = asyncio.get_running_loop()
                items = await loop.run_in_executor(self.decode_executor, self.task.decode, body, self.limits)
            results = await self.predict(items)
        return self.task.encode(body, items, results)

    async def predict(self, items: Sequence[Any]) -> list[Any]:
        """Run prepared items through the shared batching path.

        Past the deadline this raises TimeoutError (504); when the client disconnects first it
        raises ClientDisconnectedError. Either way the request's items that have not started are
        withdrawn from the queue, so abandoned work never delays anyone else."""
        work: asyncio.Future[Any] = asyncio.ensure_future(self.batcher.submit(items))
        watchers: set[asyncio.Future[Any]] = {work}
        if self.request is not None:
            watchers.add(asyncio.ensure_future(_wait_for_disconnect(self.request)))
        try:
            done, _ = await asyncio.wait(
                watchers, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for fut in watchers:
                if not fut.done():
                    fut.cancel()
            for fut in watchers - {work}:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fut
        if work in done:
            results: list[Any] = work.result()
            return results
        with contextlib.suppress(asyncio.CancelledError):
            await work
        if done:
            raise ClientDisconnectedError
        raise TimeoutError


@dataclass
class AppState:
    """Everything the app holds at run time, in one typed object (`app.state.lstm`)."""

    settings: Settings
    metrics: Metrics
    catalog: ModelCatalog = field(default_factory=lambda: ModelCatalog({}))
    # Whether this worker is ready, and (`all_ready`) whether every worker is.
    readiness: Readiness = field(default_factory=lambda: Readiness(None, 1))
    # Requests in progress here and in the sibling workers (keep-alive connections kept even).
    load: WorkerLoad = field(default_factory=lambda: WorkerLoad(run_dir()))

    @property
    def ready(self) -> bool:
        return self.readiness.local

    @property
    def services(self) -> dict[str, ModelService[Any, Any]]:
        """Every served model, by "name@version"."""
        return self.catalog.services

    def attach(self, state: State) -> None:
        state.lstm = self

    @staticmethod
    def of(state: State) -> AppState:
        found = getattr(state, "lstm", None)
        if not isinstance(found, AppState):
            raise RuntimeError("app.state.lstm is not set: build the app with app.main.create_app")
        return found


# The dependencies are `async def` although they never await: FastAPI runs a plain `def` dependency
# in its thread pool, a thread hand-off per dependency per request (a fifth of the event loop's
# time on short requests, bench profile).
async def get_state(request: Request) -> AppState:
    return AppState.of(request.app.state)


StateDep = Annotated[AppState, Depends(get_state)]


@dataclass(frozen=True)
class TaskModels(Generic[RequestT, ResponseT]):
    """The served models of one task, bound to the current request: `handle` serves the body
    with the model its `model` field chooses (a 422 naming the field when none fits)."""

    task: str
    catalog: ModelCatalog
    request: Request

    async def handle(self, body: RequestT) -> ResponseT:
        chosen: ModelService[RequestT, ResponseT] = self.catalog.choose(
            self.task, getattr(body, MODEL_FIELD, None)
        )
        self.request.scope[SCOPE_KEY] = chosen.labels
        # Bound to the request, so that it notices a disconnect.
        return await dataclasses.replace(chosen, request=self.request).handle(body)


def service_for(
    task_type: type[ModelTask[RequestT, Any, Any, ResponseT]],
) -> Callable[[Request], Awaitable[TaskModels[RequestT, ResponseT]]]:
    """FastAPI dependency: the served models of `task_type`, bound to the current request; 503
    when this instance serves none of that task. Routes wrap it in an `Annotated` alias, e.g.
    `SentimentService`."""

    async def dependency(request: Request) -> TaskModels[RequestT, ResponseT]:
        task = task_type.name
        catalog = AppState.of(request.app.state).catalog
        if catalog.default(task) is None:
            raise HTTPException(
                status_code=503, detail=f"no {task} model is loaded in this service (see MODELS, MODEL_DIR)"
            )
        return TaskModels(task, catalog, request)

    return dependency
