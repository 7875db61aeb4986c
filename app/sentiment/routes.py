"""POST /sentiment."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from app.core.errors import invalid
from app.core.limits import check_count, check_texts
from app.core.service import ModelService, get_service
from app.core.settings import Settings
from app.core.text import Token
from app.sentiment.preprocess import SentimentItem, split_tokens
from app.sentiment.schemas import SentimentPrediction, SentimentRequest, SentimentResponse, TokenWeight
from app.sentiment.task import SentimentResult, SentimentTask

router = APIRouter(tags=["sentiment"])


def _validate(body: SentimentRequest, settings: Settings, task: SentimentTask) -> None:
    check_count("texts", len(body.texts), settings.max_items_per_request, "text")
    if body.return_attention and not task.has_attention:
        head = task.manifest.architecture.get("head", "final")
        raise invalid(
            ("body", "return_attention"),
            f"the served sentiment model ({head!r} head) has no attention weights; "
            "send return_attention=false",
        )
    check_texts("texts", body.texts, settings.max_text_chars)


def _tokenise(texts: list[str]) -> list[list[Token]]:
    return [split_tokens(t) for t in texts]


def _prediction(
    item: SentimentItem, result: SentimentResult, labels: list[str], attention: bool
) -> SentimentPrediction:
    probs = [float(p) for p in result.probs]
    weights = None
    if attention and result.attention is not None:
        weights = [
            TokenWeight(token=t, weight=float(w)) for t, w in zip(item.tokens, result.attention, strict=True)
        ]
    return SentimentPrediction(
        label=labels[max(range(len(probs)), key=probs.__getitem__)],
        probabilities=dict(zip(labels, probs, strict=True)),
        tokens=item.n_tokens,
        truncated=item.truncated,
        attention=weights,
    )


@router.post(
    "/sentiment", response_model=SentimentResponse, summary="Classify reviews as positive or negative"
)
async def sentiment(
    body: SentimentRequest,
    request: Request,
    service: ModelService = Depends(get_service("sentiment")),
) -> SentimentResponse:
    task = cast(SentimentTask, service.task)
    _validate(body, request.app.state.settings, task)
    # spaCy on up to MAX_ITEMS_PER_REQUEST long texts takes long enough to stall the event loop.
    token_lists = await run_in_threadpool(_tokenise, body.texts)
    for i, tokens in enumerate(token_lists):
        if not tokens:  # e.g. only `<br />` tags
            raise invalid(("body", "texts", i), "text has no tokens once HTML line breaks are removed")
    items = [task.preprocessor.prepare(tokens) for tokens in token_lists]
    results: list[SentimentResult] = await service.predict(items)
    return SentimentResponse(
        model=task.manifest.task,
        version=task.manifest.version,
        max_length=task.preprocessor.max_length,
        predictions=[
            _prediction(item, res, task.labels, body.return_attention)
            for item, res in zip(items, results, strict=True)
        ],
    )
