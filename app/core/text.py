"""Tokenisation shared by training and serving, so the ids a model saw in training are the ids
it gets in production. spaCy's rule-based English tokenizer needs no model download."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, NamedTuple

from pydantic import AfterValidator

TOKENIZER_NAME = "spacy.blank('en') tokenizer"
_BR = re.compile(r"<br\s*/?>", re.I)


class Token(NamedTuple):
    text: str
    start: int  # character offset into the original string
    end: int


@lru_cache(maxsize=1)
def _tokenizer():  # type: ignore[no-untyped-def]
    import spacy

    return spacy.blank("en").tokenizer


def spacy_version() -> str:
    import spacy

    return str(spacy.about.__version__)


def tokenize(text: str) -> list[Token]:
    """Tokens with character offsets into `text`; whitespace-only tokens are dropped."""
    doc = _tokenizer()(text)
    return [Token(t.text, t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]


def clean_html_breaks(text: str) -> str:
    """IMDB reviews carry `<br />` tags; both training and serving replace them by spaces
    (same length is not kept: offsets are only reported by NER, which does not clean)."""
    return _BR.sub(" ", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def require_valid_unicode(text: str) -> str:
    """JSON escapes can smuggle in lone surrogates (`"\\ud800"`): not text, and not encodable as
    UTF-8, so they would fail deep inside tokenising or writing the answer. Refuse them up front."""
    bad = _SURROGATE.search(text)
    if bad is not None:
        raise ValueError(
            f"text holds a lone surrogate (U+{ord(bad.group()):04X}) at character {bad.start()}; "
            "send valid Unicode"
        )
    return text


# A `str` field that holds real Unicode text; a violation is a 422 naming the field.
UnicodeText = Annotated[str, AfterValidator(require_valid_unicode)]
