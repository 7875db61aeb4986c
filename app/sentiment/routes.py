"""POST /sentiment: HTTP wiring only; the pipeline is `SentimentTask` (task.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.core.service import TaskModels, service_for
from app.sentiment.schemas import SentimentRequest, SentimentResponse
from app.sentiment.task import SentimentTask

router = APIRouter(tags=["sentiment"])
SentimentService = Annotated[
    TaskModels[SentimentRequest, SentimentResponse], Depends(service_for(SentimentTask))
]


@router.post(
    "/sentiment",
    response_model=SentimentResponse,
    summary="Classify texts into the served model's labels",
    description="Each text gets the most probable of the model's labels and every label's "
    "probability. The labels come from the model's bundle (GET /models: `labels`): the shipped "
    "IMDB model answers `negative` or `positive`, a model trained on your own data answers in "
    "its own labels (`python -m training.sentiment --train FILE`).",
)
async def sentiment(body: SentimentRequest, service: SentimentService) -> SentimentResponse:
    return await service.handle(body)
