"""Tokenisation shared by training and serving, so the ids a model saw in training are the ids
it gets in production. spaCy's rule-based English tokenizer needs no model download."""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Annotated, Any, Generic, NamedTuple, TypeVar

from pydantic import AfterValidator

V = TypeVar("V")


def tokenizer_name(language: str = "en") -> str:
    """The name a bundle records for spaCy's rule-based tokenizer of `language`."""
    return f"spacy.blank({language!r}) tokenizer"


TOKENIZER_NAME = tokenizer_name("en")
_BR = re.compile(r"<br\s*/?>", re.I)


class Token(NamedTuple):
    text: str
    start: int  # character offset into the original string
    end: int


def _spacy() -> Any:
    """spaCy, imported without torch. Its thinc layer imports torch whenever torch is installed
    (thinc.compat), for neural features the rule-based tokenizer never uses: in a worker serving
    with ONNX Runtime that was ~250 MB of resident memory per worker, for nothing. Blocking the
    import while thinc looks (a `None` in sys.modules makes `import torch` raise ImportError,
    which thinc takes as "not installed") keeps it out; the block is lifted at once, so a
    TorchScript backend, or training, still imports torch normally. If torch is already loaded,
    nothing is blocked."""
    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import spacy
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return spacy


@cache
def _tokenizer(language: str = "en"):  # type: ignore[no-untyped-def]
    return _spacy().blank(language).tokenizer


def load_tokenizer(language: str) -> None:
    """Build `language`'s tokenizer now, so an unknown language (or one whose tokenizer needs a
    package that is not installed, e.g. Japanese) fails at start-up rather than on a request."""
    _tokenizer(language)


@cache
def _splits_at_whitespace(language: str) -> bool:
    """spaCy's own `Tokenizer` cuts at whitespace first and tokenises each run alone; languages
    with another tokenizer class (Chinese, Korean, ...) do not, so runs cannot be cached."""
    from spacy.tokenizer import Tokenizer

    return type(_tokenizer(language)) is Tokenizer


def spacy_version() -> str:
    return str(_spacy().about.__version__)


def tokenize(text: str) -> list[Token]:
    """Tokens with character offsets into `text`; whitespace-only tokens are dropped.

    spaCy cuts a text at whitespace and tokenises each run of other characters on its own
    (prefixes, suffixes, infixes, exceptions), so a text's tokens are its runs' tokens side by
    side. Each run's tokens are kept here: spaCy, and the Doc and Token objects it builds, only
    see runs not met before, which makes a review ~4x cheaper once common words are cached.
    One pass of spaCy's looks at the whole text: special cases that begin with punctuation
    (emoticons, "'bout", "'em") are matched again over the text's tokens, and the outcome can
    depend on the rest of the text; a text with such a run goes to spaCy whole.
    `python -m bench.tokenizer_check` compares this with spaCy's own output over the whole IMDB
    test set (identical tokens and offsets, so identical ids)."""
    tokens: list[Token] = []
    recent = _RUNS.recent
    for run in _RUN.finditer(text):
        word = run.group()
        cached = recent[word] if word in recent else _RUNS.get(word)
        pieces, contextual = cached
        if contextual:
            return tokenize_uncached(text)
        base = run.start()
        tokens.extend(Token(piece, base + at, base + at + len(piece)) for piece, at in pieces)
    return tokens


def run_pieces(run: str, language: str = "en") -> tuple[tuple[tuple[str, int], ...], bool]:
    """spaCy's tokens of one whitespace run, as (text, offset into the run), and whether one of
    them is a special case spaCy's whole-text pass may treat differently (`_contextual_cases`):
    then the run's text must be tokenised whole (`tokenize_uncached`). For a language whose
    tokenizer does not cut at whitespace first, every run says so."""
    if language == "en" and run.isalpha() and run not in _exceptions(language):
        # Letters only, and not one of spaCy's exceptions ("Cannot", "Dont"): one token. Every
        # English prefix, suffix, infix and URL rule needs punctuation, a digit or a symbol; this
        # skips building a Doc (~30 us) for a third of the runs a cache has not met. Checked for
        # English only (other languages' rules split letters, e.g. Chinese, or were not measured).
        return ((run, 0),), False
    if not _splits_at_whitespace(language):
        return ((run, 0),), True
    pieces = tuple((t.text, t.idx) for t in _tokenizer(language)(run) if not t.is_space)
    return pieces, any(piece in _contextual_cases(language) for piece, _ in pieces)


