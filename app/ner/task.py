"""POST /ner, start to end: decode texts into sentence-sized pieces (a pre-tokenised sentence is
one piece, as posted), get emissions for a padded batch of pieces, decode them with the CRF
(numpy, shared with training), and encode entities with character offsets into each text. The
route (`routes.py`) only wires this to HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from app.core.backends import Backend
from app.core.bundle import Bundle, BundleError
from app.core.errors import invalid
from app.core.limits import BLANK, InputLimits, check_count, check_texts
from app.core.task import ModelTask
from app.core.text import Token, is_blank
from app.ner.bundle import NerSection
from app.ner.crf_decode import CrfParams, forward_backward, span_probability, viterbi
from app.ner.features import encode_batch
from app.ner.schemas import Entity, NerRequest, NerResponse, NerResult, TaggedToken
from app.ner.tags import bioes_spans

# The model was trained on CoNLL sentences; long texts are cut after sentence-final tokens so each
# piece looks like training data (and batches pad less). Entities never cross these tokens.
_SENTENCE_END = frozenset({".", "!", "?"})


@dataclass(frozen=True, slots=True)
class NerItem:
    """One sequence the model sees: a sentence-sized piece of a text, or a posted sentence."""

    words: tuple[str, ...]
    doc: int = 0  # which text/sentence of the request the piece belongs to
    source: str = ""  # that text (for pre-tokenised input: its tokens joined by spaces)
    tokens: tuple[Token, ...] = ()  # the piece's tokens with their offsets into `source`


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


def check_request(request: NerRequest, limits: InputLimits) -> list[tuple[str, list[Token]] | str]:
    """Every limit, before any model work. Returns pre-tokenised documents, or the raw text (to
    be tokenised after every check has passed)."""
    if (request.texts is None) == (request.tokens is None):
        raise invalid(("body",), "give exactly one of `texts` or `tokens`")
    if request.texts is not None:
        check_count("texts", len(request.texts), limits.max_items_per_request, "text")
        check_texts("texts", request.texts, limits.max_text_chars)
        return list(request.texts)
    assert request.tokens is not None
    check_count("tokens", len(request.tokens), limits.max_items_per_request, "sentence")
    docs: list[tuple[str, list[Token]] | str] = []
    for i, words in enumerate(request.tokens):
        if not words:
            raise invalid(("body", "tokens", i), "sentence has no tokens", limit=1, value=0)
        if len(words) > limits.max_tokens_per_sequence:
            raise invalid(
                ("body", "tokens", i),
                f"sentence has {len(words)} tokens; the limit is {limits.max_tokens_per_sequence}",
                limit=limits.max_tokens_per_sequence,
                value=len(words),
            )
        for j, w in enumerate(words):
            if is_blank(w):
                raise invalid(("body", "tokens", i, j), f"token is {BLANK}")
        docs.append(join_tokens(words))
    return docs


def assemble(pieces: Sequence[tuple[NerItem, NerPrediction]], return_tags: bool) -> NerResult:
    """One text's result from its pieces, in order: token-level entities become character spans
    of the text."""
    entities: list[Entity] = []
    tagged: list[TaggedToken] = []
    for item, pred in pieces:
        for e in pred.entities:
            start, end = item.tokens[e.start].start, item.tokens[e.end - 1].end
            entities.append(
                Entity(
                    text=item.source[start:end],
                    label=e.label,
                    start=start,
                    end=end,
                    confidence=round(e.confidence, 4),
                )
            )
        if return_tags:
            tagged.extend(
                TaggedToken(text=tok.text, start=tok.start, end=tok.end, tag=tag)
                for tok, tag in zip(item.tokens[: len(pred.tags)], pred.tags, strict=True)
            )
    return NerResult(entities=entities, tokens=tagged if return_tags else None)


class NerTask(ModelTask[NerRequest, NerItem, NerPrediction, NerResponse]):
    name: ClassVar[str] = "ner"
    cost_follows_size = True

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        super().__init__(bundle, backend)
        section = bundle.section(NerSection)
        self.section = section
        self.vocab = section.vocabulary_index(
            bundle, section.vocab_artifact, bundle.read_lines(section.vocab_artifact)
        )
        self.chars = section.vocabulary_index(
            bundle, section.chars_artifact, list(bundle.read_json(section.chars_artifact)), "char_vocab_size"
        )
        crf = bundle.read_json("crf")
        self.tags: list[str] = list(crf["tags"])
        if self.tags != list(self.manifest.labels):
            raise BundleError(f"bundle {bundle.path}: crf.json tags differ from the manifest labels")
        self.crf = CrfParams.from_json(crf)
        self.tokenize = section.tokenize()
        # Loading spaCy takes seconds; pay it at start-up, not on the first request with texts.
        self.tokenize("warm-up")

    def output_labels(self) -> list[str]:
        # The entity types, not the BIOES tags they are spelt with.
        return sorted({tag.split("-", 1)[1] for tag in self.tags if "-" in tag})

    def request_size(self, request: NerRequest) -> int:
        return len(request.texts if request.texts is not None else request.tokens or [])

    def decode_cost(self, request: NerRequest) -> int:
        if request.texts is not None:
            return sum(len(t) for t in request.texts)
        return sum(len(w) + 1 for words in request.tokens or [] for w in words)

    def decode(self, request: NerRequest, limits: InputLimits) -> list[NerItem]:
        items: list[NerItem] = []
        for d, doc in enumerate(check_request(request, limits)):
            if isinstance(doc, tuple):
                # A posted sentence is one sequence, as each training sentence was (it is within
                # the token limit): its "." tokens (LeNER-Br's "art ." abbreviations) do not cut it.
                source, tokens = doc
                ranges = [(0, len(tokens))]
            else:
                source, tokens = doc, self.tokenize(doc)
                ranges = split_pieces(tokens, limits.max_tokens_per_sequence)
            for a, b in ranges:
                piece = tuple(tokens[a:b])
                items.append(NerItem(tuple(t.text for t in piece), d, source, piece))
        return items

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

    def encode(
        self, request: NerRequest, items: Sequence[NerItem], results: Sequence[NerPrediction]
    ) -> NerResponse:
        docs = request.texts if request.texts is not None else request.tokens or []
        pieces: list[list[tuple[NerItem, NerPrediction]]] = [[] for _ in docs]
        for item, pred in zip(items, results, strict=True):
            pieces[item.doc].append((item, pred))
        return NerResponse(
            model=self.bundle.name,
            version=self.bundle.version,
            results=[assemble(doc_pieces, request.return_tags) for doc_pieces in pieces],
        )

    def warmup_items(self) -> list[NerItem]:
        return [
            NerItem(("EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", ".")),
            NerItem(("Peter", "Blackburn")),
        ]
