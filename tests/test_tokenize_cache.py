"""The cached tokenizer gives exactly spaCy's tokens and offsets, whatever the whitespace and
whatever came before (the cache must never leak one text's tokens into another's). The whole
IMDB test set is compared by `python -m bench.tokenizer_check` (it needs ../shared/data)."""

from __future__ import annotations

import pytest

from app.core import text
from app.core.text import tokenize, tokenize_uncached

TEXTS = [
    "A wonderful film, with a moving story and superb acting.",
    "Don't miss it!!! 10/10... (seriously)",
    "  leading and trailing spaces  ",
    "tabs\tand\nnew\r\nlines and  double  spaces",
    "non\u00a0breaking\u2003em-space\u3000ideographic",
    "URLs like https://example.com/a?b=c and e-mail me@example.com",
    "Emoji 👍🏽 and accents: café, naïve, Ångström; quotes “like this” — dashes",
    "O'Neil's can't-miss U.S.A. film, e.g. in the 1990s: $5.99!",
    "<br />already cleaned?",
    "Big boats OK, don't gotta worry 'bout nothing :) (-: :-( 'em",
    "",
    "   ",
    "a",
]


@pytest.mark.parametrize("value", TEXTS)
def test_same_tokens_as_spacy(value: str) -> None:
    assert tokenize(value) == tokenize_uncached(value)


def test_cache_is_not_order_dependent_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text, "_RUNS_MAX", 5)
    text._RUNS.clear()
    for value in TEXTS + TEXTS[::-1]:  # each run seen cold and warm, the cache cleared when full
        assert tokenize(value) == tokenize_uncached(value)
        assert len(text._RUNS) <= 5