def tokenize_uncached(text: str, language: str = "en") -> list[Token]:
    """spaCy's tokens for the whole text at once: what `tokenize` must equal."""
    return _tokens(_tokenizer(language), text)


@cache
def _exceptions(language: str = "en") -> frozenset[str]:
    rules: dict[str, object] = _tokenizer(language).rules
    return frozenset(rules)


@cache
def _contextual_cases(language: str = "en") -> frozenset[str]:
    """spaCy's special cases that start with punctuation, less (for English) the clitics its
    suffix rules split off anyway ("'s", "'ll"...): the ones its whole-text pass may treat
    differently. Other languages keep every such case: their suffix rules were not checked."""
    rules: dict[str, object] = _tokenizer(language).rules
    clitics = {"'", "''", "'s", "'S", "'d", "'ll", "'re", "'m", "'ve"} if language == "en" else set()
    return frozenset(k for k in rules if k and not k[0].isalnum() and k not in clitics)


# Runs of non-whitespace characters: Python's `\s` is exactly `str.isspace`, spaCy's split rule.
_RUN = re.compile(r"\S+")


class RunCache(Generic[V]):
    """`compute(run)` kept for the whitespace runs met recently, in bounded memory: two
    generations of at most `limit` runs each. When the recent one is full it becomes the older
    one and a new one starts; a run found only in the older one is carried forward, so frequent
    runs live through every turnover (clearing all at once made the second pass over the IMDB
    test set, ~130k distinct runs, as slow as no cache). Callers look a run up in `recent`
    themselves, a plain dict lookup in their loop, and call `get` when it is not there. Lookups
    from several threads at once are safe: the worst a race does is compute a run twice."""

    def __init__(self, compute: Callable[[str], V], limit: int = 50_000) -> None:
        self.compute = compute
        self.limit = limit
        self.recent: dict[str, V] = {}
        self._older: dict[str, V] = {}

    def __len__(self) -> int:
        return len(self.recent) + len(self._older)

    def get(self, run: str) -> V:
        value = self._older[run] if run in self._older else self.compute(run)
        if len(self.recent) >= self.limit:
            self._older, self.recent = self.recent, {}
        self.recent[run] = value
        return value

    def clear(self) -> None:
        self.recent, self._older = {}, {}


_RUNS: RunCache[tuple[tuple[tuple[str, int], ...], bool]] = RunCache(run_pieces)


def _tokens(tokenizer, text: str) -> list[Token]:  # type: ignore[no-untyped-def]
    return [Token(t.text, t.idx, t.idx + len(t.text)) for t in tokenizer(text) if not t.is_space]


# The NER model learnt from CoNLL-2003's own tokens, which differ from spaCy's defaults where
# news text is concerned; `python -m bench.ner_tokens` measures the remaining differences on
# eng.testb. Sentiment keeps `tokenize`: its vocabulary was built with it.
CONLL_TOKENIZER_NAME = "spacy.blank('en') tokenizer with CoNLL-2003 rules (app.core.text.tokenize_conll)"
# "1. Jesper Ronnback" in results tables: CoNLL keeps a leading list number with its period.
_LIST_NUMBER = re.compile(r"(?:^|(?<=\n))[ \t]*[0-9]{1,3}\.(?=[ \t])")


