"""Exported sentiment models give a text the same probabilities alone and in a padded batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.core.backends import load_backend
from app.core.bundle import load_bundle
from tests.sentiment_support import VOCAB, tiny_net, write_tiny_bundle

VARIANTS = [("lstm", "final"), ("gru", "attention")]


def _random_batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = rng.integers(1, 20, size=n).astype(np.int64)
    lengths[0] = 19  # at least one row needs padding
    ids = np.zeros((n, int(lengths.max())), dtype=np.int64)
    for i, n_tok in enumerate(lengths):
        ids[i, :n_tok] = rng.integers(1, len(VOCAB), size=n_tok)
    return ids, lengths


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: "-".join(v))
def bundle_and_net(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cell, head = request.param
    path, net = write_tiny_bundle(tmp_path_factory.mktemp(f"{cell}-{head}"), cell=cell, head=head)
    return load_bundle(path), net


@pytest.mark.parametrize("backend_name", ["onnx", "torchscript"])
def test_batch_matches_alone_and_eager(bundle_and_net, backend_name: str) -> None:  # type: ignore[no-untyped-def]
    bundle, net = bundle_and_net
    backend = load_backend(backend_name, bundle, "cpu")
    rng = np.random.default_rng(7)
    for _ in range(3):
        ids, lengths = _random_batch(rng, 6)
        batch = backend.run({"token_ids": ids, "lengths": lengths})
        with torch.no_grad():
            eager_probs, eager_att = net(torch.from_numpy(ids), torch.from_numpy(lengths))
        np.testing.assert_allclose(batch["probs"], eager_probs.numpy(), atol=1e-5)
        np.testing.assert_allclose(batch["probs"].sum(axis=1), 1.0, atol=1e-5)
        for i, n_tok in enumerate(lengths):
            alone = backend.run({"token_ids": ids[i : i + 1, :n_tok], "lengths": lengths[i : i + 1]})
            np.testing.assert_allclose(alone["probs"][0], batch["probs"][i], atol=1e-5)
            if net.use_attention:
                np.testing.assert_allclose(alone["attention"][0], batch["attention"][i, :n_tok], atol=1e-5)
                assert np.all(batch["attention"][i, n_tok:] == 0.0)  # padding gets no weight
                np.testing.assert_allclose(batch["attention"][i], eager_att[i].numpy(), atol=1e-5)
        if not net.use_attention:
            assert "attention" not in batch


@pytest.mark.parametrize(("cell", "head"), VARIANTS)
def test_unpacked_training_path_equals_packed(cell: str, head: str) -> None:
    """Training runs equal-length batches unpacked for speed; that must be the same function."""
    net = tiny_net(cell, head)
    ids = torch.randint(1, len(VOCAB), (4, 9))
    lengths = torch.full((4,), 9)
    with torch.no_grad():
        packed, _ = net.logits(ids, lengths, packed=True)
        unpacked, _ = net.logits(ids, lengths, packed=False)
    torch.testing.assert_close(packed, unpacked, atol=1e-6, rtol=0)


def test_padding_changes_nothing_but_content_does(tmp_path: Path) -> None:
    """Guards against a vacuous equality test: different tokens must give different outputs."""
    net = tiny_net("lstm", "final", seed=3)
    a = torch.tensor([[2, 3, 4, 5]])
    b = torch.tensor([[9, 8, 7, 6]])
    with torch.no_grad():
        pa, _ = net(a, torch.tensor([4]))
        pb, _ = net(b, torch.tensor([4]))
    assert not torch.allclose(pa, pb)
