"""Train, evaluate and export a text classifier, served at POST /sentiment.

    python -m training.sentiment --train train.csv [--dev dev.csv] [--test test.csv] --name NAME
    python -m training.sentiment --train data.jsonl --name tickets --quick   # ~2 min: does it work?
    python -m training.sentiment                  # the shipped IMDB model (the `imdb` preset)

Files: CSV, TSV, JSON Lines or Parquet with a text and a label column (--text-column,
--label-column); labels are whatever strings or integers the file holds, two or more. Every file
is checked whole first: a problem stops the run naming file, line and column, and nothing is
written. Without --dev, dev is a seeded stratified part of train; without --test there is no
test figure. Word vectors (GloVe, word2vec on your texts, or none), the cell and the head are
chosen on dev unless given. The same run scores a majority-class and a TF-IDF + logistic
regression baseline on the same split. The bundle (MODEL_DIR/NAME/VERSION) replaces an earlier
one of that name only when it is better on dev (or with --force); REPORT.md goes beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.bundle import BundleError, read_manifest, resolve_bundle_dir, version_key
from training.bundle import DEFAULT_MODEL_DIR, replace_readme_section, shipped_metric
from training.logs import setup_logging
from training.sentiment.cache import DEFAULT_CACHE_DIR
from training.sentiment.data import DEFAULT_DATA_DIR, LOWERCASE, UNK_ID, build_vocab, encode
from training.sentiment.dataset import Dataset, Example, load_files
from training.sentiment.embeddings import GLOVE_50D, embedding_matrix, random_matrix
from training.sentiment.export import TASK, export
from training.sentiment.model import CELLS, HEADS
from training.sentiment.train import (
    Config,
    Encoded,
    classification_metrics,
    encode_split,
    predict_probs,
    train,
)
from training.userdata import DataFileError

log = logging.getLogger("training.sentiment")

EMBEDDINGS = ("glove50", "word2vec", "none")

# Defaults that differ between the shipped IMDB model (25,000 long reviews) and a user's files
# (often thousands of short texts). A flag given on the command line always wins.
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "imdb": {
        "hidden": 64,
        "epochs": 4,
        "max_length": 400,
        "max_minutes": 45.0,
        "vocab_size": 20_000,
        "min_freq": 3,
        "patience": 2,
        "evals_per_epoch": 3,
        "embedding_dim": 100,
        "w2v_epochs": 1,
        "w2v_min_count": 5,
        "ablation_subset": 6000,
        "ablation_max_length": 64,
        "ablation_epochs": 1,
        "ablation_minutes": 1.5,
        "ablation_val": 1500,
    },
    "files": {
        "hidden": 64,
        "epochs": 12,
        "max_length": 0,  # 0: the 99th percentile of the training texts' token counts
        "max_minutes": 15.0,
        "vocab_size": 30_000,
        "min_freq": 1,
        "patience": 3,
        "evals_per_epoch": 1,
        "embedding_dim": 100,
        # A user's corpus is small: more passes than over IMDB's 75,000 reviews, rarer words kept.
        "w2v_epochs": 10,
        "w2v_min_count": 2,
        "ablation_subset": 0,  # 0: all training examples
        "ablation_max_length": 0,  # 0: the final max_length
        "ablation_epochs": 3,
        "ablation_minutes": 1.5,
        "ablation_val": 0,  # 0: all of dev
    },
}
# --quick: check a file end to end in about two minutes, not a model to keep.
QUICK = {"hidden": 32, "epochs": 3, "max_minutes": 1.0, "evals_per_epoch": 1, "patience": 3}
QUICK_TRAIN_EXAMPLES = 3000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training.sentiment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data (none of them: the IMDB preset)")
    data.add_argument("--train", type=Path, help="labelled training file (.csv .tsv .jsonl .parquet)")
    data.add_argument("--dev", type=Path, help="labelled dev file for selection (default: part of train)")
    data.add_argument("--test", type=Path, help="labelled test file, scored once by the final model")
    data.add_argument(
        "--unlabelled", type=Path, help="more texts for word2vec (a table, or .txt: one a line)"
    )
    data.add_argument("--text-column", default="text")
    data.add_argument("--label-column", default="label")
    data.add_argument("--format", choices=["csv", "tsv", "jsonl", "parquet"], help="default: from the suffix")
    data.add_argument("--name", help="model name: the bundle goes to MODEL_DIR/NAME/VERSION")
    data.add_argument("--language", default="en", help="spaCy language code of the texts (spacy.blank)")
    data.add_argument("--dev-fraction", "--val-fraction", type=float, default=0.1, dest="dev_fraction")
    data.add_argument(
        "--data-dir", type=Path, default=None, help="IMDB preset: folder (jsonl.gz or aclImdb layout)"
    )
    p.add_argument("--glove", type=Path, default=None, help=f"GloVe text file (default {GLOVE_50D.name})")
    p.add_argument(
        "--word2vec",
        type=Path,
        default=DEFAULT_CACHE_DIR / "imdb-word2vec.txt",
        help="IMDB preset: word2vec vectors, trained first if missing",
    )
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="IMDB tokenised-review cache")
    p.add_argument("--model-dir", type=Path, default=None, help="bundle output root (default: models/)")
    p.add_argument("--embedding", choices=EMBEDDINGS, default=None, help="default: chosen on dev")
    p.add_argument("--embedding-dim", type=int, default=None, help="word2vec and none: vector size")
    p.add_argument("--w2v-epochs", type=int, default=None)
    p.add_argument("--w2v-min-count", type=int, default=None)
    p.add_argument("--cell", choices=CELLS, default=None, help="default: chosen on dev")
    p.add_argument("--head", choices=HEADS, default=None, help="default: chosen on dev")
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-length", type=int, default=None, help="tokens kept per text (head+tail)")
    p.add_argument("--max-minutes", type=float, default=None, help="time cap of the final training")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dropout", type=float, default=0.5, help="before the classifier")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--freeze-embeddings", action="store_true", help="keep the initial word vectors")
    p.add_argument(
        "--vectors-vocab",
        type=int,
        default=0,
        help="add the --glove file's N most frequent words to the vocabulary (best with "
        "--freeze-embeddings: words no training text has keep their meaning; under the other "
        "embeddings they read as <unk>)",
    )
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--vocab-size", type=int, default=None)
    p.add_argument("--min-freq", type=int, default=None)
    p.add_argument(
        "--patience", type=int, default=None, help="dev checks without improvement before stopping"
    )
    p.add_argument(
        "--select",
        choices=["accuracy", "macro_f1"],
        default="accuracy",
        help="dev metric for early stopping, choices and replacing a bundle",
    )
    p.add_argument("--class-weights", action="store_true", help="weigh the loss so every class counts alike")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        # On a shared, oversubscribed CPU one thread trained ~4x faster than two: OpenMP workers
        # spin at every barrier waiting for a descheduled peer.
        help="torch threads",
    )
    p.add_argument(
        "--no-ablation", "--no-search", action="store_true", help="no choice on dev: flags or defaults"
    )
    p.add_argument("--ablation-subset", type=int, default=None, help="training examples per choice run")
    p.add_argument("--ablation-max-length", type=int, default=None)
    p.add_argument("--ablation-epochs", type=int, default=None)
    p.add_argument("--ablation-minutes", type=float, default=None, help="time cap per choice run")
    p.add_argument("--ablation-val", type=int, default=None, help="dev examples scored per choice run")
    p.add_argument("--evals-per-epoch", type=int, default=None, help="dev checks per epoch (final run)")
    p.add_argument(
        "--quick", action="store_true", help="~2 minute check of the data; bundle to a scratch dir"
    )
    p.add_argument("--force", action="store_true", help="replace the bundle of that name even if not better")
    p.add_argument(
        "--no-readme", action="store_true", help="IMDB preset: leave README.md alone (another --model-dir)"
    )
    p.add_argument(
        "--readme-section",
        help="also write the run's figures between <!-- NAME:start --> and <!-- NAME:end --> in README.md",
    )
    p.add_argument(
        "--report-copy",
        type=Path,
        help="also copy REPORT.md here (e.g. into the repository, when the bundle goes to a scratch dir)",
    )
    p.add_argument("--version", default=None, help="default: 1.0.0 for a new name, else the next minor")
    args = p.parse_args(argv)
    args.preset = "files" if args.train else "imdb"
    if args.preset == "imdb":
        stray = [f for f in ("dev", "test", "unlabelled") if getattr(args, f) is not None]
        if stray:
            p.error(f"--{stray[0]} needs --train (without data files the run is the IMDB preset)")
        if args.language != "en":
            p.error("the IMDB preset is English; --language is for your own --train files")
        args.name = args.name or TASK
    elif not args.name:
        p.error("--name is required with --train (the bundle goes to MODEL_DIR/NAME/VERSION)")
    for key, value in PRESET_DEFAULTS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, QUICK.get(key, value) if args.quick else value)
    if args.quick:
        args.no_ablation = True
    try:
        from app.core.text import load_tokenizer

        load_tokenizer(args.language)
    except Exception as exc:
        p.error(f"--language {args.language!r}: spaCy has no rule-based tokenizer for it ({exc})")
    if args.vectors_vocab and not (args.glove or GLOVE_50D).is_file():
        p.error(f"--vectors-vocab adds words of the --glove file; there is no {args.glove or GLOVE_50D}")
    if args.embedding == "glove50" and args.language != "en" and args.glove is None:
        p.error("the default GloVe vectors are English: give --glove PATH with vectors of your language")
    return args


# ----------------------------------------------------------------------------------------------
# data


def imdb_dataset(args: argparse.Namespace) -> Dataset:
    """The IMDB preset: the official train/test splits, through the same Dataset as a user's files
    (tokens from the tokenised cache, which takes minutes to build once)."""
    from training.sentiment.cache import tokenised_split
    from training.sentiment.data import LABELS, provenance, read_split
    from training.sentiment.dataset import from_examples

    data_dir = args.data_dir or DEFAULT_DATA_DIR
    splits = {}
    for split, step in (("train", 25), ("test", 50)):
        reviews = read_split(data_dir, split)
        tokens = tokenised_split(data_dir, split, args.cache_dir, args.threads)
        examples = [
            Example(r.text, LABELS[r.label], 0, tuple(t)) for r, t in zip(reviews, tokens, strict=True)
        ]
        splits[split] = examples[::step] if args.quick else examples
    data = from_examples(
        name="imdb",
        train=splits["train"],
        dev=None,
        test=splits["test"],
        dev_fraction=args.dev_fraction,
        seed=args.seed,
        labels=LABELS,
    )
    data.dev_origin = (
        f"seeded (seed {args.seed}), label-stratified {args.dev_fraction:.0%} of the official train split"
    )
    data.source = {
        "source": "Large Movie Review Dataset v1.0 (Maas et al., ACL 2011), "
        "https://ai.stanford.edu/~amaas/data/sentiment/",
        "licence": "released by Stanford for research use; cite Maas et al. (2011)",
        "sha256": provenance(data_dir, ("train", "test", "unsup")),
        "unsup_for_word2vec": 50_000,
    }
    return data


def load_dataset(args: argparse.Namespace) -> Dataset:
    if args.preset == "imdb":
        return imdb_dataset(args)
    return load_files(
        name=args.name,
        train=args.train,
        dev=args.dev,
        test=args.test,
        unlabelled=args.unlabelled,
        text_column=args.text_column,
        label_column=args.label_column,
        fmt=args.format,
        dev_fraction=args.dev_fraction,
        seed=args.seed,
    )


def length_stats(lengths: list[int]) -> dict[str, Any]:
    arr = np.asarray(lengths)
    pct = {f"p{q}": int(np.percentile(arr, q)) for q in (50, 75, 90, 95, 99)}
    return {"mean": round(float(arr.mean()), 1), **pct, "max": int(arr.max())}


@dataclass
class Prepared:
    """The splits as tokens and ids, plus what the manifest reports about them."""

    vocab: list[str]
    tokens: dict[str, list[tuple[str, ...]]]
    ids: dict[str, tuple[list[list[int]], list[int]]]
    train_lengths: list[int]
    trained_words: int  # vocabulary entries from the training texts; the rest: --vectors-vocab


def prepare_data(args: argparse.Namespace, data: Dataset) -> Prepared:
    from training.sentiment.data import preprocess

    @functools.cache
    def tokenise(text: str) -> tuple[str, ...]:
        return tuple(preprocess(text, LOWERCASE, args.language))

    splits = {"train": data.train, "dev": data.dev, **({"test": data.test} if data.test is not None else {})}
    tokens = {
        name: [e.tokens if e.tokens is not None else tokenise(e.text) for e in examples]
        for name, examples in splits.items()
    }
    # The vocabulary comes from the training part only, so dev words can be unknown too.
    vocab = build_vocab(tokens["train"], args.vocab_size, args.min_freq)
    trained_words = len(vocab)
    if args.vectors_vocab:
        vocab += vector_words(args.glove or GLOVE_50D, args.vectors_vocab, set(vocab))
    index = {w: i for i, w in enumerate(vocab)}
    ids = {
        name: ([encode(t, index) for t in tokens[name]], data.ids(examples))
        for name, examples in splits.items()
    }
    tokenise.cache_clear()
    return Prepared(vocab, tokens, ids, [len(t) for t in tokens["train"]], trained_words)


# ----------------------------------------------------------------------------------------------
# word vectors


def vector_words(path: Path, n: int, known: set[str]) -> list[str]:
    """The first `n` words of a vectors file (GloVe lists the most frequent first) that the
    vocabulary lacks and that a token could be (no whitespace)."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    out: list[str] = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            word = line.split(" ", 1)[0]
            if word and word not in known and not any(ch.isspace() for ch in word):
                known.add(word)
                out.append(word)
    return out


