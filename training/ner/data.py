"""Tagged-token data for training: the column-file reader (CoNLL-2003 is one preset of it), tag
schemes (detected, checked, converted to the BIOES the model learns), word vectors, the
vocabularies, and length-bucketed tensor batches.

Every problem in a user's file is a `DataFileError` naming the file, line and column, raised
while the files are read, before any training starts (so a bad file never leaves a bundle).
"""

from __future__ import annotations

import gzip
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.core.bundle import sha256_file
from app.core.vocab import PAD, UNK
from app.ner.features import encode_batch, word_key
from app.ner.tags import Span, bioes_spans, bioes_tagset, iob1_spans, spans_to_bioes
from training.userdata import DataFileError, read_text

TYPES = ["LOC", "MISC", "ORG", "PER"]
TAGS = bioes_tagset(TYPES)
# Tag schemes a file may come in. IOB1 (CoNLL-2003): I-X starts an entity, B-X only where two
# entities of one type touch. IOB2: B-X starts every entity. BIOES: B-X I-X... E-X, or S-X alone.
# IO: I-X only, so touching entities of one type merge (a file in IOB1 without a single B- tag
# reads the same).
SCHEMES = ("IOB1", "IOB2", "BIOES", "IO")
DOCSTART = "-DOCSTART-"
_TAG = re.compile(r"^(?:O|[BIES]-\S+)$")
_DIGIT = re.compile(r"\d")
# Feeds, BIOES tag ids and the sentence indices of one batch.
Batch = tuple[dict[str, torch.Tensor], torch.Tensor, list[int]]


@dataclass(frozen=True)
class Sentence:
    words: list[str]
    tags: list[str]  # as in the file, in `scheme`
    scheme: str = "IOB1"
    # (line, column) of each tag in its file, for messages; empty for sentences built in code
    where: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)

    def spans(self) -> list[Span]:
        return scheme_spans(self.tags, self.scheme)

    def bioes(self) -> list[str]:
        return spans_to_bioes(self.spans(), len(self.tags))


def scheme_spans(tags: Sequence[str], scheme: str) -> list[Span]:
    # IOB1's reading covers IOB2 and IO too: a chunk starts at B-, or at an I- not continuing one.
    return bioes_spans(tags) if scheme == "BIOES" else iob1_spans(tags)


@dataclass(frozen=True)
class ColumnFormat:
    """Which whitespace- (or tab-) separated fields of a line hold the token and its tag; negative
    indices count from the end, as in Python. `scheme` "auto" detects it from the files."""

    token_column: int = 0
    tag_column: int = -1
    scheme: str = "auto"


# CoNLL-2003's `WORD POS CHUNK NER` lines in IOB1: a preset of the same reader.
CONLL2003 = ColumnFormat(token_column=0, tag_column=3, scheme="IOB1")


def _fields(line: str, tabs: bool) -> list[tuple[str, int]]:
    """(field, 1-based column of its first character). A tab-separated file keeps spaces inside
    a field (and may leave a field empty); otherwise any run of whitespace separates."""
    if not tabs:
        return [(m.group(), m.start() + 1) for m in re.finditer(r"\S+", line)]
    out, pos = [], 0
    for part in line.split("\t"):
        stripped = part.strip()
        out.append((stripped, pos + 1 + (len(part) - len(part.lstrip())) if stripped else pos + 1))
        pos += len(part) + 1
    return out


def read_tagged(path: Path, fmt: ColumnFormat = ColumnFormat()) -> list[Sentence]:
    """Sentences of a column file (blank line between sentences, `-DOCSTART-` lines skipped),
    with tags as written and their places; every line's column count and tag form checked. The
    scheme is left "unchecked": `check_scheme` decides it over all of a run's files."""
    text = read_text(path)
    lines = text.splitlines()
    tabs = next((("\t" in ln) for ln in lines if ln.strip()), False)
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    where: list[tuple[int, int]] = []
    columns: tuple[int, int] | None = None  # (count, line it was first seen on)

    def flush() -> None:
        if words:
            sentences.append(Sentence(list(words), list(tags), "unchecked", tuple(where)))
        words.clear()
        tags.clear()
        where.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            flush()
            continue
        fields = _fields(line, tabs)
        if fields[0][0] == DOCSTART:
            flush()
            continue
        end = len(line) + 1
        if columns is None:
            columns = (len(fields), number)
            token_at, tag_at = _resolve(path, fmt, len(fields), number, end)
        elif len(fields) != columns[0]:
            raise DataFileError(
                path,
                f"{len(fields)} column(s) where line {columns[1]} has {columns[0]} "
                "(a missing token or tag, or a token holding a space?)",
                number,
                end if len(fields) < columns[0] else fields[columns[0]][1],
            )
        token, token_col = fields[token_at]
        tag, tag_col = fields[tag_at]
        if not token:
            raise DataFileError(path, "empty token", number, token_col)
        if not tag:
            raise DataFileError(path, "empty tag", number, tag_col)
        if not _TAG.match(tag):
            raise DataFileError(
                path,
                f"tag {tag!r} is neither O nor a B-, I-, E- or S- prefix and an entity type",
                number,
                tag_col,
            )
        words.append(token)
        tags.append(tag)
        where.append((number, tag_col))
    flush()
    if not sentences:
        raise DataFileError(path, "no tokens: the file holds only blank or -DOCSTART- lines")
    return sentences


