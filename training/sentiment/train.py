"""Training loop, evaluation and ablation for the sentiment model."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from training.sentiment.data import PAD_ID, UNK_ID, truncate
from training.sentiment.model import SentimentNet

log = logging.getLogger(__name__)


@dataclass
class Config:
    embedding: str = "word2vec"  # "glove50", "word2vec" or "none" (random, learnt from scratch)
    cell: str = "lstm"
    head: str = "final"
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.5
    rnn_dropout: float = 0.3
    embedding_dropout: float = 0.2
    max_length: int = 400
    head_fraction: float = 0.25  # share of max_length kept from the start of a long review
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip: float = 1.0
    epochs: int = 4
    patience: int = 2  # evaluations without validation improvement before stopping
    evals_per_epoch: int = 2
    max_minutes: float = 45.0
    train_subset: int = 0  # 0 = all training reviews
    seed: int = 13
    select: str = "accuracy"  # validation metric for early stopping: "accuracy" or "macro_f1"
    class_weights: bool = False  # weigh the loss so every class counts the same
    # Keep the initial vectors: words met only in dev, test or production keep their meaning
    # relative to the trained ones (see --vectors-vocab).
    freeze_embedding: bool = False

    @property
    def head_tokens(self) -> int:
        return round(self.max_length * self.head_fraction)


@dataclass
class Encoded:
    ids: list[list[int]]
    labels: list[int]
    truncated: int = 0
    lengths_before: list[int] = field(default_factory=list)


def encode_split(id_lists: Sequence[Sequence[int]], labels: Sequence[int], cfg: Config) -> Encoded:
    out = Encoded([], list(labels))
    for ids in id_lists:
        out.lengths_before.append(len(ids))
        # An RNN cannot run over zero steps; the service rejects empty text, and no IMDB review is
        # empty, but a lone <unk> keeps the pipeline total on other data.
        ids = list(ids) or [UNK_ID]
        if len(ids) > cfg.max_length:
            out.truncated += 1
        out.ids.append(truncate(ids, cfg.max_length, cfg.head_tokens))
    return out


def uniform_batches(
    data: Encoded, batch_size: int, rng: random.Random, head_fraction: float
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Length-bucketed batches in which every row has exactly the same length.

    Reviews are sorted by (slightly jittered) length, so neighbours differ by a token or two;
    each batch is then cut to its shortest member (head+tail, as for long reviews). Equal lengths
    let training run the RNN unpacked, which is exact here and much faster on the CPU."""
    order = sorted(range(len(data.ids)), key=lambda i: len(data.ids[i]) * (1 + 0.05 * rng.random()))
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        length = min(len(data.ids[i]) for i in chunk)
        head = round(length * head_fraction)
        rows = [truncate(data.ids[i], length, head) for i in chunk]
        batches.append((torch.tensor(rows, dtype=torch.long), torch.tensor([data.labels[i] for i in chunk])))
    rng.shuffle(batches)
    return batches


@torch.no_grad()
def predict_probs(net: SentimentNet, data: Encoded, batch_size: int = 128) -> np.ndarray:
    """Class probabilities [n, classes]. Rows are grouped by exact length, so no text is cut and
    the fast unpacked path gives the same result as the packed exported graph."""
    net.eval()
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(data.ids):
        by_length.setdefault(len(row), []).append(i)
    probs = np.zeros((len(data.ids), net.classifier.out_features), dtype=np.float64)
    for length, idx in by_length.items():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            ids = torch.tensor([data.ids[i] for i in chunk], dtype=torch.long)
            lengths = torch.full((len(chunk),), length, dtype=torch.long)
            logits, _ = net.logits(ids, lengths, packed=False)
            probs[chunk] = torch.softmax(logits, dim=1).double().numpy()
    return probs


