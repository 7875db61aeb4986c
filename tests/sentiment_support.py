"""A tiny random-weight sentiment bundle written with the training code's own tensor specs and
preprocessing section, so tests cover export and serving without the shipped model."""

from __future__ import annotations

from pathlib import Path

import torch

from training.bundle import write_bundle
from training.sentiment.data import LABELS, PAD, UNK
from training.sentiment.export import example_inputs, preprocessing, tensor_specs
from training.sentiment.model import SentimentNet, export_module
from training.sentiment.train import Config

WORDS = [
    "the", "a", "film", "movie", "good", "great", "bad", "awful", "plot",
    "acting", "boring", "loved", "it", "was", "not", ".", ",", "!",
]  # fmt: skip
VOCAB = [PAD, UNK, *WORDS]


def tiny_net(cell: str = "lstm", head: str = "final", seed: int = 0) -> SentimentNet:
    torch.manual_seed(seed)
    return SentimentNet(len(VOCAB), embedding_dim=4, hidden=3, layers=2, cell=cell, head=head).eval()


def write_tiny_bundle(
    model_dir: Path, cell: str = "lstm", head: str = "final", max_length: int = 12, seed: int = 0
) -> tuple[Path, SentimentNet]:
    net = tiny_net(cell, head, seed)
    cfg = Config(cell=cell, head=head, max_length=max_length)
    inputs, outputs = tensor_specs(head)
    path = write_bundle(
        module=export_module(net),
        example_inputs=example_inputs(len(VOCAB)),
        task="sentiment",
        version="0.0.1",
        inputs=inputs,
        outputs=outputs,
        architecture={"name": f"tiny-{cell}-{head}", "cell": cell, "head": head},
        headline={"metric": "accuracy", "value": 0.5, "split": "none (random weights)"},
        metrics={"validation": {"accuracy": 0.5}},
        data={"source": "none"},
        preprocessing=preprocessing(cfg, len(VOCAB)),
        labels=list(LABELS),
        extra_files={"vocab": ("vocab.txt", ("\n".join(VOCAB) + "\n").encode())},
        model_dir=model_dir,
        overwrite=True,
    )
    return path, net
