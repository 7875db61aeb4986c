"""Initial embedding matrices from word-vector text files (GloVe, or word2vec's text format)."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.sentiment.data import PAD_ID, ROOT

GLOVE_50D = ROOT / ".." / "shared" / "data" / "embeddings" / "glove.6B.50d.top100k.txt.gz"


def load_vectors(path: Path, wanted: set[str]) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of the `wanted` words only (GloVe has 100k lines; the vocabulary needs ~20k)."""
    opener = gzip.open if path.suffix == ".gz" else open
    vectors: dict[str, np.ndarray] = {}
    dim = 0
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            word, _, rest = line.rstrip("\n").partition(" ")
            if word in wanted and word not in vectors:
                values = np.array(rest.split(" "), dtype=np.float32)
                if values.size > 2:  # word2vec's header line is "count dim"
                    vectors[word] = values
                    dim = values.size
    if not vectors:
        raise ValueError(f"{path}: no vector for any of {len(wanted)} vocabulary words")
    return vectors, dim


def embedding_matrix(vocab: Sequence[str], path: Path, seed: int) -> tuple[np.ndarray, dict[str, float]]:
    """Rows for known words are the pre-trained vectors; unknown words get small random vectors
    with the same spread, and the padding row is zero."""
    vectors, dim = load_vectors(path, set(vocab))
    stacked = np.stack(list(vectors.values()))
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, float(stacked.std()), (len(vocab), dim)).astype(np.float32)
    for i, word in enumerate(vocab):
        if word in vectors:
            matrix[i] = vectors[word]
    matrix[PAD_ID] = 0.0
    return matrix, {"dim": dim, "vocab_coverage": round(len(vectors) / len(vocab), 4)}


def random_matrix(vocab_size: int, dim: int, seed: int) -> tuple[np.ndarray, dict[str, float]]:
    """No pre-trained vectors: small random rows the network learns from scratch (padding zero)."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, (vocab_size, dim)).astype(np.float32)
    matrix[PAD_ID] = 0.0
    return matrix, {"dim": dim, "vocab_coverage": 0.0}
