"""CoNLL-2003 reader: `WORD POS CHUNK NER` per line, blank lines between sentences."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.bundle import sha256_file


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
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for line in fh:
            word, *values = line.rstrip("\n").split(" ")
            yield word, np.asarray(values, dtype=np.float32)