@lru_cache(maxsize=1)
def _conll_tokenizer():  # type: ignore[no-untyped-def]
    spacy = _spacy()
    from spacy.lang.char_classes import (
        ALPHA,
        ALPHA_LOWER,
        ALPHA_UPPER,
        CONCAT_QUOTES,
        LIST_ELLIPSES,
        LIST_ICONS,
    )
    from spacy.util import compile_infix_regex

    tokenizer: Any = spacy.blank("en").tokenizer  # spaCy types it as a plain callable
    # spaCy's English infixes (spacy/lang/en/punctuation.py) less the plain hyphen: CoNLL keeps
    # "Hewlett-Packard", "Rolls-Royce", "2-1" and "1996-12-06" whole; dashes still split.
    infixes = [
        *LIST_ELLIPSES,
        *LIST_ICONS,
        r"(?<=[0-9])[+\*^](?=[0-9-])",
        rf"(?<=[{ALPHA_LOWER}{CONCAT_QUOTES}])\.(?=[{ALPHA_UPPER}{CONCAT_QUOTES}])",
        rf"(?<=[{ALPHA}]),(?=[{ALPHA}])",
        rf"(?<=[{ALPHA}0-9])(?:–|—|--|---|——|~)(?=[{ALPHA}])",
        rf"(?<=[{ALPHA}0-9])[:<>=/](?=[{ALPHA}])",
    ]
    tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    # News has no emoticons, but results tables have "points):" and "1:0"; "cannot" is one word.
    tokenizer.rules = {
        k: v for k, v in tokenizer.rules.items() if k != "cannot" and any(c.isalpha() for c in k)
    }
    return tokenizer


def tokenize_conll(text: str) -> list[Token]:
    """Like `tokenize`, but splitting the way CoNLL-2003's annotators did (see above)."""
    tokens = _tokens(_conll_tokenizer(), text)
    starts = {m.end() - 1 for m in _LIST_NUMBER.finditer(text)}  # offsets of list-number periods
    if not starts:
        return tokens
    merged: list[Token] = []
    for tok in tokens:
        if tok.start in starts and tok.text == "." and merged and merged[-1].end == tok.start:
            merged[-1] = Token(merged[-1].text + ".", merged[-1].start, tok.end)
        else:
            merged.append(tok)
    return merged


def tokenize_blank(text: str, language: str) -> list[Token]:
    """spaCy's rule-based tokenizer for `language` (an ISO code such as "pt"; the rules ship
    inside spaCy, nothing is downloaded): the tokenizer of a model trained on another language."""
    return _tokens(_tokenizer(language), text)


# Characters that show nothing: whitespace, control and format characters (zero-width space and
# joiners, BOM, bidi marks). A text made only of them carries nothing to classify or tag.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def is_blank(text: str) -> bool:
    """True when `text` has no visible character (empty, whitespace, control or zero-width only)."""
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in text)


# The same rule as a JSON Schema `pattern` (a text matches when it has a visible character), for
# the OpenAPI document: every character `is_blank` counts. BMP characters are written as \uXXXX
# ranges (ECMA 262 and Python regexes read them alike). Astral ones are listed one by one, as
# themselves: a JavaScript RegExp without the `u` flag reads an astral character as its two
# UTF-16 halves, so a range between two of them ("\ud80d\udc30-\ud80d\udc38") is out of order
# and the whole pattern fails to compile; single characters compile with and without the flag.
# (Without the flag the halves are excluded one by one: a text made only of rare astral letters
# whose halves both occur in the list, such as U+11030, reads as blank there. With the flag, as
# JSON Schema validators such as Ajv compile patterns, and in Python, the rule is exact.)
# tests/test_messages.py rebuilds it from `is_blank` over all of Unicode and compares, and
# tests/test_client.py compiles it in JavaScript.
_BLANK_ASTRAL = ((0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3),
                 (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F))  # fmt: skip
VISIBLE_PATTERN = (
    "[^"
    "\\u0000-\\u0020\\u007f-\\u00a0\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891"
    "\\u08e2\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u2064\\u2066-\\u206f"
    "\\u3000\\ufeff\\ufff9-\\ufffb"
    + "".join(chr(cp) for first, last in _BLANK_ASTRAL for cp in range(first, last + 1))
    + "]"
)


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
