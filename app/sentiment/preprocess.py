"""Text -> token ids, shared with training (`training.sentiment` imports these functions), so the
ids a review got in training are the ids the same text gets here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from app.core.bundle import Bundle
from app.core.text import (
    RunCache,
    Token,
    clean_html_breaks,
    load_tokenizer,
    run_pieces,
    tokenize,
    tokenize_uncached,
)
from app.sentiment.bundle import SentimentSection

T = TypeVar("T")


def split_tokens(text: str, language: str = "en") -> list[Token]:
    """Tokens as the model sees them, before lower-casing (their text is what the API shows)."""
    cleaned = clean_html_breaks(text)
    # English has the module-wide run cache; other languages are cached per Preprocessor.
    return tokenize(cleaned) if language == "en" else tokenize_uncached(cleaned, language)


def normalise(tokens: Sequence[Token], lowercase: bool) -> list[str]:
    return normalise_texts([t.text for t in tokens], lowercase)


def normalise_texts(texts: Sequence[str], lowercase: bool) -> list[str]:
    return [t.lower() for t in texts] if lowercase else list(texts)


def preprocess(text: str, lowercase: bool = True, language: str = "en") -> list[str]:
    return normalise(split_tokens(text, language), lowercase)


def truncate(seq: Sequence[T], max_length: int, head: int) -> list[T]:
    """Keep the first `head` and the last `max_length - head` items: reviews tend to open with
    the premise and close with the verdict, so the middle is the cheapest part to drop."""
    if len(seq) <= max_length:
        return list(seq)
    tail = max_length - head
    return list(seq[:head]) + (list(seq[-tail:]) if tail > 0 else [])


@dataclass(frozen=True)
class SentimentItem:
    ids: np.ndarray  # int64 [kept tokens]
    tokens: list[str]  # the kept tokens' text, in model order
    n_tokens: int  # before truncation
    truncated: bool


class Preprocessor:
    """Built from a bundle: its vocabulary artifact and typed `preprocessing` section."""

    def __init__(self, bundle: Bundle) -> None:
        section = bundle.section(SentimentSection)
        self.section = section
        words = bundle.read_lines(section.vocab_artifact)
        self.index = section.vocabulary_index(bundle, section.vocab_artifact, words)
        self.lowercase = section.lowercase
        self.max_length = section.max_length
        self.head_tokens = section.head_tokens
        self.pad_id = section.pad_id
        self.unk_id = section.unk_id
        self.language = section.language
        try:
            load_tokenizer(self.language)
        except Exception as exc:  # spaCy raises ImportError or its own error for unknown codes
            raise bundle.field_error("language", f"spaCy cannot tokenise {self.language!r}: {exc}") from None
        # Whitespace run -> its tokens' text and ids (None: the run needs whole-text spaCy).
        self.runs: RunCache[tuple[tuple[str, ...], tuple[int, ...]] | None] = RunCache(self._run_ids)

    def encode(self, words: Sequence[str]) -> list[int]:
        return [self.index.get(w, self.unk_id) for w in words]

    def prepare(self, tokens: Sequence[Token]) -> SentimentItem:
        kept = truncate(tokens, self.max_length, self.head_tokens)
        ids = np.asarray(self.encode(normalise(kept, self.lowercase)), dtype=np.int64)
        return SentimentItem(ids, [t.text for t in kept], len(tokens), len(tokens) > self.max_length)

    def prepare_text(self, text: str) -> SentimentItem:
        """`prepare(split_tokens(text))`, cheaper: 0.25 vs 0.65 ms on the benchmark's reviews,
        0.84 vs 1.32 ms (spaCy + prepare) over the whole IMDB test set, where 6% of runs are
        new. Tokens' ids are cached per whitespace run and no Token (offsets) is built, as
        sentiment reports none. spaCy cuts at whitespace first, so a text's tokens are
        its runs' tokens side by side, except where a run holds a contextual special case
        (`app.core.text.run_pieces`): that text goes through `prepare` whole.
        `python -m bench.tokenizer_check` compares the two on the whole IMDB test set."""
        cleaned = clean_html_breaks(text)
        words: list[str] = []
        ids: list[int] = []
        recent = self.runs.recent
        # str.split() cuts at str.isspace characters, the `\s` runs `tokenize` takes.
        for run in cleaned.split():
            known = recent[run] if run in recent else self.runs.get(run)
            if known is None:
                return self.prepare(tokenize_uncached(cleaned, self.language))
            words.extend(known[0])
            ids.extend(known[1])
        n_tokens = len(words)
        if n_tokens > self.max_length:
            words = truncate(words, self.max_length, self.head_tokens)
            ids = truncate(ids, self.max_length, self.head_tokens)
        return SentimentItem(np.asarray(ids, dtype=np.int64), words, n_tokens, n_tokens > self.max_length)

    def _run_ids(self, run: str) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
        pieces, contextual = run_pieces(run, self.language)
        texts = tuple(piece for piece, _ in pieces)
        return None if contextual else (texts, tuple(self.encode(normalise_texts(texts, self.lowercase))))
