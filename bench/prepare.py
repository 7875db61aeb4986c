"""Raw request inputs -> the prepared items a Task's `predict_batch` takes, through the routers' own
preparation functions, so the in-process ceiling measures exactly the model work the server does.

One adapter per task; each mirrors what its router's handler does between validation and
`service.predict(items)`. When a router changes its helpers, the adapter here must follow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core.settings import Settings


def _sentiment(task: Any, settings: Settings) -> Callable[[list[Any]], list[Any]]:
    from app.sentiment import routes as sentiment_routes

    def prepare(texts: list[Any]) -> list[Any]:
        # routes.sentiment: _tokenise (spaCy, in the thread pool) -> task.preprocessor.prepare
        token_lists = sentiment_routes._tokenise([str(t) for t in texts])
        return [task.preprocessor.prepare(tokens) for tokens in token_lists]

    return prepare


def _ner(task: Any, settings: Settings) -> Callable[[list[Any]], list[Any]]:
    from app.ner import api as ner_api
    from app.ner.task import NerItem

    def prepare(texts: list[Any]) -> list[Any]:
        # api.ner: validate -> _tokenize_all -> split_pieces -> one NerItem per piece
        docs = ner_api._tokenize_all([str(t) for t in texts])
        items: list[Any] = []
        for _, tokens in docs:
            for a, b in ner_api.split_pieces(tokens, settings.max_tokens_per_sequence):
                items.append(NerItem(tuple(t.text for t in tokens[a:b])))
        return items

    return prepare


def _forecast(task: Any, settings: Settings) -> Callable[[list[Any]], list[Any]]:
    from app.forecast.schemas import SeriesIn
    from app.forecast.validation import prepare_series

    def prepare(series: list[Any]) -> list[Any]:
        # routes.forecast: SeriesIn (pydantic) -> prepare_series(...).item
        return [
            prepare_series(i, SeriesIn.model_validate(s), task.limits, settings.max_series_values).item
            for i, s in enumerate(series)
        ]

    return prepare


ADAPTERS: dict[str, Callable[[Any, Settings], Callable[[list[Any]], list[Any]]]] = {
    "sentiment": _sentiment,
    "ner": _ner,
    "forecast": _forecast,
}


def preparer(model: str, task: Any, settings: Settings) -> Callable[[list[Any]], list[Any]]:
    """A function turning raw inputs (texts / series dicts) into `task`'s prepared items."""
    return ADAPTERS[model](task, settings)
