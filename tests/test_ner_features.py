"""Token -> ids, the mapping training and serving share."""

from __future__ import annotations

import numpy as np

from app.core.vocab import PAD, UNK
from app.ner.features import CASES, MAX_WORD_CHARS, casing, char_ids, encode_batch, word_id


def test_casing_categories() -> None:
    expected = {
        "1996": "numeric",
        "12.5": "mostly_numeric",
        "F-16": "contains_digit",
        "lamb": "all_lower",
        "EU": "all_upper",
        "Zoë": "initial_upper",
        "iPhone": "other",
        ".": "other",
    }
    assert {w: CASES[casing(w)] for w in expected} == expected


def test_word_lookup_lowercases_then_folds_digits() -> None:
    vocab = {PAD: 0, UNK: 1, "paris": 2, "0000": 3}
    assert word_id("PARIS", vocab) == 2
    assert word_id("1996", vocab) == 3
    assert word_id("Lyon", vocab) == 1


def test_long_words_keep_head_and_tail() -> None:
    chars = {PAD: 0, UNK: 1, **{c: i + 2 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}}
    word = "internationalisierungsbestrebungen"
    ids = char_ids(word, chars)
    assert len(ids) == MAX_WORD_CHARS
    half = MAX_WORD_CHARS // 2
    assert ids == [chars[c] for c in word[:half] + word[-half:]]
    assert char_ids("é🙂", chars) == [1, 1]


def test_batch_is_zero_padded() -> None:
    feeds = encode_batch(
        [["Peter", "Blackburn"], ["EU"]], {PAD: 0, UNK: 1, "eu": 2}, {PAD: 0, UNK: 1, "E": 2}
    )
    assert feeds["lengths"].tolist() == [2, 1]
    assert feeds["char_ids"].shape == (2, 2, len("Blackburn"))
    assert feeds["word_ids"].tolist() == [[1, 1], [2, 0]]
    assert np.all(feeds["char_ids"][1, 1] == 0)
    assert feeds["case_ids"][1, 1] == 0
    assert all(v.dtype == np.int64 for v in feeds.values())
