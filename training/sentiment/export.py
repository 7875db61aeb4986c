"""Seal a trained sentiment net into a bundle (TorchScript + ONNX + vocabulary + manifest)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from app.core.bundle import TensorSpec
from app.core.text import TOKENIZER_NAME, spacy_version
from app.sentiment.bundle import SentimentSection
from training.bundle import DEFAULT_MODEL_DIR, write_bundle
from training.sentiment.data import LOWERCASE, PAD_ID, UNK_ID, provenance
from training.sentiment.model import SentimentNet, export_module
from training.sentiment.train import Config

TASK = "sentiment"


def tensor_specs(head: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    inputs = [
        TensorSpec(name="token_ids", dtype="int64", shape=["batch", "time"]),
        TensorSpec(name="lengths", dtype="int64", shape=["batch"]),
    ]
    outputs = [TensorSpec(name="probs", dtype="float32", shape=["batch", 2])]
    if head == "attention":
        outputs.append(TensorSpec(name="attention", dtype="float32", shape=["batch", "time"]))
    return inputs, outputs


def example_inputs(vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Unequal lengths so the exporter sees a genuinely padded batch.
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(2, vocab_size, (3, 7), generator=gen)
    lengths = torch.tensor([7, 4, 2])
    ids[1, 4:] = PAD_ID
    ids[2, 2:] = PAD_ID
    return ids, lengths


def preprocessing(cfg: Config, vocab_size: int) -> SentimentSection:
    return SentimentSection(
        tokenizer=TOKENIZER_NAME,
        spacy_version=spacy_version(),
        lowercase=LOWERCASE,
        html_breaks="replaced by spaces (app.core.text.clean_html_breaks)",
        max_length=cfg.max_length,
        truncation="head+tail",
        head_tokens=cfg.head_tokens,
        tail_tokens=cfg.max_length - cfg.head_tokens,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        vocab_artifact="vocab",
        vocab_size=vocab_size,
    )


def export(
    *,
    net: SentimentNet,
    cfg: Config,
    vocab: Sequence[str],
    result: dict[str, Any],
    test: dict[str, Any],
    ablation: list[dict[str, Any]],
    ablation_budget: str,
    embedding_info: dict[str, Any],
    lengths: dict[str, Any],
    truncated: dict[str, int],
    counts: dict[str, int],
    data_dir: Path,
    model_dir: Path | None,
    version: str,
    total_minutes: float,
    labels: Sequence[str],
) -> Path:
    inputs, outputs = tensor_specs(cfg.head)
    params = sum(p.numel() for p in net.parameters())
    cell = cfg.cell.upper()
    return write_bundle(
        module=export_module(net.eval()),
        example_inputs=example_inputs(len(vocab)),
        task=TASK,
        version=version,
        inputs=inputs,
        outputs=outputs,
        architecture={
            "name": f"bi{cfg.cell}-sentiment",
            "summary": f"{cfg.layers}-layer Bi{cell} ({cfg.hidden}/dir), {embedding_info['source']} "
            f"{embedding_info['dim']}d, {cfg.head} head",
            "cell": cfg.cell,
            "head": cfg.head,
            "layers": cfg.layers,
            "hidden_per_direction": cfg.hidden,
            "embedding_dim": embedding_info["dim"],
            "embedding_source": embedding_info["source"],
            "vocab_size": len(vocab),
            "parameters": params,
            "packed_sequences": True,
        },
        headline={"metric": "accuracy", "value": test["accuracy"], "split": f"imdb test ({test['n']:,})"},
        metrics={
            "test": test,
            "validation": {k: v for k, v in result["val"].items()},
            "training_curve": result["history"],
            "ablation": {"budget": ablation_budget, "selection": "validation accuracy", "rows": ablation},
        },
        data={
            "source": "Large Movie Review Dataset v1.0 (Maas et al., ACL 2011), "
            "https://ai.stanford.edu/~amaas/data/sentiment/",
            "licence": "released by Stanford for research use; cite Maas et al. (2011)",
            "counts": counts,
            "validation_split": f"seeded (seed {cfg.seed}), label-stratified 10% of the official train split",
            "sha256": provenance(data_dir, ("train", "test", "unsup")),
            "token_lengths_train": lengths,
            "truncated_reviews": truncated,
            "embedding": embedding_info,
            "glove_licence": "GloVe 6B: ODC PDDL 1.0 (Pennington et al., 2014)",
        },
        preprocessing=preprocessing(cfg, len(vocab)),
        labels=list(labels),
        training={
            "config": result["config"],
            "optimizer": "Adam",
            "gradient_clip_norm": cfg.clip,
            "early_stopping": f"on validation accuracy, patience {cfg.patience} evaluations",
            "batches": "length-bucketed; each batch cut to equal length so the RNN runs unpacked",
            "epoch_seconds": result["epoch_seconds"],
            "train_minutes": result["minutes"],
            "total_minutes": total_minutes,
            "threads": torch.get_num_threads(),
        },
        extra_files={"vocab": ("vocab.txt", ("\n".join(vocab) + "\n").encode("utf-8"))},
        notes="Selection on validation only; the test split was scored once, by the shipped model.",
        model_dir=model_dir or DEFAULT_MODEL_DIR,
        overwrite=True,
    )