class Embeddings:
    """Initial embedding matrices by source name, built once per run."""

    def __init__(
        self, args: argparse.Namespace, data: Dataset, vocab: list[str], trained_words: int, workdir: Path
    ) -> None:
        self.args = args
        self.data = data
        self.vocab = vocab
        self.trained_words = trained_words
        self.workdir = workdir
        self.word2vec_info: dict[str, Any] = {}
        self._cache: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}

    def candidates(self) -> list[str]:
        """The sources a choice on dev tries: GloVe where there are vectors of the texts' language."""
        if self.args.preset == "imdb":
            # word2vec first: the shipped model's source, the default when nothing is chosen.
            return ["word2vec", "glove50"]
        glove = self.args.glove is not None or (self.args.language == "en" and GLOVE_50D.is_file())
        return [*(["glove50"] if glove else []), "word2vec", "none"]

    def _imdb_word2vec(self) -> Path:
        import json

        from training.sentiment import word_vectors as wv

        path: Path = self.args.word2vec
        waited = time.time()
        # Vectors being trained by a parallel `python -m training.sentiment.word_vectors`:
        # wait for them instead of training them twice.
        while not path.is_file() and wv.in_progress(self.args.cache_dir) and time.time() - waited < 1200:
            time.sleep(10)
        if not path.is_file():
            wv.train_word_vectors(
                self.args.data_dir or DEFAULT_DATA_DIR,
                self.args.cache_dir,
                path,
                workers=self.args.threads,
            )
        if wv.info_path(path).is_file():
            self.word2vec_info = json.loads(wv.info_path(path).read_text(encoding="utf-8"))
        return path

    def _own_word2vec(self) -> Path:
        """Vectors trained on the training file's texts and --unlabelled (never dev or test files)."""
        from training.sentiment.data import preprocess
        from training.sentiment.word_vectors import vectors_from_corpus

        texts = [*self.data.train_file_texts, *self.data.unlabelled]
        corpus = self.workdir / "w2v-corpus.txt"
        with corpus.open("w", encoding="utf-8") as fh:
            for text in texts:
                fh.write(" ".join(preprocess(text, LOWERCASE, self.args.language)) + "\n")
        output = self.workdir / "word2vec.txt"
        extra = f" + {len(self.data.unlabelled):,} unlabelled" if self.data.unlabelled else ""
        self.word2vec_info = vectors_from_corpus(
            corpus,
            output,
            f"the training file's {len(self.data.train_file_texts):,} texts{extra}, same tokenizer "
            "as the classifier",
            dim=self.args.embedding_dim,
            epochs=self.args.w2v_epochs,
            min_count=self.args.w2v_min_count,
            workers=self.args.threads,
            seed=self.args.seed,
        )
        return output

    def get(self, name: str) -> tuple[np.ndarray, dict[str, Any]]:
        if name not in self._cache:
            if name == "none":
                matrix, stats = random_matrix(len(self.vocab), self.args.embedding_dim, self.args.seed)
                info: dict[str, Any] = {**stats, "file": None}
            else:
                if name == "word2vec":
                    path = self._imdb_word2vec() if self.args.preset == "imdb" else self._own_word2vec()
                else:
                    path = self.args.glove or GLOVE_50D
                matrix, stats = embedding_matrix(self.vocab, path, self.args.seed)
                info = {**stats, "file": path.name}
            if name != "glove50":
                # Words taken from the GloVe file only: no vector of this source, so <unk>'s.
                matrix[self.trained_words :] = matrix[UNK_ID]
            self._cache[name] = (matrix, info)
            log.info("embedding %s: %s", name, info)
        return self._cache[name]


