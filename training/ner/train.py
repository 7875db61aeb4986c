"""Training one BiLSTM-CRF run, and scoring it with the serving decoder."""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from app.core.vocab import UNK
from app.ner.crf_decode import viterbi
from app.ner.features import CASES, PAD_ID
from app.ner.tags import bioes_spans
from training.ner.conlleval import score_spans
from training.ner.data import Batch, Sentence, Vocab, batches
from training.ner.model import ModelConfig, Tagger

log = logging.getLogger(__name__)


def predict_spans(
    model: Tagger, data: list[Batch], n: int, tags: Sequence[str]
) -> list[list[tuple[int, int, str]]]:
    """Decode with the serving decoder (numpy Viterbi), so reported scores are the served ones."""
    model.eval()
    crf = model.crf.params()
    spans: list[list[tuple[int, int, str]]] = [[] for _ in range(n)]
    with torch.inference_mode():
        for feeds, _, idx in data:
            em = model.emitter(feeds["word_ids"], feeds["case_ids"], feeds["char_ids"], feeds["lengths"])
            paths = viterbi(em.numpy(), feeds["lengths"].numpy(), crf)
            for i, path in zip(idx, paths, strict=True):
                spans[i] = bioes_spans([tags[t] for t in path])
    return spans


def evaluate(
    model: Tagger, data: list[Batch], sentences: list[Sentence], tags: Sequence[str]
) -> dict[str, Any]:
    gold = [s.spans() for s in sentences]
    return score_spans(gold, predict_spans(model, data, len(sentences), tags))


@dataclass
class RunConfig:
    name: str
    use_glove: bool = True  # start from the pre-trained word vectors given (GloVe or word2vec)
    use_chars: bool = True
    dropout: float = 0.5
    epochs: int = 30
    max_minutes: float = 1e9
    lr: float = 2e-3
    batch_size: int = 32
    hidden: int = 200
    train_fraction: float = 1.0
    seed: int = 1
    patience: int = 5  # stop after this many epochs without a better dev F1
    # Share of training words replaced by <unk> each step: teaches the <unk> row, and the char
    # and context features, what dev and test words missing from the vocabulary look like.
    word_dropout: float = 0.0
    dev_name: str = "testa"  # the selection split's name, in logs and the per-epoch history


def train_one(
    rc: RunConfig,
    vocab: Vocab,
    vectors: dict[str, np.ndarray],
    train: list[Sentence],
    dev: list[Sentence],
    dev_batches: list[Batch],
) -> tuple[Tagger, dict[str, Any]]:
    """Train, keeping the weights of the epoch with the best dev F1. `vectors` maps vocabulary
    words to pre-trained vectors (their size sets the word embedding's); empty: random init."""
    torch.manual_seed(rc.seed)
    random.seed(rc.seed)
    subset = (
        train if rc.train_fraction >= 1 else random.sample(train, max(1, int(len(train) * rc.train_fraction)))
    )
    train_batches = batches(subset, vocab, rc.batch_size, rc.seed)
    first = next(iter(vectors.values()), None)
    cfg = ModelConfig(
        vocab_size=len(vocab.words),
        num_chars=len(vocab.chars),
        num_cases=len(CASES),
        num_tags=len(vocab.tags),
        word_dim=50 if first is None else int(first.size),
        hidden=rc.hidden,
        dropout=rc.dropout,
        use_chars=rc.use_chars,
    )
    model = Tagger(cfg)
    hits = 0
    if rc.use_glove and vectors:
        # Random rows (words without a vector) get the pre-trained vectors' own spread (GloVe's
        # std is ~0.4; word2vec's depends on its training), so neither kind stands out.
        spread = float(np.std(np.stack(list(vectors.values()))))
        with torch.no_grad():
            weight = model.emitter.word_emb.weight
            weight.normal_(0.0, spread)
            for i, w in enumerate(vocab.words):
                vec = vectors.get(w)
                if vec is not None:
                    weight[i] = torch.from_numpy(vec)
                    hits += 1
            weight[0].zero_()
    unk_id = vocab.words.index(UNK)
    optimizer = torch.optim.Adam(model.parameters(), lr=rc.lr)
    best_f1, best_state, best_epoch = -1.0, copy.deepcopy(model.state_dict()), 0
    history = []
    started = time.monotonic()
    rng = random.Random(rc.seed)
    stop_reason = f"the last epoch ({rc.epochs})"
    for epoch in range(1, rc.epochs + 1):
        for g in optimizer.param_groups:
            g["lr"] = rc.lr / (1 + 0.05 * (epoch - 1))
        model.train()
        t0 = time.monotonic()
        rng.shuffle(train_batches)
        total = 0.0
        for feeds, tags, _ in train_batches:
            optimizer.zero_grad()
            if rc.word_dropout > 0:
                words = feeds["word_ids"]
                drop = (torch.rand(words.shape) < rc.word_dropout) & (words != PAD_ID)
                feeds = {**feeds, "word_ids": words.masked_fill(drop, unk_id)}
            loss = model.loss(feeds, tags)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            total += float(loss.detach())
        epoch_s = time.monotonic() - t0
        dev_score = evaluate(model, dev_batches, dev, vocab.tags)
        f1 = float(dev_score["overall"]["f1"])
        history.append(
            {
                "epoch": epoch,
                "loss": round(total / len(train_batches), 4),
                f"{rc.dev_name}_f1": f1,
                "epoch_seconds": round(epoch_s, 1),
            }
        )
        log.info(
            "[%s] epoch %d loss %.4f %s F1 %.2f (%.0fs train, %.0fs eval)",
            rc.name,
            epoch,
            total / len(train_batches),
            rc.dev_name,
            f1,
            epoch_s,
            time.monotonic() - t0 - epoch_s,
        )
        if f1 > best_f1:
            best_f1, best_state, best_epoch = f1, copy.deepcopy(model.state_dict()), epoch
        elapsed = (time.monotonic() - started) / 60
        per_epoch = elapsed / epoch
        if rc.patience and epoch - best_epoch >= rc.patience:
            stop_reason = f"early stop: no better {rc.dev_name} F1 for {rc.patience} epochs"
            log.info("[%s] stopping after epoch %d: %s", rc.name, epoch, stop_reason)
            break
        if epoch < rc.epochs and elapsed + per_epoch > rc.max_minutes:
            stop_reason = f"time budget {rc.max_minutes:g} min"
            log.info("[%s] stopping after epoch %d: %s", rc.name, epoch, stop_reason)
            break
    model.load_state_dict(best_state)
    model.eval()
    info = {
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "stopped": stop_reason,
        f"{rc.dev_name}_f1_best": best_f1,
        "train_minutes": round((time.monotonic() - started) / 60, 1),
        "glove_hits": hits,
        "history": history,
        "config": cfg.to_dict(),
    }
    return model, info
