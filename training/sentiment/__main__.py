"""Train, evaluate and export the IMDB sentiment model.

    python -m training.sentiment                 # ablation (reduced budget) + final model + bundle
    python -m training.sentiment --no-ablation --embedding glove50 --cell gru --head attention
    python -m training.sentiment --quick         # minutes-long smoke run, writes nothing shipped

Selection uses a seeded 10% validation part of train; the official test split is scored once,
by the final model. The bundle replaces the shipped one only when its validation accuracy is
higher (or with --force).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.bundle import DEFAULT_MODEL_DIR, shipped_metric
from training.logs import setup_logging
from training.sentiment.cache import DEFAULT_CACHE_DIR, tokenised_split
from training.sentiment.data import (
    DEFAULT_DATA_DIR,
    LABELS,
    Review,
    build_vocab,
    encode,
    read_split,
    train_val_split,
)
from training.sentiment.embeddings import GLOVE_50D, embedding_matrix
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

log = logging.getLogger("training.sentiment")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = Config()
    p = argparse.ArgumentParser(
        prog="python -m training.sentiment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="IMDB folder (jsonl.gz or aclImdb layout)"
    )
    p.add_argument("--glove", type=Path, default=GLOVE_50D, help="GloVe 6B 50d text file")
    p.add_argument(
        "--word2vec",
        type=Path,
        default=DEFAULT_CACHE_DIR / "imdb-word2vec.txt",
        help="IMDB word2vec vectors; trained first if missing",
    )
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="tokenised-review cache")
    p.add_argument("--model-dir", type=Path, default=None, help="bundle output root (default: models/)")
    p.add_argument(
        "--embedding",
        choices=["glove50", "word2vec"],
        default=None,
        help="embedding source (default: the ablation's best, else word2vec)",
    )
    p.add_argument("--cell", choices=["lstm", "gru"], default=None)
    p.add_argument("--head", choices=["final", "attention"], default=None)
    p.add_argument("--hidden", type=int, default=d.hidden)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-length", type=int, default=d.max_length, help="tokens kept per review (head+tail)")
    p.add_argument("--max-minutes", type=float, default=d.max_minutes, help="time cap of the final training")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--vocab-size", type=int, default=20_000)
    p.add_argument("--min-freq", type=int, default=3)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        # On a shared, oversubscribed CPU one thread trained ~4x faster than two: OpenMP workers
        # spin at every barrier waiting for a descheduled peer.
        help="torch threads",
    )
    p.add_argument("--no-ablation", action="store_true", help="skip the embedding x cell x head ablation")
    p.add_argument("--ablation-subset", type=int, default=6000, help="training reviews per ablation run")
    p.add_argument("--ablation-max-length", type=int, default=64)
    p.add_argument("--ablation-epochs", type=int, default=1)
    p.add_argument("--ablation-minutes", type=float, default=1.5, help="time cap per ablation run")
    p.add_argument(
        "--ablation-val", type=int, default=1500, help="validation reviews scored per ablation run"
    )
    p.add_argument("--evals-per-epoch", type=int, default=3, help="validation checks per epoch (final run)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run; the bundle goes to a temp dir")
    p.add_argument("--force", action="store_true", help="replace the shipped bundle even if not better")
    p.add_argument(
        "--no-readme", action="store_true", help="leave README.md alone (runs writing to another --model-dir)"
    )
    p.add_argument("--version", default="1.0.0")
    return p.parse_args(argv)


def length_stats(lengths: list[int]) -> dict[str, Any]:
    arr = np.asarray(lengths)
    pct = {f"p{q}": int(np.percentile(arr, q)) for q in (50, 75, 90, 95, 99)}
    return {"mean": round(float(arr.mean()), 1), **pct, "max": int(arr.max())}


def ablation_markdown(rows: list[dict[str, Any]], budget: str) -> str:
    lines = [
        f"Ablation (reduced budget: {budget}; validation accuracy on the held-out 10% of train):",
        "",
        "| embedding | cell | head | val accuracy | minutes |",
        "|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -r["val_accuracy"]):
        lines.append(
            f"| {r['embedding']} | {r['cell']} | {r['head']} | {r['val_accuracy']:.4f} | {r['minutes']:.1f} |"
        )
    return "\n".join(lines)


@dataclass
class Prepared:
    """The three splits as token ids, plus what the manifest reports about them."""

    vocab: list[str]
    train: tuple[list[list[int]], list[int]]
    val: tuple[list[list[int]], list[int]]
    test: tuple[list[list[int]], list[int]]
    train_lengths: list[int]


def prepare_data(args: argparse.Namespace) -> Prepared:
    train_reviews = read_split(args.data_dir, "train")
    test_reviews = read_split(args.data_dir, "test")
    train_tokens = tokenised_split(args.data_dir, "train", args.cache_dir, args.threads)
    test_tokens = tokenised_split(args.data_dir, "test", args.cache_dir, args.threads)
    if args.quick:
        train_reviews, train_tokens = train_reviews[::25], train_tokens[::25]
        test_reviews, test_tokens = test_reviews[::50], test_tokens[::50]
    train_idx, val_idx = train_val_split(train_reviews, args.val_fraction, args.seed)
    # The vocabulary comes from the training part only, so validation words can be unknown too.
    vocab = build_vocab((train_tokens[i] for i in train_idx), args.vocab_size, args.min_freq)
    index = {w: i for i, w in enumerate(vocab)}

    def part(
        tokens: list[list[str]], reviews: list[Review], idx: list[int]
    ) -> tuple[list[list[int]], list[int]]:
        return [encode(tokens[i], index) for i in idx], [reviews[i].label for i in idx]

    return Prepared(
        vocab=vocab,
        train=part(train_tokens, train_reviews, train_idx),
        val=part(train_tokens, train_reviews, val_idx),
        test=part(test_tokens, test_reviews, list(range(len(test_reviews)))),
        train_lengths=[len(train_tokens[i]) for i in train_idx],
    )


class Embeddings:
    """Initial embedding matrices by source name, built once per run."""

    def __init__(self, args: argparse.Namespace, vocab: list[str]) -> None:
        self.args = args
        self.vocab = vocab
        self.word2vec_info: dict[str, Any] = {}
        self._cache: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}

    def _word2vec_path(self) -> Path:
        from training.sentiment import word_vectors as wv

        path: Path = self.args.word2vec
        waited = time.time()
        # Vectors being trained by a parallel `python -m training.sentiment.word_vectors`:
        # wait for them instead of training them twice.
        while not path.is_file() and wv.in_progress(self.args.cache_dir) and time.time() - waited < 1200:
            time.sleep(10)
        if not path.is_file():
            wv.train_word_vectors(self.args.data_dir, self.args.cache_dir, path, workers=self.args.threads)
        if wv.info_path(path).is_file():
            self.word2vec_info = json.loads(wv.info_path(path).read_text(encoding="utf-8"))
        return path

    def get(self, name: str) -> tuple[np.ndarray, dict[str, Any]]:
        if name not in self._cache:
            path = self._word2vec_path() if name == "word2vec" else self.args.glove
            matrix, info = embedding_matrix(self.vocab, path, self.args.seed)
            self._cache[name] = (matrix, {**info, "file": path.name})
            log.info("embedding %s: %s", name, self._cache[name][1])
        return self._cache[name]


def ablation_budget(args: argparse.Namespace) -> str:
    return (
        f"{args.ablation_subset} training reviews, max_length {args.ablation_max_length}, "
        f"{args.ablation_epochs} epoch(s), at most {args.ablation_minutes:g} min per run, "
        f"scored on {args.ablation_val} validation reviews"
    )


def run_ablation(args: argparse.Namespace, data: Prepared, embeddings: Embeddings) -> list[dict[str, Any]]:
    """Every embedding x cell x head combination on the same reduced budget and data subset."""
    base = Config(
        hidden=args.hidden,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        max_length=args.ablation_max_length,
        epochs=args.ablation_epochs,
        evals_per_epoch=1,
        max_minutes=args.ablation_minutes,
        patience=99,
    )
    rng = np.random.default_rng(args.seed)

    def subset(split: tuple[list[list[int]], list[int]], n: int) -> Encoded:
        ids, labels = split
        idx = sorted(rng.choice(len(ids), min(n, len(ids)), replace=False))
        return encode_split([ids[i] for i in idx], [labels[i] for i in idx], base)

    train_part, val_part = subset(data.train, args.ablation_subset), subset(data.val, args.ablation_val)
    rows: list[dict[str, Any]] = []
    for emb in ("glove50", "word2vec"):
        for cell in CELLS:
            for head in HEADS:
                cfg = dataclasses.replace(base, embedding=emb, cell=cell, head=head)
                log.info("ablation run %s/%s/%s", emb, cell, head)
                result = train(cfg, embeddings.get(emb)[0], train_part, val_part)
                row = {
                    "embedding": emb,
                    "cell": cell,
                    "head": head,
                    "val_accuracy": result["val"]["accuracy"],
                    "minutes": result["minutes"],
                }
                rows.append(row)
                log.info("ablation result %s", row)
    return rows


def final_config(args: argparse.Namespace, ablation: list[dict[str, Any]]) -> Config:
    """Flags win; otherwise the ablation's best row by validation accuracy."""
    best = max(ablation, key=lambda r: r["val_accuracy"]) if ablation else {}
    return Config(
        embedding=args.embedding or best.get("embedding", "word2vec"),
        cell=args.cell or best.get("cell", "lstm"),
        head=args.head or best.get("head", "final"),
        hidden=args.hidden,
        max_length=args.max_length,
        batch_size=args.batch_size,
        lr=args.lr,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        seed=args.seed,
        evals_per_epoch=args.evals_per_epoch,
    )


