"""Seal a trained sentiment net into a bundle (TorchScript + ONNX + vocabulary + manifest)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from app.core.bundle import TensorSpec
from app.core.text import spacy_version, tokenizer_name
from app.sentiment.bundle import SentimentSection
from training.bundle import DEFAULT_MODEL_DIR, write_bundle
from training.sentiment.data import LOWERCASE, PAD_ID, UNK_ID
from training.sentiment.model import SentimentNet, export_module
from training.sentiment.train import Config

TASK = "sentiment"


def tensor_specs(head: str, n_classes: int = 2) -> tuple[list[TensorSpec], list[TensorSpec]]:
    inputs = [
        TensorSpec(name="token_ids", dtype="int64", shape=["batch", "time"]),
        TensorSpec(name="lengths", dtype="int64", shape=["batch"]),
    ]
    outputs = [TensorSpec(name="probs", dtype="float32", shape=["batch", n_classes])]
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


def preprocessing(cfg: Config, vocab_size: int, language: str = "en") -> SentimentSection:
    return SentimentSection(
        tokenizer=tokenizer_name(language),
        language=language,
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
    labels: Sequence[str],
    language: str,
    name: str,
    version: str,
    model_dir: Path | None,
    embedding_info: dict[str, Any],
    headline: dict[str, Any],
    metrics: dict[str, Any],
    data: dict[str, Any],
    training: dict[str, Any],
    notes: str,
) -> Path:
    inputs, outputs = tensor_specs(cfg.head, len(labels))
    params = sum(p.numel() for p in net.parameters())
    cell = cfg.cell.upper()
    return write_bundle(
        module=export_module(net.eval()),
        example_inputs=example_inputs(len(vocab)),
        task=TASK,
        name=name,
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
            "classes": len(labels),
            "parameters": params,
            "packed_sequences": True,
        },
        headline=headline,
        metrics=metrics,
        data=data,
        preprocessing=preprocessing(cfg, len(vocab), language),
        labels=list(labels),
        training={
            "optimizer": "Adam",
            "gradient_clip_norm": cfg.clip,
            "early_stopping": f"on validation {cfg.select}, patience {cfg.patience} evaluations",
            "batches": "length-bucketed; each batch cut to equal length so the RNN runs unpacked",
            "threads": torch.get_num_threads(),
            **training,
        },
        extra_files={"vocab": ("vocab.txt", ("\n".join(vocab) + "\n").encode("utf-8"))},
        notes=notes,
        model_dir=model_dir or DEFAULT_MODEL_DIR,
        overwrite=True,
    )
