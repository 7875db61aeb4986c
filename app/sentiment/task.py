"""POST /sentiment, start to end: decode texts into token ids, run the model on a padded batch,
encode labels and probabilities. The route (`routes.py`) only wires this to HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.core.backends import Backend
from app.core.bundle import Bundle
from app.core.errors import invalid
from app.core.limits import InputLimits, check_count, check_texts
from app.core.task import ModelTask
from app.sentiment.preprocess import Preprocessor, SentimentItem
from app.sentiment.schemas import SentimentPrediction, SentimentRequest, SentimentResponse, TokenWeight

_WARMUP_TEXTS = (
    "A wonderful film, with a moving story and superb acting.",
    "Dull and far too long.<br /><br />I would not watch it again.",
)


@dataclass(frozen=True)
class SentimentResult:
    probs: np.ndarray  # float32 [classes], in manifest label order
    attention: np.ndarray | None  # float32 [kept tokens] when the head has attention


class SentimentTask(ModelTask[SentimentRequest, SentimentItem, SentimentResult, SentimentResponse]):
    name = "sentiment"
    cost_follows_size = True

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        super().__init__(bundle, backend)
        self.preprocessor = Preprocessor(bundle)
        self.section = self.preprocessor.section
        self.labels = list(self.manifest.labels)
        self.has_attention = "attention" in backend.output_names

    def request_size(self, request: SentimentRequest) -> int:
        return len(request.texts)

    def decode_cost(self, request: SentimentRequest) -> int:
        return sum(len(t) for t in request.texts)

    def decode(self, request: SentimentRequest, limits: InputLimits) -> list[SentimentItem]:
        check_count("texts", len(request.texts), limits.max_items_per_request, "text")
        if request.return_attention and not self.has_attention:
            head = self.manifest.architecture.get("head", "final")
            raise invalid(
                ("body", "return_attention"),
                f"the served sentiment model ({head!r} head) has no attention weights; "
                "send return_attention=false",
            )
        check_texts("texts", request.texts, limits.max_text_chars)
        items = []
        for i, text in enumerate(request.texts):
            item = self.preprocessor.prepare_text(text)
            if not item.n_tokens:  # e.g. only `<br />` tags
                raise invalid(("body", "texts", i), "text has no tokens once HTML line breaks are removed")
            items.append(item)
        return items

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

    def encode(
        self, request: SentimentRequest, items: Sequence[SentimentItem], results: Sequence[SentimentResult]
    ) -> SentimentResponse:
        return SentimentResponse(
            model=self.bundle.name,
            version=self.bundle.version,
            max_length=self.preprocessor.max_length,
            predictions=[
                self._prediction(item, result, request.return_attention)
                for item, result in zip(items, results, strict=True)
            ],
        )

    def _prediction(
        self, item: SentimentItem, result: SentimentResult, attention: bool
    ) -> SentimentPrediction:
        probs = [float(p) for p in result.probs]
        weights = None
        if attention and result.attention is not None:
            weights = [
                TokenWeight(token=t, weight=float(w))
                for t, w in zip(item.tokens, result.attention, strict=True)
            ]
        return SentimentPrediction(
            label=self.labels[max(range(len(probs)), key=probs.__getitem__)],
            probabilities=dict(zip(self.labels, probs, strict=True)),
            tokens=item.n_tokens,
            truncated=item.truncated,
            attention=weights,
        )

    def warmup_items(self) -> list[SentimentItem]:
        return [self.preprocessor.prepare_text(text) for text in _WARMUP_TEXTS]