# ----------------------------------------------------------------------------------------------
# choosing on dev, training, evaluating


def base_config(args: argparse.Namespace) -> Config:
    return Config(
        hidden=args.hidden,
        max_length=args.max_length,
        batch_size=args.batch_size,
        lr=args.lr,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        seed=args.seed,
        evals_per_epoch=args.evals_per_epoch,
        patience=args.patience,
        select=args.select,
        class_weights=args.class_weights,
        dropout=args.dropout,
        weight_decay=args.weight_decay,
        freeze_embedding=args.freeze_embeddings,
    )


def ablation_budget(args: argparse.Namespace) -> str:
    subset = f"{args.ablation_subset} training examples" if args.ablation_subset else "all training examples"
    val = f"{args.ablation_val} dev examples" if args.ablation_val else "all of dev"
    return (
        f"{subset}, max_length {args.ablation_max_length}, {args.ablation_epochs} epoch(s), "
        f"at most {args.ablation_minutes:g} min per run, scored on {val}"
    )


def run_ablation(
    args: argparse.Namespace, data: Dataset, prepared: Prepared, embeddings: Embeddings
) -> list[dict[str, Any]]:
    """Every embedding x cell x head combination the flags leave open, on the same reduced budget."""
    base = dataclasses.replace(
        base_config(args),
        max_length=args.ablation_max_length,
        epochs=args.ablation_epochs,
        evals_per_epoch=1,
        max_minutes=args.ablation_minutes,
        patience=99,
    )
    rng = np.random.default_rng(args.seed)

    def subset(split: tuple[list[list[int]], list[int]], n: int) -> Encoded:
        ids, labels = split
        idx = sorted(rng.choice(len(ids), n, replace=False)) if 0 < n < len(ids) else range(len(ids))
        return encode_split([ids[i] for i in idx], [labels[i] for i in idx], base)

    train_part = subset(prepared.ids["train"], args.ablation_subset)
    val_part = subset(prepared.ids["dev"], args.ablation_val)
    rows: list[dict[str, Any]] = []
    for emb in [args.embedding] if args.embedding else embeddings.candidates():
        for cell in [args.cell] if args.cell else CELLS:
            for head in [args.head] if args.head else HEADS:
                cfg = dataclasses.replace(base, embedding=emb, cell=cell, head=head)
                log.info("ablation run %s/%s/%s", emb, cell, head)
                result = train(cfg, embeddings.get(emb)[0], train_part, val_part, data.labels)
                row = {
                    "embedding": emb,
                    "cell": cell,
                    "head": head,
                    "val_accuracy": result["val"]["accuracy"],
                    "val_macro_f1": result["val"]["macro_f1"],
                    "minutes": result["minutes"],
                }
                rows.append(row)
                log.info("ablation result %s", row)
    return rows


