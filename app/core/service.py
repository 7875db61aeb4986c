"""A loaded model as the HTTP layer sees it: its task, its batcher, and the request it serves."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

from app.core.batching import MicroBatcher
from app.core.task import ModelTask


class ClientDisconnectedError(Exception):
    """The client went away before its answer was ready; its queued items were withdrawn."""


async def _wait_for_disconnect(request: Request) -> None:
    # The body has been read by the time a handler runs, so the next ASGI message is the
    # disconnect (uvicorn sends it when the socket closes, or after the response).
    while (await request.receive())["type"] != "http.disconnect":
        pass


@dataclass(frozen=True)
class ModelService:
    task: ModelTask[Any, Any]
    batcher: MicroBatcher[Any, Any]
    timeout_s: float = 30.0
    request: Request | None = None

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


def get_service(name: str) -> Callable[[Request], ModelService]:
    """FastAPI dependency: the loaded service for model `name`, bound to the current request;
    503 when the model is not served."""

    def dependency(request: Request) -> ModelService:
        services: dict[str, ModelService] = request.app.state.services
        try:
            return dataclasses.replace(services[name], request=request)
        except KeyError:
            raise HTTPException(
                status_code=503, detail=f"model {name!r} is not loaded in this service (see MODELS)"
            ) from None

    return dependency
