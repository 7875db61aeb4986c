"""A second test task, the echo task under another name and endpoint (POST /twin): a model of
another task than the one a request names."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.core.service import TaskModels, service_for
from tests.support import echo


class Task(echo.Task):
    name = "twin"


class TwinRequest(echo.EchoRequest):
    """A request type of its own, as every task has (its `model` field lists its own models)."""


router = APIRouter(tags=["twin"])
TwinService = Annotated[TaskModels[TwinRequest, echo.EchoResponse], Depends(service_for(Task))]


@router.post("/twin", response_model_exclude_none=True)
async def twin(body: TwinRequest, service: TwinService) -> echo.EchoResponse:
    return await service.handle(body)
