"""A loaded model as the HTTP layer sees it: its task, its batcher, its bundle."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

from app.core.batching import MicroBatcher
from app.core.task import ModelTask


@dataclass
class ModelService:
    task: ModelTask[Any, Any]
    batcher: MicroBatcher[Any, Any]
    timeout_s: float = 30.0

    async def predict(self, items: Sequence[Any]) -> list[Any]:
        """Run prepared items through the shared batching path. A request past its deadline
        raises TimeoutError (504) and withdraws its items; queue-full and batch errors become
        HTTP answers in the app's exception handlers."""
        return await asyncio.wait_for(self.batcher.submit(items), self.timeout_s)


def get_service(name: str) -> Callable[[Request], ModelService]:
    """FastAPI dependency: the loaded service for model `name`, 503 when it is not served."""

    def dependency(request: Request) -> ModelService:
        services: dict[str, ModelService] = request.app.state.services
        try:
            return services[name]
        except KeyError:
            raise HTTPException(
                status_code=503, detail=f"model {name!r} is not loaded in this service (see MODELS)"
            ) from None

    return dependency