def final_config(args: argparse.Namespace, ablation: list[dict[str, Any]], candidates: list[str]) -> Config:
    """Flags win; otherwise the ablation's best row on the dev metric; otherwise the first
    candidate embedding, an LSTM and the final-state head."""
    key = f"val_{args.select}"
    best = max(ablation, key=lambda r: r[key]) if ablation else {}
    default_embedding = "none" if args.quick and args.preset == "files" else candidates[0]
    return dataclasses.replace(
        base_config(args),
        embedding=args.embedding or best.get("embedding", default_embedding),
        cell=args.cell or best.get("cell", "lstm"),
        head=args.head or best.get("head", "final"),
    )


def next_version(model_dir: Path, name: str, pinned: str | None) -> tuple[str, Path | None]:
    """(version to write, the newest existing bundle of that name or None)."""
    try:
        existing: Path | None = resolve_bundle_dir(model_dir, name)
    except BundleError:
        existing = None
    if pinned:
        return pinned, existing
    if existing is None:
        return "1.0.0", None
    parts = [int(p) for kind, p in version_key(read_manifest(existing).version) if kind == 0]
    major, minor = [*parts, 0, 0][:2]
    return f"{major}.{minor + 1}.0", existing


def describe_choice(args: argparse.Namespace, cfg: Config, ablation: list[dict[str, Any]]) -> str:
    fixed = [f"--{k} {getattr(args, k)}" for k in ("embedding", "cell", "head") if getattr(args, k)]
    if ablation:
        how = f"chosen on dev {args.select} ({len(ablation)} runs)"
        return how + (f"; fixed by {', '.join(fixed)}" if fixed else "")
    if fixed:
        return f"set by {', '.join(fixed)}; the rest defaults (no choice on dev)"
    return "defaults (no choice on dev" + (": --quick)" if args.quick else ")")


