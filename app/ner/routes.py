"""POST /ner: HTTP wiring only; the pipeline is `NerTask` (task.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.core.service import TaskModels, service_for
from app.ner.schemas import NerRequest, NerResponse
from app.ner.task import NerTask

router = APIRouter(tags=["ner"])
NerService = Annotated[TaskModels[NerRequest, NerResponse], Depends(service_for(NerTask))]


@router.post(
    "/ner",
    response_model=NerResponse,
    response_model_exclude_none=True,
    summary="Named entities with character offsets and CRF confidences",
    description="Entity types are the served model's own, from its training data: see its "
    "manifest's `labels` in GET /models (the shipped CoNLL-2003 model: PER, ORG, LOC, MISC).",
)
async def ner(body: NerRequest, service: NerService) -> NerResponse:
    return await service.handle(body)