def _resolve(path: Path, fmt: ColumnFormat, count: int, line: int, end: int) -> tuple[int, int]:
    """The token and tag field indices for lines of `count` fields."""
    found = []
    for name, index in (("token", fmt.token_column), ("tag", fmt.tag_column)):
        at = index if index >= 0 else count + index
        if not 0 <= at < count:
            raise DataFileError(
                path, f"the line has {count} column(s), so there is no --{name}-column {index}", line, end
            )
        found.append(at)
    if found[0] == found[1]:
        raise DataFileError(
            path,
            f"the token and the tag would be the same column ({count} column(s) on the line): "
            "each line needs a token and a tag",
            line,
            end,
        )
    return found[0], found[1]


def _prefix(tag: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def detect_scheme(files: Sequence[Sequence[Sentence]]) -> str:
    """The scheme the files are written in, judged over all of them together: E- or S- tags mean
    BIOES; else B- tags mean IOB2 when B- starts entities more often than I- does, IOB1 when I-
    does (a file mostly in IOB2 with an I- that starts an entity is a broken IOB2 file, which
    `check_scheme` then reports); I- and O alone mean IO."""
    prefixes: Counter[str] = Counter()
    b_starts = i_starts = 0
    for sentences in files:
        for s in sentences:
            prev = ""
            for tag in s.tags:
                prefix, kind = _prefix(tag)
                prefixes[prefix] += 1
                if prefix in "BI" and prev != kind:
                    if prefix == "B":
                        b_starts += 1
                    else:
                        i_starts += 1
                prev = kind
    if prefixes["E"] or prefixes["S"]:
        return "BIOES"
    if prefixes["B"]:
        return "IOB2" if b_starts >= i_starts else "IOB1"
    return "IO"


def check_scheme(path: Path, sentences: Sequence[Sentence], scheme: str) -> list[Sentence]:
    """The sentences marked with `scheme`, after checking every tag sequence follows it; the
    first that does not is a DataFileError at that tag."""
    allowed = {"IOB1": "BIO", "IOB2": "BIO", "BIOES": "BIOES", "IO": "IO"}[scheme]
    # Prefixes that only continue an entity of their own type (IOB1 and IO: I- may start one).
    continuing = {"IOB2": "I", "BIOES": "IE"}.get(scheme, "")
    out = []
    for s in sentences:
        open_kind = ""  # type of the entity a tag may continue ("" after O or at the start)
        for i, tag in enumerate(s.tags):
            prefix, kind = _prefix(tag)
            line, col = s.where[i] if s.where else (None, None)

            before = f"after {s.tags[i - 1]}" if i else "at the start of a sentence"
            problem = ""
            if prefix not in allowed:
                problem = f"cannot occur: {scheme} has no {prefix}- tags"
            elif prefix in continuing and open_kind != kind:
                problem = f"{before}: an entity starts with B-{kind}"
            elif scheme == "BIOES" and prefix in "BSO" and open_kind:
                problem = f"{before}: the entity before it is not closed by E-{open_kind}"
            if problem:
                raise DataFileError(path, f"{tag} {problem} (reading the files as {scheme})", line, col)
            open_kind = kind if scheme != "BIOES" or prefix in "BI" else ""
        if scheme == "BIOES" and open_kind:
            line, col = s.where[-1] if s.where else (None, None)
            raise DataFileError(
                path,
                f"the sentence ends inside an entity: {s.tags[-1]} is not closed by E-{open_kind}",
                line,
                col,
            )
        out.append(Sentence(s.words, s.tags, scheme, s.where))
    return out


def entity_types(sentences: Sequence[Sentence]) -> Counter[str]:
    return Counter(kind for s in sentences for _, _, kind in s.spans())


def check_types(path: Path, sentences: Sequence[Sentence], known: set[str], train: Path) -> None:
    """Every entity type of `sentences` occurs in the training file: the model can only predict
    types it was trained on, so a dev or test file with another would be scored unfairly."""
    for s in sentences:
        for start, _, kind in s.spans():
            if kind not in known:
                line, col = s.where[start] if s.where else (None, None)
                raise DataFileError(
                    path,
                    f"entity type {kind!r} does not occur in the training file {train} "
                    f"(its types: {', '.join(sorted(known))})",
                    line,
                    col,
                )


def read_splits(
    files: dict[str, Path], fmt: ColumnFormat, train_split: str
) -> tuple[dict[str, list[Sentence]], str]:
    """Read and check a run's files (train first): one scheme for all of them (`fmt.scheme`, or
    detected), at least one entity in train, no type outside train's elsewhere."""
    raw = {split: read_tagged(path, fmt) for split, path in files.items()}
    scheme = fmt.scheme if fmt.scheme != "auto" else detect_scheme(list(raw.values()))
    data = {split: check_scheme(files[split], raw[split], scheme) for split in files}
    types = entity_types(data[train_split])
    if not types:
        raise DataFileError(files[train_split], "no entities: every tag is O")
    for split, sentences in data.items():
        if split != train_split:
            check_types(files[split], sentences, set(types), files[train_split])
    return data, scheme


def read_conll(path: Path) -> list[Sentence]:
    """A CoNLL-2003 file (`WORD POS CHUNK NER`, IOB1)."""
    return check_scheme(path, read_tagged(path, CONLL2003), CONLL2003.scheme)


def file_provenance(path: Path, sentences: list[Sentence]) -> dict[str, object]:
    types = entity_types(sentences)
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "sentences": len(sentences),
        "tokens": sum(len(s.words) for s in sentences),
        "entities": dict(sorted(types.items())),
    }