@dataclass
class RunResult:
    name: str
    version: str
    path: Path | None  # None: not written (an earlier bundle was as good on dev)
    report: dict[str, Any]


def main(argv: list[str] | None = None) -> RunResult:
    """The whole run; a DataFileError (bad input file) before anything is written."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()
    log.info("args %s", vars(args))
    data = load_dataset(args)
    if args.quick and len(data.train) > QUICK_TRAIN_EXAMPLES:
        rng = np.random.default_rng(args.seed)
        keep = sorted(rng.choice(len(data.train), QUICK_TRAIN_EXAMPLES, replace=False))
        data.train = [data.train[i] for i in keep]
    log.info("data %s: labels %s, %s", data.name, data.labels, data.distribution())
    prepared = prepare_data(args, data)
    lengths = length_stats(prepared.train_lengths)
    if args.max_length == 0:
        args.max_length = int(min(400, max(8, lengths["p99"])))
    if args.ablation_max_length == 0:
        args.ablation_max_length = args.max_length
    log.info("vocabulary %d words; train token lengths %s", len(prepared.vocab), lengths)

    with tempfile.TemporaryDirectory(prefix="textcls-") as workdir:
        embeddings = Embeddings(args, data, prepared.vocab, prepared.trained_words, Path(workdir))
        candidates = embeddings.candidates()
        ablation = [] if args.no_ablation else run_ablation(args, data, prepared, embeddings)
        cfg = final_config(args, ablation, candidates)
        log.info("final config %s", cfg)
        matrix, emb_info = embeddings.get(cfg.embedding)
        emb_info = {
            **emb_info,
            "source": cfg.embedding,
            "candidates": candidates,
            "frozen": cfg.freeze_embedding,
            "words_from_vectors_file": len(prepared.vocab) - prepared.trained_words,
        }
        if cfg.embedding == "word2vec":
            emb_info["word2vec_training"] = embeddings.word2vec_info

    encoded = {name: encode_split(*split, cfg) for name, split in prepared.ids.items()}
    result = train(cfg, matrix, encoded["train"], encoded["dev"], data.labels)
    log.info("final dev %s", {k: result["val"][k] for k in ("accuracy", "macro_f1")})
    test = None
    if "test" in encoded:
        test = classification_metrics(
            encoded["test"].labels, predict_probs(result["net"], encoded["test"]), data.labels
        )
        log.info("TEST accuracy %.4f macro-F1 %.4f", test["accuracy"], test["macro_f1"])

    from training.sentiment.baselines import majority, tfidf_logreg

    y = {name: split[1] for name, split in prepared.ids.items()}
    baselines = [
        majority(y["train"], {k: v for k, v in y.items() if k != "train"}, data.labels),
        tfidf_logreg(
            prepared.tokens["train"],
            y["train"],
            prepared.tokens["dev"],
            y["dev"],
            data.labels,
            test=(prepared.tokens["test"], y["test"]) if "test" in y else None,
            balanced=args.class_weights,
            select=args.select,
            seed=args.seed,
        ),
    ]

    model_dir = args.model_dir or (args.cache_dir / "quick-models" if args.quick else DEFAULT_MODEL_DIR)
    version, existing = next_version(model_dir, args.name, args.version)
    from training.sentiment import report as rpt

    facts = rpt.Facts(
        args=args,
        data=data,
        cfg=cfg,
        vocab_size=len(prepared.vocab),
        lengths=lengths,
        truncated={name: e.truncated for name, e in encoded.items()},
        embedding=emb_info,
        choice=describe_choice(args, cfg, ablation),
        ablation=ablation,
        ablation_budget=ablation_budget(args),
        result=result,
        test=test,
        baselines=baselines,
        version=version,
        minutes=round((time.time() - started) / 60, 1),
    )
    previous = shipped_metric(args.name, "validation", args.select, model_dir=model_dir) if existing else None
    if previous is not None and previous >= result["val"][args.select] and not args.force:
        log.warning(
            "%s has dev %s %.4f >= this run's %.4f: not replacing it (use --force)",
            existing,
            args.select,
            previous,
            result["val"][args.select],
        )
        return RunResult(args.name, version, None, facts.summary())
    path = export(
        net=result["net"],
        cfg=cfg,
        vocab=prepared.vocab,
        labels=data.labels,
        language=args.language,
        name=args.name,
        version=version,
        model_dir=model_dir,
        embedding_info=emb_info,
        headline=facts.headline(),
        metrics=facts.metrics(),
        data=facts.data_section(),
        training=facts.training_section(),
        notes="Selection on dev only; the test split was scored once, by this model."
        if test is not None
        else "No test file: every figure is on dev, which also chose the model (optimistic).",
    )
    log.info("bundle written to %s", path)
    report_path = rpt.write(path, facts)
    log.info("report written to %s", report_path)
    if args.report_copy:
        args.report_copy.parent.mkdir(parents=True, exist_ok=True)
        args.report_copy.write_text(report_path.read_text(encoding="utf-8"), encoding="utf-8")
        report_path = args.report_copy
    if args.readme_section:
        try:
            replace_readme_section(args.readme_section, rpt.readme_markdown(facts, report_path))
        except (ValueError, FileNotFoundError) as exc:
            log.warning("README not updated (%s)", exc)
    if args.preset == "imdb" and not (args.quick or args.no_readme):
        from training.bundle import update_readme

        try:
            update_readme((TASK, rpt.readme_markdown(facts, None)), model_dir=model_dir)
        except (ValueError, FileNotFoundError) as exc:
            log.warning("README not updated (%s); re-run training.bundle.update_readme later", exc)
    log.info("done in %.1f min", (time.time() - started) / 60)
    return RunResult(args.name, version, path, facts.summary())


def cli(argv: list[str] | None = None) -> int:
    log_path = setup_logging(TASK)
    log.info("progress log %s", log_path)
    try:
        main(argv)
    except DataFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
