"""Seal a trained BiLSTM-CRF into a bundle: the emission network (TorchScript + ONNX), the CRF
scores, both vocabularies and the typed `preprocessing` section. `write_bundle` checks that both
runtimes reproduce the eager network before the bundle replaces the shipped one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from app.core.bundle import TensorSpec
from app.core.vocab import PAD, UNK
from app.ner.bundle import CasingFeature, NerSection, tokenizer_name
from app.ner.features import CASE_DEFINITION, CASES, MAX_WORD_CHARS, encode_batch
from training.bundle import write_bundle
from training.ner.data import Sentence, Vocab
from training.ner.model import Tagger

TASK = "ner"
VERSION = "1.0.0"
INPUT_NAMES = ("word_ids", "case_ids", "char_ids", "lengths")


def section(vocab: Vocab, language: str = "en", source_scheme: str = "IOB1") -> NerSection:
    return NerSection(
        tokenizer=tokenizer_name(language),
        language=language,
        lowercase=True,
        vocab_artifact="vocab",
        vocab_size=len(vocab.words),
        pad_id=vocab.words.index(PAD),
        unk_id=vocab.words.index(UNK),
        scheme="BIOES",
        source_scheme=source_scheme,
        digits_fallback="a word missing from the vocabulary is looked up again with digits -> 0",
        casing_feature=CasingFeature(values=CASES, definition=CASE_DEFINITION),
        chars_artifact="chars",
        char_vocab_size=len(vocab.chars),
        max_word_chars=MAX_WORD_CHARS,
        long_word_rule=f"words longer than {MAX_WORD_CHARS} chars keep their first and last "
        f"{MAX_WORD_CHARS // 2}",
    )


def export(
    model: Tagger,
    vocab: Vocab,
    metrics: dict[str, Any],
    data_info: dict[str, Any],
    training: dict[str, Any],
    ablation: list[dict[str, Any]],
    model_dir: Path,
    sample: list[Sentence],
    *,
    name: str | None = None,
    version: str = VERSION,
    language: str = "en",
    source_scheme: str = "IOB1",
    report_split: str = "testb",
    report_split_name: str = "CoNLL-2003 eng.testb",
    embeddings: str = "GloVe 50d",
    revision: str | None = None,
) -> Path:
    """Write the bundle to `model_dir/name/version` (name: the task's by default, as shipped).
    `metrics[report_split]` gives the headline; `embeddings` names the word vectors used."""
    feeds = encode_batch([s.words for s in sample], vocab.word_index(), vocab.char_index())
    example = tuple(torch.from_numpy(feeds[k]) for k in INPUT_NAMES)
    inputs = [
        TensorSpec(name="word_ids", dtype="int64", shape=["batch", "time"]),
        TensorSpec(name="case_ids", dtype="int64", shape=["batch", "time"]),
        TensorSpec(name="char_ids", dtype="int64", shape=["batch", "time", "chars"]),
        TensorSpec(name="lengths", dtype="int64", shape=["batch"]),
    ]
    outputs = [TensorSpec(name="emissions", dtype="float32", shape=["batch", "time", len(vocab.tags)])]
    crf_json = model.crf.params().to_json(vocab.tags)
    emitter = model.emitter.eval()
    cfg = model.cfg
    return write_bundle(
        module=emitter,
        example_inputs=example,
        task=TASK,
        name=name,
        version=version,
        inputs=inputs,
        outputs=outputs,
        architecture={
            "name": "bilstm-crf",
            "summary": f"BiLSTM-CRF ({cfg.hidden}x2, {embeddings} + casing"
            + (" + char CNN)" if cfg.use_chars else ")"),
            **cfg.to_dict(),
            "crf": "linear-chain, start/end transitions; decoded by app.ner.crf_decode (numpy)",
            "exported": "network up to the emission scores; CRF scores in crf.json",
        },
        headline={
            "metric": "entity F1",
            "value": metrics[report_split]["overall"]["f1"],
            "split": report_split_name,
        },
        metrics={**metrics, "ablation": ablation},
        data=data_info,
        preprocessing=section(vocab, language, source_scheme),
        labels=vocab.tags,
        training=training,
        extra_files={
            "crf": ("crf.json", json.dumps(crf_json).encode()),
            "vocab": ("vocab.txt", "\n".join(vocab.words).encode("utf-8")),
            "chars": ("chars.json", json.dumps(vocab.chars, ensure_ascii=False).encode("utf-8")),
        },
        notes="Emissions from the exported network; tags by Viterbi over crf.json. Entity confidence is "
        "the CRF marginal probability of the whole tag span (forward-backward).",
        model_dir=model_dir,
        overwrite=True,
        revision=revision,
    )
