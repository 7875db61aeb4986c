"""Labelled texts for the text classifier, as one `Dataset` whatever their source: a user's files
(CSV, TSV, JSON Lines or Parquet, via `training.userdata`) or the IMDB preset. Everything after
reading (split, vocabulary, training, baselines, report) works on the Dataset only.

Every file is checked whole before training starts; a problem is a `DataFileError` naming the
file, line and column.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.bundle import sha256_file
from app.core.text import is_blank
from training.userdata import DataFileError, read_table, read_text, sorted_labels


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    line: int  # where it starts in its file (0: a preset read from several files)
    # Tokens already known (the IMDB preset's tokenised cache); None: tokenise the text.
    tokens: tuple[str, ...] | None = None


@dataclass
class Dataset:
    """Train, dev and (optionally) test examples with the label set, in the bundle's order."""

    name: str
    labels: list[str]
    train: list[Example]
    dev: list[Example]
    test: list[Example] | None
    dev_origin: str  # where dev came from, said in the manifest and report
    # Texts word2vec may learn from besides the training file's (never dev or test files).
    unlabelled: list[str] = field(default_factory=list)
    # Texts of the whole training file (dev included when dev is a part of it): word2vec's corpus.
    train_file_texts: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)

    def ids(self, examples: Sequence[Example]) -> list[int]:
        index = {label: i for i, label in enumerate(self.labels)}
        return [index[e.label] for e in examples]

    def distribution(self) -> dict[str, dict[str, int]]:
        """Examples per label in each split, in label order."""
        splits: dict[str, Sequence[Example]] = {"train": self.train, "dev": self.dev}
        if self.test is not None:
            splits["test"] = self.test
        out = {}
        for name, examples in splits.items():
            counts = Counter(e.label for e in examples)
            out[name] = {label: counts.get(label, 0) for label in self.labels}
        return out


def _label(path: Path, value: Any, line: int, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip():
        raise DataFileError(path, "empty label", line, column)
    if isinstance(value, float) and not value.is_integer():
        raise DataFileError(
            path, f"label {value!r} is a fraction: labels are names or integers", line, column
        )
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value))
    return str(value).strip()


def read_labelled(path: Path, text_column: str, label_column: str, fmt: str | None = None) -> list[Example]:
    """Every row of a labelled file as an Example; a DataFileError for a missing column, a row
    whose text has nothing visible or whose label is empty, or a file with no rows."""
    out = []
    for record in read_table(path, [text_column, label_column], fmt):
        text = record.values[text_column]
        if text is None or (isinstance(text, float) and math.isnan(text)) or is_blank(str(text)):
            raise DataFileError(path, "empty text", record.line, text_column)
        if not isinstance(text, str):
            raise DataFileError(
                path, f"text is a {type(text).__name__}, not a string", record.line, text_column
            )
        label = _label(path, record.values[label_column], record.line, label_column)
        out.append(Example(text, label, record.line))
    return out


def check_labels(path: Path, examples: Sequence[Example], known: Sequence[str], column: str) -> None:
    """A dev or test label the training file never has cannot be learnt (nor scored fairly)."""
    allowed = set(known)
    for e in examples:
        if e.label not in allowed:
            raise DataFileError(
                path,
                f"label {e.label!r} is not in the training file (its labels: {', '.join(map(repr, known))})",
                e.line,
                column,
            )


def stratified_split(
    labels: Sequence[int], n_classes: int, fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Seeded, label-stratified split of indices into (train, dev): each class gives `fraction`
    of its examples (rounded) to dev, so dev keeps train's label distribution."""
    rng = random.Random(seed)
    train_idx: list[int] = []
    dev_idx: list[int] = []
    for label in range(n_classes):
        idx = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(idx)
        n_dev = round(len(idx) * fraction)
        dev_idx += idx[:n_dev]
        train_idx += idx[n_dev:]
    return sorted(train_idx), sorted(dev_idx)


def label_order(train: Sequence[Example], path: Path, column: str) -> list[str]:
    """The training labels in the bundle's stable order; a DataFileError for a single class."""
    order = sorted_labels([e.label for e in train])
    if len(order) < 2:
        raise DataFileError(
            path,
            f"every row has the label {order[0]!r}: a classifier needs at least two classes",
            train[0].line,
            column,
        )
    return order


def from_examples(
    *,
    name: str,
    train: list[Example],
    dev: list[Example] | None,
    test: list[Example] | None,
    dev_fraction: float,
    seed: int,
    unlabelled: list[str] | None = None,
    source: dict[str, Any] | None = None,
    train_path: Path | None = None,
    label_column: str = "label",
    labels: Sequence[str] | None = None,
) -> Dataset:
    """The Dataset both the files and the presets end in: label order fixed, dev taken from train
    (seeded, stratified) when there is no dev file."""
    order = list(labels) if labels is not None else label_order(train, train_path or Path(name), label_column)
    index = {label: i for i, label in enumerate(order)}
    train_file_texts = [e.text for e in train]
    if dev is None:
        tr, dv = stratified_split([index[e.label] for e in train], len(order), dev_fraction, seed)
        dev = [train[i] for i in dv]
        train = [train[i] for i in tr]
        origin = f"seeded (seed {seed}), label-stratified {dev_fraction:.0%} of the training file"
        if not dev:
            raise DataFileError(
                train_path or Path(name),
                f"too few rows to set {dev_fraction:.0%} of each class aside for dev: "
                "give a --dev file or a larger --dev-fraction",
            )
    else:
        origin = "dev file"
    return Dataset(
        name=name,
        labels=order,
        train=train,
        dev=dev,
        test=test,
        dev_origin=origin,
        unlabelled=unlabelled or [],
        train_file_texts=train_file_texts,
        source=source or {},
    )


def read_unlabelled(path: Path, text_column: str, fmt: str | None = None) -> list[str]:
    """Texts for word2vec: a table with `text_column`, or (for .txt) one text a line."""
    if path.suffix == ".txt":
        return [line for line in read_text(path).splitlines() if not is_blank(line)]
    out = []
    for record in read_table(path, [text_column], fmt):
        text = record.values[text_column]
        if isinstance(text, str) and not is_blank(text):
            out.append(text)
    return out


def load_files(
    *,
    name: str,
    train: Path,
    dev: Path | None,
    test: Path | None,
    unlabelled: Path | None,
    text_column: str,
    label_column: str,
    fmt: str | None,
    dev_fraction: float,
    seed: int,
) -> Dataset:
    """A user's files, all read and checked before anything is trained."""
    train_examples = read_labelled(train, text_column, label_column, fmt)
    dev_examples = read_labelled(dev, text_column, label_column, fmt) if dev else None
    test_examples = read_labelled(test, text_column, label_column, fmt) if test else None
    extra = read_unlabelled(unlabelled, text_column, fmt) if unlabelled else []
    labels = label_order(train_examples, train, label_column)
    for path, examples in ((dev, dev_examples), (test, test_examples)):
        if path is not None and examples is not None:
            check_labels(path, examples, labels, label_column)
    data = from_examples(
        name=name,
        train=train_examples,
        dev=dev_examples,
        test=test_examples,
        dev_fraction=dev_fraction,
        seed=seed,
        unlabelled=extra,
        train_path=train,
        label_column=label_column,
        labels=labels,
    )
    files = {"train": train, "dev": dev, "test": test, "unlabelled": unlabelled}
    data.source = {
        "files": {k: str(p) for k, p in files.items() if p is not None},
        "sha256": {k: sha256_file(p) for k, p in files.items() if p is not None},
        "columns": {"text": text_column, "label": label_column},
    }
    return data
