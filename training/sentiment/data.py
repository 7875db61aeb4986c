"""IMDB reading, tokenisation, vocabulary and truncation for the sentiment model.

Two on-disk layouts are accepted: the project's JSON-lines export (`train_pos.jsonl.gz` ...) and
Stanford's original `aclImdb/` folders (`train/pos/*.txt` ...), so the script also runs on a
fresh download of the dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.bundle import sha256_file
from app.core.vocab import PAD, UNK
from app.sentiment.preprocess import preprocess as _serving_preprocess
from app.sentiment.preprocess import truncate as truncate  # re-exported for training

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = ROOT / ".." / "shared" / "data" / "sentiment" / "imdb"
LABELS = ("negative", "positive")  # index = class id
_LABEL_IDS = {"neg": 0, "pos": 1}
PAD_ID, UNK_ID = 0, 1  # build_vocab puts PAD and UNK first
LOWERCASE = True


@dataclass(frozen=True)
class Review:
    id: str
    rating: int
    label: int  # 0 negative, 1 positive, -1 unlabelled
    text: str


def _read_jsonl(path: Path) -> Iterator[Review]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            yield Review(str(row["id"]), int(row["rating"]), _LABEL_IDS.get(row["label"], -1), row["text"])


def _read_acl_folder(folder: Path, label: int) -> Iterator[Review]:
    # Files are `<id>_<rating>.txt`; sorting by id keeps the order stable across file systems.
    def key(p: Path) -> tuple[int, str]:
        stem = p.stem.split("_")[0]
        return (int(stem), p.name) if stem.isdigit() else (1 << 62, p.name)

    for path in sorted(folder.glob("*.txt"), key=key):
        review_id, _, rating = path.stem.partition("_")
        yield Review(
            review_id, int(rating) if rating.isdigit() else 0, label, path.read_text(encoding="utf-8")
        )


def data_files(data_dir: Path, split: str) -> list[Path]:
    """The files that make up `split` ("train", "test" or "unsup") in whichever layout is there."""
    names = ["unsup"] if split == "unsup" else [f"{split}_pos", f"{split}_neg"]
    jsonl = [data_dir / f"{n}.jsonl.gz" for n in names]
    if all(p.is_file() for p in jsonl):
        return jsonl
    acl = data_dir if (data_dir / "train").is_dir() else data_dir / "aclImdb"
    sub = ["train/unsup"] if split == "unsup" else [f"{split}/pos", f"{split}/neg"]
    folders = [acl / s for s in sub]
    if all(p.is_dir() for p in folders):
        return folders
    raise FileNotFoundError(
        f"no IMDB {split!r} split under {data_dir}: expected {[p.name for p in jsonl]} "
        f"or an aclImdb layout with {sub}"
    )


def read_split(data_dir: Path, split: str) -> list[Review]:
    reviews: list[Review] = []
    for source in data_files(data_dir, split):
        if source.is_dir():
            label = -1 if source.name == "unsup" else _LABEL_IDS[source.name]
            reviews.extend(_read_acl_folder(source, label))
        else:
            reviews.extend(_read_jsonl(source))
    return reviews


def provenance(data_dir: Path, splits: Sequence[str]) -> dict[str, str]:
    """sha256 of each data file read (for a folder layout: of the sorted list of file hashes)."""
    out: dict[str, str] = {}
    for split in splits:
        for source in data_files(data_dir, split):
            if source.is_dir():
                digest = hashlib.sha256()
                for f in sorted(source.glob("*.txt")):
                    digest.update(f"{f.name} {sha256_file(f)}\n".encode())
                out[source.name] = digest.hexdigest()
            else:
                out[source.name] = sha256_file(source)
    return out


def preprocess(text: str, lowercase: bool = LOWERCASE, language: str = "en") -> list[str]:
    """Text -> token strings: the service's own function, so training and serving cannot drift."""
    return _serving_preprocess(text, lowercase, language)


def train_val_split(reviews: Sequence[Review], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded, label-stratified split of train indices so validation keeps the 50/50 balance."""
    from training.sentiment.dataset import stratified_split

    return stratified_split([r.label for r in reviews], len(LABELS), val_fraction, seed)


def build_vocab(token_lists: Iterable[Sequence[str]], max_size: int, min_freq: int) -> list[str]:
    """Most frequent tokens first; ties broken alphabetically so the vocabulary is deterministic."""
    counts: Counter[str] = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    words = sorted(
        (
            w
            for w, c in counts.items()
            if c >= min_freq and w not in (PAD, UNK) and not any(ch.isspace() for ch in w)
        ),
        key=lambda w: (-counts[w], w),
    )
    return [PAD, UNK, *words[: max_size - 2]]


def encode(tokens: Sequence[str], index: dict[str, int]) -> list[int]:
    return [index.get(t, UNK_ID) for t in tokens]
