"""The sentiment task: pad a batch of prepared reviews, run the model once, split the results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.core.backends import Backend
from app.core.bundle import Bundle
from app.core.task import ModelTask
from app.sentiment.preprocess import Preprocessor, SentimentItem, split_tokens

_WARMUP_TEXTS = (
    "A wonderful film, with a moving story and superb acting.",
    "Dull and far too long.<br /><br />I would not watch it again.",
)


@dataclass(frozen=True)
class SentimentResult:
    probs: np.ndarray  # float32 [classes], in manifest label order
    attention: np.ndarray | None  # float32 [kept tokens] when the head has attention


class SentimentTask(ModelTask[SentimentItem, SentimentResult]):
    name = "sentiment"

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        super().__init__(bundle, backend)
        self.preprocessor = Preprocessor(bundle)
        self.labels = list(self.manifest.labels)
        self.has_attention = "attention" in backend.output_names

    def item_size(self, item: SentimentItem) -> int:
        return int(item.ids.size)

    def predict_batch(self, items: Sequence[SentimentItem]) -> list[SentimentResult]:
        lengths = np.array([item.ids.size for item in items], dtype=np.int64)
        token_ids = np.full((len(items), int(lengths.max())), self.preprocessor.pad_id, dtype=np.int64)
        for row, item in enumerate(items):
            token_ids[row, : item.ids.size] = item.ids
        out = self.backend.run({"token_ids": token_ids, "lengths": lengths})
        probs = out["probs"]
        attention = out.get("attention")
        return [
            SentimentResult(probs[i], None if attention is None else attention[i, : lengths[i]])
            for i in range(len(items))
        ]

    def warmup_items(self) -> list[SentimentItem]:
        return [self.preprocessor.prepare(split_tokens(text)) for text in _WARMUP_TEXTS]