def iter_glove(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            word, *values = line.rstrip("\n").split(" ")
            yield word, np.asarray(values, dtype=np.float32)


def vector_key(word: str) -> str:
    """The form trained word vectors are kept under: lower-cased with digits folded to 0, the
    form `app.ner.features.word_id` falls back to, so every number shares the vector of its shape."""
    return _DIGIT.sub("0", word_key(word))


@dataclass
class Vocab:
    words: list[str]
    chars: list[str]
    tags: list[str] = field(default_factory=lambda: list(TAGS))  # BIOES, "O" first

    def word_index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def char_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}


def build_vocab(
    train: list[Sentence],
    vector_words: list[str],
    vectors_top: int,
    min_train_freq: int,
    tags: list[str] | None = None,
) -> Vocab:
    """The most frequent pre-trained words (they cover dev/test words the training set never
    saw) plus frequent training words they lack, and the digit-folded shapes of frequent
    numbers; only training data decides what enters, never dev or test."""
    counts = Counter(word_key(w) for s in train for w in s.words)
    counts.update(vector_key(w) for s in train for w in s.words if _DIGIT.search(w))
    words = [PAD, UNK]
    seen = set(words)
    for w in vector_words[:vectors_top]:
        if w not in seen:
            words.append(w)
            seen.add(w)
    for w, n in counts.most_common():
        if n >= min_train_freq and w not in seen:
            words.append(w)
            seen.add(w)
    char_counts = Counter(ch for s in train for w in s.words for ch in w)
    chars = [PAD, UNK, *sorted(ch for ch, n in char_counts.items() if n >= 2)]
    if tags is None:
        tags = bioes_tagset(sorted(entity_types(train)))
    return Vocab(words, chars, tags)


def batches(
    sentences: Sequence[Sentence], vocab: Vocab, batch_size: int, shuffle_seed: int | None
) -> list[Batch]:
    """Length-bucketed batches (padding stays small), encoded once."""
    rng = random.Random(shuffle_seed)
    order = sorted(range(len(sentences)), key=lambda i: (len(sentences[i].words), rng.random()))
    tag_index = {t: i for i, t in enumerate(vocab.tags)}
    words, chars = vocab.word_index(), vocab.char_index()
    out: list[Batch] = []
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        feeds = encode_batch([sentences[i].words for i in idx], words, chars)
        tags = np.zeros(feeds["word_ids"].shape, dtype=np.int64)
        for b, i in enumerate(idx):
            bioes = sentences[i].bioes()
            tags[b, : len(bioes)] = [tag_index[t] for t in bioes]
        out.append(({k2: torch.from_numpy(v) for k2, v in feeds.items()}, torch.from_numpy(tags), idx))
    return out