def readme_markdown(
    test: dict[str, Any], val: dict[str, Any], cfg: Config, ablation: list[dict[str, Any]], budget: str
) -> str:
    return (
        f"Test (official IMDB test split, 25,000 reviews): accuracy **{test['accuracy']:.4f}**, "
        f"precision {test['precision']:.4f}, recall {test['recall']:.4f}, F1 {test['f1']:.4f}; "
        f"validation accuracy {val['accuracy']:.4f}. Shipped: {cfg.embedding} embedding, "
        f"2-layer bi-{cfg.cell.upper()} ({cfg.hidden}/direction), {cfg.head} head, "
        f"max_length {cfg.max_length} (head+tail).\n\n"
        + (ablation_markdown(ablation, budget) if ablation else "No ablation in this run.")
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    log_path = setup_logging(TASK)
    torch.set_num_threads(args.threads)
    started = time.time()
    log.info("args %s; progress log %s", vars(args), log_path)

    data = prepare_data(args)
    log.info("vocabulary %d words; train token lengths %s", len(data.vocab), length_stats(data.train_lengths))
    embeddings = Embeddings(args, data.vocab)
    ablation = [] if args.no_ablation else run_ablation(args, data, embeddings)

    cfg = final_config(args, ablation)
    log.info("final config %s", cfg)
    matrix, emb_info = embeddings.get(cfg.embedding)
    tr, va, te = (encode_split(*split, cfg) for split in (data.train, data.val, data.test))
    result = train(cfg, matrix, tr, va)
    log.info("final validation %s", result["val"])
    eval_start = time.time()
    test = classification_metrics(te.labels, predict_probs(result["net"], te))
    log.info("TEST %s (%.0f s)", test, time.time() - eval_start)

    model_dir = args.model_dir
    if args.quick and model_dir is None:
        model_dir = args.cache_dir / "quick-models"
    previous = shipped_metric(TASK, "validation", "accuracy", model_dir=model_dir or DEFAULT_MODEL_DIR)
    if previous is not None and previous >= result["val"]["accuracy"] and not args.force:
        log.warning(
            "shipped bundle has validation accuracy %.4f >= %.4f: not replacing it (use --force)",
            previous,
            result["val"]["accuracy"],
        )
        return
    budget = ablation_budget(args)
    path = export(
        net=result["net"],
        cfg=cfg,
        vocab=data.vocab,
        result=result,
        test=test,
        ablation=ablation,
        ablation_budget=budget,
        embedding_info={**emb_info, "source": cfg.embedding, "word2vec_training": embeddings.word2vec_info},
        lengths=length_stats(data.train_lengths),
        truncated={"train": tr.truncated, "validation": va.truncated, "test": te.truncated},
        counts={
            "train": len(tr.ids),
            "validation": len(va.ids),
            "test": len(te.ids),
            "unsup_for_word2vec": 50_000,
        },
        data_dir=args.data_dir,
        model_dir=model_dir,
        version=args.version,
        total_minutes=round((time.time() - started) / 60, 1),
        labels=LABELS,
    )
    log.info("bundle written to %s", path)
    if not (args.quick or args.no_readme):
        from training.bundle import update_readme

        try:
            update_readme(
                ("sentiment", readme_markdown(test, result["val"], cfg, ablation, budget)),
                model_dir=path.parents[1],
            )
        except (ValueError, FileNotFoundError) as exc:
            log.warning("README not updated (%s); re-run training.bundle.update_readme later", exc)
    log.info("done in %.1f min", (time.time() - started) / 60)


if __name__ == "__main__":
    main()
