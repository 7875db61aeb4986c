"""Raw request inputs -> the prepared items a Task's `predict_batch` takes, through the task's own
public `decode` (the very method POST /<task> runs), so the in-process ceiling measures exactly the
model work the server does. The only per-task knowledge here is how a raw workload input becomes
that task's request body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from app.core.settings import Settings
from app.core.task import ModelTask
from app.forecast.schemas import ForecastRequest
from app.ner.schemas import NerRequest
from app.sentiment.schemas import SentimentRequest

# Workload inputs (texts, or series as JSON objects) -> the request body POST /<model> takes.
REQUESTS: dict[str, Callable[[list[Any]], BaseModel]] = {
    "sentiment": lambda texts: SentimentRequest(texts=[str(t) for t in texts]),
    "ner": lambda texts: NerRequest(texts=[str(t) for t in texts]),
    "forecast": lambda series: ForecastRequest.model_validate({"series": series}),
}


def preparer(
    model: str, task: ModelTask[Any, Any, Any, Any], settings: Settings
) -> Callable[[list[Any]], list[Any]]:
    """A function turning raw inputs (texts / series dicts) into `task`'s prepared items."""
    build, limits = REQUESTS[model], settings.input_limits

    def prepare(raw: list[Any]) -> list[Any]:
        return task.decode(build(raw), limits)

    return prepare
