"""Token -> model ids, shared by training and serving so both map a token the same way.

The GloVe vocabulary is lower-cased, so case is given to the model twice: as a small casing
category per word and through the character encoder, which sees the original spelling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from app.core.vocab import UNK

# Padding id of every input (words, casing, characters): the network's embeddings reserve row 0.
PAD_ID = 0
MAX_WORD_CHARS = 20
_DIGIT = re.compile(r"\d")

CASES = [
    "<pad>",
    "numeric",
    "mostly_numeric",
    "contains_digit",
    "all_lower",
    "all_upper",
    "initial_upper",
    "other",
]
CASE_DEFINITION = {
    "numeric": "every character is a digit",
    "mostly_numeric": "more than half of the characters are digits",
    "contains_digit": "at least one digit",
    "all_lower": "every character is lower-case (or uncased)",
    "all_upper": "every cased character is upper-case",
    "initial_upper": "first character upper-case",
    "other": "anything else (e.g. iPhone, punctuation)",
}
_CASE_INDEX = {c: i for i, c in enumerate(CASES)}


def casing(word: str) -> int:
    digits = sum(ch.isdigit() for ch in word)
    if word.isdigit():
        kind = "numeric"
    elif digits / max(1, len(word)) > 0.5:
        kind = "mostly_numeric"
    elif digits:
        kind = "contains_digit"
    elif word == word.lower() and any(ch.isalpha() for ch in word):
        kind = "all_lower"
    elif word == word.upper() and any(ch.isalpha() for ch in word):
        kind = "all_upper"
    elif word[:1].isupper():
        kind = "initial_upper"
    else:
        kind = "other"
    return _CASE_INDEX[kind]


def word_key(word: str) -> str:
    return word.lower()


def word_id(word: str, vocab: Mapping[str, int]) -> int:
    """Lower-cased lookup, then with digits folded to 0 (numbers rarely repeat exactly)."""
    key = word_key(word)
    found = vocab.get(key)
    if found is None:
        found = vocab.get(_DIGIT.sub("0", key))
    return found if found is not None else vocab[UNK]


def char_ids(word: str, chars: Mapping[str, int]) -> list[int]:
    # Long words keep their head and tail: suffixes carry as much signal as prefixes.
    if len(word) > MAX_WORD_CHARS:
        half = MAX_WORD_CHARS // 2
        word = word[:half] + word[-half:]
    unk = chars[UNK]
    return [chars.get(ch, unk) for ch in word]


def encode_batch(
    sentences: Sequence[Sequence[str]], vocab: Mapping[str, int], chars: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """Padded model feeds for a batch. Padding is PAD_ID everywhere; the char axis is padded to the
    longest word in the batch, which the char encoder masks, so results do not depend on it."""
    n = len(sentences)
    longest = max((len(s) for s in sentences), default=0)
    longest = max(longest, 1)
    encoded_chars = [[char_ids(w, chars) for w in s] for s in sentences]
    width = max((len(c) for s in encoded_chars for c in s), default=1)
    word = np.full((n, longest), PAD_ID, dtype=np.int64)
    case = np.full((n, longest), PAD_ID, dtype=np.int64)
    char = np.full((n, longest, max(width, 1)), PAD_ID, dtype=np.int64)
    lengths = np.zeros((n,), dtype=np.int64)
    for b, sentence in enumerate(sentences):
        lengths[b] = len(sentence)
        for t, w in enumerate(sentence):
            word[b, t] = word_id(w, vocab)
            case[b, t] = casing(w)
            cs = encoded_chars[b][t]
            char[b, t, : len(cs)] = cs
    return {"word_ids": word, "case_ids": case, "char_ids": char, "lengths": lengths}
