"""CoNLL-2003 data for training: the reader (`WORD POS CHUNK NER` per line, blank lines between
sentences), GloVe vectors, the vocabularies, and length-bucketed tensor batches."""

from __future__ import annotations

import gzip
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.core.bundle import sha256_file
from app.core.vocab import PAD, UNK
from app.ner.features import encode_batch, word_key
from app.ner.tags import bioes_tagset, iob1_to_bioes

TYPES = ["LOC", "MISC", "ORG", "PER"]
TAGS = bioes_tagset(TYPES)
# Feeds, BIOES tag ids and the sentence indices of one batch.
Batch = tuple[dict[str, torch.Tensor], torch.Tensor, list[int]]


@dataclass(frozen=True)
class Sentence:
    words: list[str]
    tags: list[str]  # IOB1, as in the file


def read_conll(path: Path) -> list[Sentence]:
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if words:
            sentences.append(Sentence(list(words), list(tags)))
        words.clear()
        tags.clear()

    with path.open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                flush()
            else:
                if len(parts) != 4:
                    raise ValueError(f"{path}: expected 4 columns, got {line!r}")
                words.append(parts[0])
                tags.append(parts[3])
    flush()
    return sentences


def file_provenance(path: Path, sentences: list[Sentence]) -> dict[str, object]:
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "sentences": len(sentences),
        "tokens": sum(len(s.words) for s in sentences),
    }


def iter_glove(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            word, *values = line.rstrip("\n").split(" ")
            yield word, np.asarray(values, dtype=np.float32)


@dataclass
class Vocab:
    words: list[str]
    chars: list[str]

    def word_index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def char_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}


def build_vocab(train: list[Sentence], glove_words: list[str], glove_top: int, min_train_freq: int) -> Vocab:
    """Top GloVe words (they cover dev/test words the training set never saw) plus frequent
    training words GloVe lacks; only training data decides what enters, never testa/testb."""
    counts = Counter(word_key(w) for s in train for w in s.words)
    words = [PAD, UNK]
    seen = set(words)
    for w in glove_words[:glove_top]:
        if w not in seen:
            words.append(w)
            seen.add(w)
    for w, n in counts.most_common():
        if n >= min_train_freq and w not in seen:
            words.append(w)
            seen.add(w)
    char_counts = Counter(ch for s in train for w in s.words for ch in w)
    chars = [PAD, UNK, *sorted(ch for ch, n in char_counts.items() if n >= 2)]
    return Vocab(words, chars)


def batches(
    sentences: Sequence[Sentence], vocab: Vocab, batch_size: int, shuffle_seed: int | None
) -> list[Batch]:
    """Length-bucketed batches (padding stays small), encoded once."""
    rng = random.Random(shuffle_seed)
    order = sorted(range(len(sentences)), key=lambda i: (len(sentences[i].words), rng.random()))
    tag_index = {t: i for i, t in enumerate(TAGS)}
    words, chars = vocab.word_index(), vocab.char_index()
    out: list[Batch] = []
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        feeds = encode_batch([sentences[i].words for i in idx], words, chars)
        tags = np.zeros(feeds["word_ids"].shape, dtype=np.int64)
        for b, i in enumerate(idx):
            bioes = iob1_to_bioes(sentences[i].tags)
            tags[b, : len(bioes)] = [tag_index[t] for t in bioes]
        out.append(({k2: torch.from_numpy(v) for k2, v in feeds.items()}, torch.from_numpy(tags), idx))
    return out
