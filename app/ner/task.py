"""NER inference: pad a batch of token sequences, get emissions from the backend, decode with the
CRF (numpy, shared with training) and attach a confidence to each entity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from app.core.backends import Backend
from app.core.bundle import Bundle, BundleError
from app.core.task import ModelTask
from app.core.text import tokenize
from app.ner.crf_decode import CrfParams, forward_backward, span_probability, viterbi
from app.ner.features import encode_batch
from app.ner.tags import bioes_spans


@dataclass(frozen=True, slots=True)
class NerItem:
    """One sequence the model sees: a sentence-sized piece of a text, or a posted sentence."""

    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenEntity:
    start: int  # token index, inclusive
    end: int  # token index, exclusive
    label: str
    confidence: float


@dataclass(frozen=True, slots=True)
class NerPrediction:
    tags: list[str]
    entities: list[TokenEntity]


class NerTask(ModelTask[NerItem, NerPrediction]):
    name: ClassVar[str] = "ner"

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        super().__init__(bundle, backend)
        self.vocab = {w: i for i, w in enumerate(bundle.read_lines("vocab"))}
        self.chars = {c: i for i, c in enumerate(bundle.read_json("chars"))}
        crf = bundle.read_json("crf")
        self.tags: list[str] = list(crf["tags"])
        if self.tags != list(self.manifest.labels):
            raise BundleError(f"bundle {bundle.path}: crf.json tags differ from the manifest labels")
        self.crf = CrfParams.from_json(crf)
        # Loading spaCy takes seconds; pay it at start-up, not on the first request with texts.
        tokenize("warm-up")

    def item_size(self, item: NerItem) -> int:
        return len(item.words)

    def predict_batch(self, items: Sequence[NerItem]) -> list[NerPrediction]:
        feeds = encode_batch([item.words for item in items], self.vocab, self.chars)
        emissions = self.backend.run(feeds)["emissions"].astype(np.float64)
        lengths = feeds["lengths"]
        paths = viterbi(emissions, lengths, self.crf)
        alpha, beta, log_z = forward_backward(emissions, lengths, self.crf)
        results = []
        for b, path in enumerate(paths):
            tags = [self.tags[t] for t in path]
            entities = [
                TokenEntity(
                    start,
                    end,
                    label,
                    span_probability(
                        emissions[b], alpha[b], beta[b], float(log_z[b]), self.crf, start, path[start:end]
                    ),
                )
                for start, end, label in bioes_spans(tags)
            ]
            results.append(NerPrediction(tags, entities))
        return results

    def warmup_items(self) -> list[NerItem]:
        return [
            NerItem(("EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", ".")),
            NerItem(("Peter", "Blackburn")),
        ]
