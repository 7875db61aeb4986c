"""IMDB reading (both layouts), truncation, vocabulary, and training/serving tokeniser parity."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from app.core.bundle import load_bundle
from app.sentiment.preprocess import Preprocessor, split_tokens, truncate
from tests.sentiment_support import VOCAB, write_tiny_bundle
from tests.test_tokenize_cache import TEXTS as TOKENIZER_TEXTS
from training.sentiment.data import (
    PAD_ID,
    UNK_ID,
    build_vocab,
    data_files,
    encode,
    preprocess,
    provenance,
    read_split,
    train_val_split,
)
from training.sentiment.train import Config, encode_split


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def acl_dir(tmp_path: Path) -> Path:
    root = tmp_path / "aclImdb"
    _write(root / "train" / "pos" / "10_9.txt", "Great film.<br /><br />Loved it!")
    _write(root / "train" / "pos" / "2_7.txt", "Good acting.")
    _write(root / "train" / "neg" / "3_1.txt", "Awful plot, boring.")
    _write(root / "test" / "pos" / "0_10.txt", "A great movie.")
    _write(root / "test" / "neg" / "0_2.txt", "Bad. Not good.")
    _write(root / "train" / "unsup" / "7_0.txt", "No label here.")
    return tmp_path


def test_reads_aclimdb_layout(acl_dir: Path) -> None:
    train = read_split(acl_dir, "train")  # the parent of aclImdb/ is accepted too
    assert [(r.id, r.rating, r.label) for r in train] == [("2", 7, 1), ("10", 9, 1), ("3", 1, 0)]
    assert train[1].text == "Great film.<br /><br />Loved it!"
    assert read_split(acl_dir / "aclImdb", "test")[1].label == 0
    assert read_split(acl_dir, "unsup")[0].label == -1
    hashes = provenance(acl_dir, ("train",))
    assert set(hashes) == {"pos", "neg"}
    assert all(len(h) == 64 for h in hashes.values())


def test_reads_jsonl_layout_and_prefers_it(tmp_path: Path) -> None:
    for name, label in (("train_pos", "pos"), ("train_neg", "neg")):
        with gzip.open(tmp_path / f"{name}.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write(
                json.dumps({"id": 5, "rating": 8 if label == "pos" else 2, "label": label, "text": "x"})
                + "\n"
            )
    assert [p.name for p in data_files(tmp_path, "train")] == ["train_pos.jsonl.gz", "train_neg.jsonl.gz"]
    assert [r.label for r in read_split(tmp_path, "train")] == [1, 0]
    with pytest.raises(FileNotFoundError, match="test"):
        read_split(tmp_path, "test")


def test_validation_split_is_seeded_stratified_and_disjoint(acl_dir: Path) -> None:
    reviews = read_split(acl_dir, "train") * 10
    a = train_val_split(reviews, 0.2, seed=1)
    assert a == train_val_split(reviews, 0.2, seed=1)
    train_idx, val_idx = a
    assert not set(train_idx) & set(val_idx)
    assert len(train_idx) + len(val_idx) == len(reviews)
    assert sum(reviews[i].label for i in val_idx) == 4  # 20 positives * 0.2


def test_truncate_keeps_head_and_tail() -> None:
    seq = list(range(10))
    assert truncate(seq, 10, 2) == seq
    assert truncate(seq, 5, 2) == [0, 1, 7, 8, 9]
    assert truncate(seq, 4, 4) == [0, 1, 2, 3]


def test_vocab_is_capped_deterministic_and_reserves_pad_unk() -> None:
    docs = [["b", "a", "a"], ["c", "b", "a"], ["d"]]
    vocab = build_vocab(docs, max_size=4, min_freq=1)
    assert vocab[PAD_ID] == "<pad>"
    assert vocab[UNK_ID] == "<unk>"
    assert vocab == ["<pad>", "<unk>", "a", "b"]
    assert build_vocab(docs, max_size=10, min_freq=2) == ["<pad>", "<unk>", "a", "b"]


TEXTS = [
    "The film was GREAT!<br /><br />Loved it, not boring.",
    "  Awful   plot... the acting? Bad<br/>bad bad.  ",
    "Ünïcödé café — “quoted” film, isn't it?",
    " ".join(["good"] * 5 + ["the"] * 30 + ["bad"] * 7),
]


MAX_LENGTH = 12


@pytest.fixture(scope="module")
def preprocessor(tmp_path_factory: pytest.TempPathFactory) -> Preprocessor:
    path, _ = write_tiny_bundle(tmp_path_factory.mktemp("models"), max_length=MAX_LENGTH)
    return Preprocessor(load_bundle(path))


@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_parity_training_vs_serving(text: str, preprocessor: Preprocessor) -> None:
    max_length = MAX_LENGTH
    serving = preprocessor.prepare(split_tokens(text))
    index = {w: i for i, w in enumerate(VOCAB)}
    cfg = Config(max_length=max_length)
    train_ids = encode_split([encode(preprocess(text), index)], [1], cfg).ids[0]
    assert serving.ids.tolist() == train_ids
    assert serving.n_tokens == len(preprocess(text))
    assert serving.truncated == (len(preprocess(text)) > max_length)
    assert "<br" not in " ".join(serving.tokens)


def test_prepare_text_is_prepare_of_split_tokens(
    preprocessor: Preprocessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The served fast path (ids cached per whitespace run) against the Token path, each text
    # seen cold and warm, with a cache so small that its generations turn over; the emoticons and
    # "'bout"/"'em" texts take the whole-text fallback.
    monkeypatch.setattr(preprocessor.runs, "limit", 5)
    preprocessor.runs.clear()
    texts = TEXTS + TOKENIZER_TEXTS + ["x " * 40 + "<br />:) end"]
    for text in texts + texts[::-1]:
        fast, reference = preprocessor.prepare_text(text), preprocessor.prepare(split_tokens(text))
        assert fast.ids.tolist() == reference.ids.tolist(), text
        assert fast.ids.dtype == reference.ids.dtype
        assert (fast.tokens, fast.n_tokens, fast.truncated) == (
            reference.tokens,
            reference.n_tokens,
            reference.truncated,
        )
        assert len(preprocessor.runs) <= 10
    assert preprocessor.prepare_text("<br /><br />").n_tokens == 0


def test_preprocess_lowercases_and_strips_breaks() -> None:
    assert preprocess("Great<br />FILM") == ["great", "film"]
