"""Exported emissions (ONNX, TorchScript) equal eager ones, alone or inside a padded batch, and the
served decoder gives the eager model's tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.core.backends import load_backend
from app.core.bundle import load_bundle
from app.ner.features import encode_batch
from app.ner.task import NerItem, NerTask
from tests.ner_support import write_tiny_bundle
from training.ner.data import TAGS, Vocab
from training.ner.export import INPUT_NAMES
from training.ner.model import Tagger

SENTENCES = [
    ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    ["Peter"],
    ["Zoë", "visited", "東京", "🙂", "and", "the", "Internationalisierungsbestrebungen", "committee"],
    ["Golan", "Heights", "Israel", "captured", "from", "Syria"],
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tagger, Vocab]:
    return write_tiny_bundle(tmp_path_factory.mktemp("ner_models"))


def eager_emissions(model: Tagger, vocab: Vocab, sentences: list[list[str]]) -> np.ndarray:
    feeds = encode_batch(sentences, vocab.word_index(), vocab.char_index())
    with torch.inference_mode():
        return model.emitter(*(torch.from_numpy(feeds[k]) for k in INPUT_NAMES)).numpy()


@pytest.mark.parametrize("backend_name", ["onnx", "torchscript"])
def test_emissions_alone_equal_batched_and_eager(tiny: tuple[Path, Tagger, Vocab], backend_name: str) -> None:
    path, model, vocab = tiny
    backend = load_backend(backend_name, load_bundle(path), "cpu")  # type: ignore[arg-type]
    words, chars = vocab.word_index(), vocab.char_index()
    batched = backend.run(encode_batch(SENTENCES, words, chars))["emissions"]
    assert batched.shape == (len(SENTENCES), max(map(len, SENTENCES)), len(TAGS))
    for b, sentence in enumerate(SENTENCES):
        alone = backend.run(encode_batch([sentence], words, chars))["emissions"][0]
        eager = eager_emissions(model, vocab, [sentence])[0]
        n = len(sentence)
        np.testing.assert_allclose(batched[b, :n], alone, atol=1e-5)
        np.testing.assert_allclose(alone, eager, atol=1e-5)


@pytest.mark.parametrize("backend_name", ["onnx", "torchscript"])
def test_served_tags_equal_eager_decoding(tiny: tuple[Path, Tagger, Vocab], backend_name: str) -> None:
    path, model, vocab = tiny
    bundle = load_bundle(path)
    task = NerTask(bundle, load_backend(backend_name, bundle, "cpu"))  # type: ignore[arg-type]
    items = [NerItem(tuple(s)) for s in SENTENCES]
    batched = task.predict_batch(items)
    em = torch.from_numpy(eager_emissions(model, vocab, SENTENCES))
    lengths = torch.tensor([len(s) for s in SENTENCES])
    eager_paths = model.crf.decode(em, torch.arange(em.size(1)).unsqueeze(0) < lengths.unsqueeze(1))
    for item, pred, path_ids in zip(items, batched, eager_paths, strict=True):
        assert pred.tags == [TAGS[t] for t in path_ids]
        alone = task.predict_batch([item])[0]
        assert alone.tags == pred.tags
        assert [e.label for e in alone.entities] == [e.label for e in pred.entities]
        for a, b in zip(alone.entities, pred.entities, strict=True):
            assert 0.0 <= a.confidence <= 1.0
            assert a.confidence == pytest.approx(b.confidence, abs=1e-5)


SHIPPED = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.skipif(
    not (SHIPPED / "ner").is_dir(), reason="no shipped bundle under models/ner yet (python -m training.ner)"
)
def test_shipped_backends_agree_alone_and_batched() -> None:
    from app.core.bundle import resolve_bundle_dir

    bundle = load_bundle(resolve_bundle_dir(SHIPPED, "ner"))
    tasks = [NerTask(bundle, load_backend(name, bundle, "cpu")) for name in ("onnx", "torchscript")]
    items = [NerItem(tuple(s)) for s in SENTENCES]
    feeds = encode_batch(SENTENCES, tasks[0].vocab, tasks[0].chars)
    onnx_em, ts_em = (t.backend.run(feeds)["emissions"] for t in tasks)
    for b, s in enumerate(SENTENCES):
        np.testing.assert_allclose(onnx_em[b, : len(s)], ts_em[b, : len(s)], atol=1e-4)
    onnx_batch, ts_batch = (t.predict_batch(items) for t in tasks)
    for i, item in enumerate(items):
        alone = [t.predict_batch([item])[0].tags for t in tasks]
        assert alone[0] == alone[1] == onnx_batch[i].tags == ts_batch[i].tags