def classification_metrics(labels: Sequence[int], probs: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1, log loss and the confusion matrix of
    predictions `probs` [n, classes] (or, for two classes, the second class's probability [n]).
    Two-class results also keep the second class's precision/recall/F1 at the top level, the
    figures the IMDB model has always reported."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = np.stack([1 - p, p], axis=1)
    k = len(names)
    pred = p.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    per_class: dict[str, dict[str, float | int]] = {}
    for c, name in enumerate(names):
        tp = int(confusion[c, c])
        predicted, actual = int(confusion[:, c].sum()), int(confusion[c].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 5),
            "recall": round(recall, 5),
            "f1": round(f1, 5),
            "support": actual,
        }
    eps = 1e-7
    nll = -np.mean(np.log(p[np.arange(y.size), y] + eps)) if y.size else 0.0
    out: dict[str, Any] = {
        "n": int(y.size),
        "accuracy": round(float((pred == y).mean()) if y.size else 0.0, 5),
        # Macro: every class counts the same, so a model that ignores a rare class shows it.
        "macro_f1": round(float(np.mean([m["f1"] for m in per_class.values()])), 5),
        "log_loss": round(float(nll), 5),
        "per_class": per_class,
        # rows: true label, columns: predicted label, in manifest label order
        "confusion_matrix": confusion.tolist(),
        "labels": list(names),
    }
    if k == 2:
        positive = per_class[names[1]]
        out.update(
            precision=positive["precision"],
            recall=positive["recall"],
            f1=positive["f1"],
            positive_label=names[1],
        )
    return out


def class_weights(labels: Sequence[int], n_classes: int) -> np.ndarray:
    """n / (classes * count) per class ("balanced"): each class weighs the same in the loss."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)


def build_net(cfg: Config, embedding: np.ndarray, n_classes: int = 2) -> SentimentNet:
    net = SentimentNet(
        vocab_size=embedding.shape[0],
        embedding_dim=embedding.shape[1],
        hidden=cfg.hidden,
        layers=cfg.layers,
        cell=cfg.cell,
        head=cfg.head,
        dropout=cfg.dropout,
        rnn_dropout=cfg.rnn_dropout,
        embedding_dropout=cfg.embedding_dropout,
        num_classes=n_classes,
        pad_id=PAD_ID,
    )
    with torch.no_grad():
        net.embedding.weight.copy_(torch.from_numpy(embedding))
    return net


def train(
    cfg: Config,
    embedding: np.ndarray,
    train_data: Encoded,
    val_data: Encoded,
    label_names: Sequence[str] = ("negative", "positive"),
) -> dict[str, Any]:
    """Train with Adam + clipping, evaluate on validation a few times per epoch and keep the best
    weights (early stopping on `cfg.select`, a validation metric). Returns the net and its history."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    net = build_net(cfg, embedding, len(label_names))
    if cfg.freeze_embedding:
        net.embedding.weight.requires_grad_(False)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    weight = None
    if cfg.class_weights:
        weight = torch.tensor(class_weights(train_data.labels, len(label_names)), dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    started = time.time()
    deadline = started + cfg.max_minutes * 60
    best: dict[str, Any] = {cfg.select: -1.0}
    history: list[dict[str, Any]] = []
    stale = 0
    epoch_seconds: list[float] = []
    stop = False
    for epoch in range(1, cfg.epochs + 1):
        epoch_start = time.time()
        batches = uniform_batches(train_data, cfg.batch_size, rng, cfg.head_fraction)
        eval_at = {
            math.ceil(len(batches) * k / cfg.evals_per_epoch) for k in range(1, cfg.evals_per_epoch + 1)
        }
        net.train()
        running, seen, tokens = 0.0, 0, 0
        for step, (ids, labels) in enumerate(batches, start=1):
            lengths = torch.full((ids.size(0),), ids.size(1), dtype=torch.long)
            logits, _ = net.logits(ids, lengths, packed=False)
            loss = loss_fn(logits, labels)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
            optimiser.step()
            running += float(loss.detach()) * ids.size(0)
            seen += ids.size(0)
            tokens += ids.numel()
            if step % 50 == 0:
                rate = tokens / (time.time() - epoch_start)
                log.info(
                    "epoch %d step %d/%d loss %.4f (%.0f tokens/s)",
                    epoch,
                    step,
                    len(batches),
                    running / seen,
                    rate,
                )
            out_of_time = time.time() > deadline
            if step in eval_at or out_of_time:
                val = classification_metrics(val_data.labels, predict_probs(net, val_data), label_names)
                point = {
                    "epoch": round(epoch - 1 + step / len(batches), 2),
                    "train_loss": round(running / max(seen, 1), 4),
                    "val_accuracy": val["accuracy"],
                    "val_macro_f1": val["macro_f1"],
                    "val_log_loss": val["log_loss"],
                    "minutes": round((time.time() - started) / 60, 2),
                }
                history.append(point)
                log.info("eval %s", point)
                if val[cfg.select] > best[cfg.select]:
                    best = {**val, "epoch": point["epoch"]}
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    stale = 0
                else:
                    stale += 1
                net.train()
                if stale >= cfg.patience or out_of_time:
                    log.info("stopping: %s", "out of time" if out_of_time else "no validation improvement")
                    stop = True
                    break
        epoch_seconds.append(round(time.time() - epoch_start, 1))
        if stop:
            break
    net.load_state_dict(best_state)
    net.eval()
    return {
        "net": net,
        "val": best,
        "history": history,
        "epoch_seconds": epoch_seconds,
        "minutes": round((time.time() - started) / 60, 2),
        "config": asdict(cfg),
    }
