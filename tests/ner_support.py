"""A tiny random-weight NER bundle written through the real export path (training.ner.train.export),
so tests exercise TorchScript, ONNX, the CRF artifact and the task without the shipped model."""

from __future__ import annotations

from pathlib import Path

import torch

from app.core.vocab import PAD, UNK
from app.ner.features import CASES
from training.ner.data import TAGS, Sentence, Vocab, read_conll
from training.ner.export import export
from training.ner.model import ModelConfig, Tagger

FIXTURE = Path(__file__).parent / "fixtures" / "ner" / "conll_sample.txt"


def tiny_tagger(vocab: Vocab, seed: int = 0) -> Tagger:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=len(vocab.words),
        num_chars=len(vocab.chars),
        num_cases=len(CASES),
        num_tags=len(TAGS),
        word_dim=6,
        case_dim=3,
        char_dim=4,
        char_filters=5,
        hidden=7,
    )
    return Tagger(cfg).eval()


def fixture_vocab(sentences: list[Sentence]) -> Vocab:
    words = sorted({w.lower() for s in sentences for w in s.words})
    chars = sorted({c for s in sentences for w in s.words for c in w})
    return Vocab([PAD, UNK, *words], [PAD, UNK, *chars])


def force_tag(model: Tagger, tag: str) -> None:
    """Make the CRF prefer `tag` everywhere, whatever the emissions: tests then know the output."""
    k = TAGS.index(tag)
    with torch.no_grad():
        model.crf.transitions.fill_(-20.0)
        model.crf.transitions[k, k] = 20.0
        model.crf.start_transitions.fill_(-20.0)
        model.crf.start_transitions[k] = 20.0
        model.crf.end_transitions.zero_()


def write_tiny_bundle(model_dir: Path, model: Tagger | None = None) -> tuple[Path, Tagger, Vocab]:
    sentences = read_conll(FIXTURE)
    vocab = fixture_vocab(sentences)
    model = model or tiny_tagger(vocab)
    score = {"overall": {"f1": 0.0}}
    path = export(
        model,
        vocab,
        {"testa": score, "testb": score},
        {"source": "tests/fixtures/ner/conll_sample.txt (random weights)"},
        {},
        [],
        model_dir,
        sentences[:3],
    )
    return path, model, vocab
