"""`POST /ner`: validate, tokenise, cut texts into sentence-sized pieces, batch, reassemble."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from app.core.errors import invalid
from app.core.limits import check_count, check_texts
from app.core.service import ModelService, get_service
from app.core.text import Token, tokenize
from app.ner.schemas import Entity, NerRequest, NerResponse, NerResult, TaggedToken
from app.ner.task import NerItem, NerPrediction

router = APIRouter(tags=["ner"])

# The model was trained on CoNLL sentences; long texts are cut after sentence-final tokens so each
# piece looks like training data (and batches pad less). Entities never cross these tokens.
_SENTENCE_END = frozenset({".", "!", "?"})


def join_tokens(words: Sequence[str]) -> tuple[str, list[Token]]:
    """The string pre-tokenised input is reported against: tokens joined by single spaces."""
    tokens, pos = [], 0
    for w in words:
        tokens.append(Token(w, pos, pos + len(w)))
        pos += len(w) + 1
    return " ".join(words), tokens


def split_pieces(tokens: Sequence[Token], max_tokens: int) -> list[tuple[int, int]]:
    """[start, end) token ranges: sentence ends close a piece, and no piece exceeds max_tokens."""
    pieces, start = [], 0
    for i, tok in enumerate(tokens):
        if tok.text in _SENTENCE_END or i + 1 - start >= max_tokens:
            pieces.append((start, i + 1))
            start = i + 1
    if start < len(tokens):
        pieces.append((start, len(tokens)))
    return pieces


def validate(body: NerRequest, settings: Any) -> list[tuple[str, list[Token]] | str]:
    """Checks every limit before any model work. Returns pre-tokenised documents, or the raw text
    (tokenised later, off the event loop)."""
    if (body.texts is None) == (body.tokens is None):
        raise invalid(("body",), "give exactly one of `texts` or `tokens`", type_="value_error.exclusive")
    if body.texts is not None:
        check_count("texts", len(body.texts), settings.max_items_per_request, "text")
        check_texts("texts", body.texts, settings.max_text_chars)
        return list(body.texts)
    assert body.tokens is not None
    check_count("tokens", len(body.tokens), settings.max_items_per_request, "sentence")
    docs: list[tuple[str, list[Token]] | str] = []
    for i, words in enumerate(body.tokens):
        if not words:
            raise invalid(("body", "tokens", i), "sentence has no tokens", limit=1, value=0)
        if len(words) > settings.max_tokens_per_sequence:
            raise invalid(
                ("body", "tokens", i),
                f"sentence has {len(words)} tokens; the limit is {settings.max_tokens_per_sequence}",
                limit=settings.max_tokens_per_sequence,
                value=len(words),
            )
        for j, w in enumerate(words):
            if not w.strip():
                raise invalid(("body", "tokens", i, j), "token is empty or whitespace only")
        docs.append(join_tokens(words))
    return docs


def _tokenize_all(docs: list[tuple[str, list[Token]] | str]) -> list[tuple[str, list[Token]]]:
    return [d if isinstance(d, tuple) else (d, tokenize(d)) for d in docs]


def assemble(
    source: str,
    tokens: Sequence[Token],
    pieces: Sequence[tuple[int, int]],
    preds: Sequence[NerPrediction],
    return_tags: bool,
) -> NerResult:
    entities: list[Entity] = []
    tagged: list[TaggedToken] = []
    for (offset, _), pred in zip(pieces, preds, strict=True):
        for e in pred.entities:
            start, end = tokens[offset + e.start].start, tokens[offset + e.end - 1].end
            entities.append(
                Entity(
                    text=source[start:end],
                    label=e.label,
                    start=start,
                    end=end,
                    confidence=round(e.confidence, 4),
                )
            )
        if return_tags:
            tagged.extend(
                TaggedToken(text=tok.text, start=tok.start, end=tok.end, tag=tag)
                for tok, tag in zip(tokens[offset : offset + len(pred.tags)], pred.tags, strict=True)
            )
    return NerResult(entities=entities, tokens=tagged if return_tags else None)


@router.post(
    "/ner",
    response_model=NerResponse,
    response_model_exclude_none=True,
    summary="Named entities (PER, ORG, LOC, MISC) with character offsets and CRF confidences",
)
async def ner(
    body: NerRequest,
    request: Request,
    service: Annotated[ModelService, Depends(get_service("ner"))],
) -> NerResponse:
    settings = request.app.state.settings
    docs = await run_in_threadpool(_tokenize_all, validate(body, settings))
    items: list[NerItem] = []
    layout: list[list[tuple[int, int]]] = []
    for _, tokens in docs:
        pieces = split_pieces(tokens, settings.max_tokens_per_sequence)
        layout.append(pieces)
        items.extend(NerItem(tuple(t.text for t in tokens[a:b])) for a, b in pieces)
    preds = await service.predict(items)
    results, k = [], 0
    for (source, tokens), pieces in zip(docs, layout, strict=True):
        results.append(assemble(source, tokens, pieces, preds[k : k + len(pieces)], body.return_tags))
        k += len(pieces)
    manifest = service.task.manifest
    return NerResponse(model=manifest.task, version=manifest.version, results=results)
