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
    monkeypatch.setattr(text._RUNS, "limit", 5)
    text._RUNS.clear()
    for value in TEXTS + TEXTS[::-1]:  # each run seen cold and warm, generations turned over
        assert tokenize(value) == tokenize_uncached(value)
        assert len(text._RUNS) <= 10


def test_run_cache_keeps_frequent_runs_across_turnovers() -> None:
    computed: list[str] = []
    cache = text.RunCache(lambda run: computed.append(run) or run.upper(), limit=3)
    for i in range(20):  # "the" between ever new words: always carried into the new generation
        for run in ("the", f"word{i}"):
            assert (cache.recent[run] if run in cache.recent else cache.get(run)) == run.upper()
        assert len(cache) <= 6
    assert computed.count("the") == 1
    assert computed.count("word7") == 1


def test_runs_of_letters_are_one_token_unless_spacy_has_an_exception_for_them() -> None:
    # run_pieces answers letter-only runs without spaCy: each must be what spaCy gives alone,
    # exceptions included (they are split: "Cannot" -> "Can" "not").
    exceptions = sorted(k for k in text._exceptions() if k.isalpha())
    assert "Cannot" in exceptions
    others = ["film", "Ångström", "naïve", "日本語", "ǅemal", "km", "US", "http", "www", "Jan", "e"]
    words = [*exceptions, *others]
    for word in words:
        reference = tuple((t.text, t.start) for t in tokenize_uncached(word))
        assert text.run_pieces(word) == (reference, False), word
