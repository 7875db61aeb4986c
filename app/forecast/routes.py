"""POST /forecast: HTTP wiring only; the pipeline is `ForecastTask` (task.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.core.service import TaskModels, service_for
from app.forecast.schemas import ForecastRequest, ForecastResponse
from app.forecast.task import ForecastTask

router = APIRouter(tags=["forecast"])
ForecastService = Annotated[TaskModels[ForecastRequest, ForecastResponse], Depends(service_for(ForecastTask))]


@router.post(
    "/forecast",
    response_model=ForecastResponse,
    summary="Forecast one or more series with prediction intervals",
)
async def forecast(body: ForecastRequest, service: ForecastService) -> ForecastResponse:
    return await service.handle(body)
