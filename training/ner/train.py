"""Train, select on eng.testa, report on eng.testb, export the bundle, update the README."""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.bundle import TensorSpec, read_manifest, resolve_bundle_dir
from app.core.text import CONLL_TOKENIZER_NAME
from app.core.vocab import PAD, UNK
from app.ner.bundle import CasingFeature, NerSection
from app.ner.crf_decode import viterbi
from app.ner.features import CASE_DEFINITION, CASES, MAX_WORD_CHARS, encode_batch
from app.ner.tags import bioes_spans, bioes_tagset, iob1_spans, iob1_to_bioes
from training.bundle import DEFAULT_MODEL_DIR, ROOT, shipped_metric, update_readme, write_bundle
from training.ner.conlleval import score_spans
from training.ner.data import Sentence, file_provenance, iter_glove, read_conll
from training.ner.model import ModelConfig, Tagger

TASK = "ner"
VERSION = "1.0.0"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ner" / "conll2003"
DEFAULT_GLOVE = ROOT.parent / "shared" / "data" / "embeddings" / "glove.6B.50d.top100k.txt.gz"
TYPES = ["LOC", "MISC", "ORG", "PER"]
TAGS = bioes_tagset(TYPES)
INPUT_NAMES = ("word_ids", "case_ids", "char_ids", "lengths")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class Vocab:
    words: list[str]
    chars: list[str]

    def word_index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def char_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}


def build_vocab(train: list[Sentence], glove_words: list[str], glove_top: int, min_train_freq: int) -> Vocab:
    """Top GloVe words (they cover dev/test words the training set never saw) plus frequent
    training words GloVe lacks; only training data decides what enters, never testa/testb."""
    from app.ner.features import word_key

    counts = Counter(word_key(w) for s in train for w in s.words)
    words = [PAD, UNK]
    seen = set(words)
    for w in glove_words[:glove_top]:
        if w not in seen:
            words.append(w)
            seen.add(w)
    for w, n in counts.most_common():
        if n >= min_train_freq and w not in seen:
            words.append(w)
            seen.add(w)
    char_counts = Counter(ch for s in train for w in s.words for ch in w)
    chars = [PAD, UNK, *sorted(ch for ch, n in char_counts.items() if n >= 2)]
    return Vocab(words, chars)


def batches(
    sentences: Sequence[Sentence], vocab: Vocab, batch_size: int, shuffle_seed: int | None
) -> list[tuple[dict[str, torch.Tensor], torch.Tensor, list[int]]]:
    """Length-bucketed batches (padding stays small), encoded once. Returns feeds, BIOES tag ids
    and the sentence indices of each batch."""
    rng = random.Random(shuffle_seed)
    order = sorted(range(len(sentences)), key=lambda i: (len(sentences[i].words), rng.random()))
    tag_index = {t: i for i, t in enumerate(TAGS)}
    words, chars = vocab.word_index(), vocab.char_index()
    out = []
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        feeds = encode_batch([sentences[i].words for i in idx], words, chars)
        tags = np.zeros(feeds["word_ids"].shape, dtype=np.int64)
        for b, i in enumerate(idx):
            bioes = iob1_to_bioes(sentences[i].tags)
            tags[b, : len(bioes)] = [tag_index[t] for t in bioes]
        out.append(({k2: torch.from_numpy(v) for k2, v in feeds.items()}, torch.from_numpy(tags), idx))
    return out


def predict_spans(model: Tagger, data: list[Any], n: int) -> list[list[tuple[int, int, str]]]:
    """Decode with the serving decoder (numpy Viterbi), so reported scores are the served ones."""
    model.eval()
    crf = model.crf.params()
    spans: list[list[tuple[int, int, str]]] = [[] for _ in range(n)]
    with torch.inference_mode():
        for feeds, _, idx in data:
            em = model.emitter(feeds["word_ids"], feeds["case_ids"], feeds["char_ids"], feeds["lengths"])
            paths = viterbi(em.numpy(), feeds["lengths"].numpy(), crf)
            for i, path in zip(idx, paths, strict=True):
                spans[i] = bioes_spans([TAGS[t] for t in path])
    return spans


def evaluate(model: Tagger, data: list[Any], sentences: list[Sentence]) -> dict[str, Any]:
    gold = [iob1_spans(s.tags) for s in sentences]
    return score_spans(gold, predict_spans(model, data, len(sentences)))


@dataclass
class RunConfig:
    name: str
    use_glove: bool = True
    use_chars: bool = True
    dropout: float = 0.5
    epochs: int = 30
    max_minutes: float = 1e9
    lr: float = 2e-3
    batch_size: int = 32
    hidden: int = 200
    train_fraction: float = 1.0
    seed: int = 1


def train_one(
    rc: RunConfig,
    vocab: Vocab,
    glove: dict[str, np.ndarray],
    train: list[Sentence],
    dev: list[Sentence],
    dev_batches: list[Any],
) -> tuple[Tagger, dict[str, Any]]:
    torch.manual_seed(rc.seed)
    random.seed(rc.seed)
    subset = train if rc.train_fraction >= 1 else random.sample(train, int(len(train) * rc.train_fraction))
    train_batches = batches(subset, vocab, rc.batch_size, rc.seed)
    cfg = ModelConfig(
        vocab_size=len(vocab.words),
        num_chars=len(vocab.chars),
        num_cases=len(CASES),
        num_tags=len(TAGS),
        hidden=rc.hidden,
        dropout=rc.dropout,
        use_chars=rc.use_chars,
    )
    model = Tagger(cfg)
    hits = 0
    if rc.use_glove:
        with torch.no_grad():
            weight = model.emitter.word_emb.weight
            # GloVe's scale (std ~0.4) with random init of the same scale for the rest
            weight.normal_(0.0, 0.4)
            for i, w in enumerate(vocab.words):
                vec = glove.get(w)
                if vec is not None:
                    weight[i] = torch.from_numpy(vec)
                    hits += 1
            weight[0].zero_()
    optimizer = torch.optim.Adam(model.parameters(), lr=rc.lr)
    best_f1, best_state, best_epoch = -1.0, copy.deepcopy(model.state_dict()), 0
    history = []
    started = time.monotonic()
    rng = random.Random(rc.seed)
    for epoch in range(1, rc.epochs + 1):
        for g in optimizer.param_groups:
            g["lr"] = rc.lr / (1 + 0.05 * (epoch - 1))
        model.train()
        t0 = time.monotonic()
        rng.shuffle(train_batches)
        total = 0.0
        for feeds, tags, _ in train_batches:
            optimizer.zero_grad()
            loss = model.loss(feeds, tags)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            total += float(loss)
        epoch_s = time.monotonic() - t0
        dev_score = evaluate(model, dev_batches, dev)
        f1 = float(dev_score["overall"]["f1"])
        history.append(
            {
                "epoch": epoch,
                "loss": round(total / len(train_batches), 4),
                "testa_f1": f1,
                "epoch_seconds": round(epoch_s, 1),
            }
        )
        log(
            f"[{rc.name}] epoch {epoch} loss {total / len(train_batches):.4f} testa F1 {f1:.2f} "
            f"({epoch_s:.0f}s train, {time.monotonic() - t0 - epoch_s:.0f}s eval)"
        )
        if f1 > best_f1:
            best_f1, best_state, best_epoch = f1, copy.deepcopy(model.state_dict()), epoch
        elapsed = (time.monotonic() - started) / 60
        per_epoch = elapsed / epoch
        if elapsed + per_epoch > rc.max_minutes:
            log(f"[{rc.name}] stopping after epoch {epoch}: time budget {rc.max_minutes:.0f} min")
            break
    model.load_state_dict(best_state)
    model.eval()
    info = {
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "testa_f1_best": best_f1,
        "train_minutes": round((time.monotonic() - started) / 60, 1),
        "glove_hits": hits,
        "history": history,
        "config": cfg.to_dict(),
    }
    return model, info


def markdown_tables(metrics: dict[str, Any], ablation: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = ["#### Named entities (BiLSTM-CRF, CoNLL-2003)", ""]
    lines.append(
        "Entity-level micro P/R/F1 (exact span and type, `conlleval` rules), model selected on "
        f"eng.testa (best of {info['epochs_run']} epochs: epoch {info['best_epoch']})."
    )
    lines.append("")
    lines.append("| type | testb P | testb R | testb F1 | testa F1 | testb support |")
    lines.append("|---|---|---|---|---|---|")
    a, b = metrics["testa"], metrics["testb"]
    for t in [*TYPES, "overall"]:
        rb = b["overall"] if t == "overall" else b["per_type"][t]
        ra = a["overall"] if t == "overall" else a["per_type"][t]
        name = "**overall**" if t == "overall" else t
        lines.append(
            f"| {name} | {rb['precision']:.2f} | {rb['recall']:.2f} | {rb['f1']:.2f} | "
            f"{ra['f1']:.2f} | {rb['support']} |"
        )
    if ablation:
        lines += [
            "",
            "Ablation (testa F1 / testb F1). Rows marked *reduced* each had a fixed wall-clock "
            "budget on a shared CPU, so their epoch counts differ (see the epochs column): read them as "
            "early-training signals, not as converged results, and not against the shipped row.",
            "",
            "| variant | GloVe | chars | dropout | budget | epochs | testa F1 | testb F1 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in ablation:
            glove = "yes" if r["glove"] else "random"
            chars = "CNN" if r["chars"] else "no"
            lines.append(
                f"| {r['variant']} | {glove} | {chars} | {r['dropout']} | {r['budget']} | "
                f"{r['epochs']} | {r['testa_f1']:.2f} | {r['testb_f1']:.2f} |"
            )
        earlier = sorted({r["from_run"] for r in ablation if "from_run" in r})
        if earlier:
            lines += [
                "",
                f"Reduced rows come from an earlier run of this script (finished {', '.join(earlier)}), "
                "carried over because the shipped run skipped the ablation (`--ablation-epochs 0`).",
            ]
    return "\n".join(lines)


def previous_ablation(model_dir: Path) -> list[dict[str, Any]]:
    """The reduced-budget ablation rows of the shipped bundle, so a run that skips the ablation
    (`--ablation-epochs 0`) still ships the table, marked as coming from that earlier run."""
    try:
        m = read_manifest(resolve_bundle_dir(model_dir, TASK))
    except Exception:
        return []
    rows = [r for r in m.metrics.get("ablation", []) if r.get("budget") == "reduced"]
    return [{**r, "from_run": r.get("from_run", m.created_at)} for r in rows]


def export(
    model: Tagger,
    vocab: Vocab,
    metrics: dict[str, Any],
    data_info: dict[str, Any],
    training: dict[str, Any],
    ablation: list[dict[str, Any]],
    model_dir: Path,
    sample: list[Sentence],
) -> Path:
    feeds = encode_batch([s.words for s in sample], vocab.word_index(), vocab.char_index())
    example = tuple(torch.from_numpy(feeds[k]) for k in INPUT_NAMES)
    inputs = [
        TensorSpec(name="word_ids", dtype="int64", shape=["batch", "time"]),
        TensorSpec(name="case_ids", dtype="int64", shape=["batch", "time"]),
        TensorSpec(name="char_ids", dtype="int64", shape=["batch", "time", "chars"]),
        TensorSpec(name="lengths", dtype="int64", shape=["batch"]),
    ]
    outputs = [TensorSpec(name="emissions", dtype="float32", shape=["batch", "time", len(TAGS)])]
    crf_json = model.crf.params().to_json(TAGS)
    emitter = model.emitter.eval()
    cfg = model.cfg
    return write_bundle(
        module=emitter,
        example_inputs=example,
        task=TASK,
        version=VERSION,
        inputs=inputs,
        outputs=outputs,
        architecture={
            "name": "bilstm-crf",
            "summary": f"BiLSTM-CRF ({cfg.hidden}x2, GloVe 50d + casing + char CNN)",
            **cfg.to_dict(),
            "crf": "linear-chain, start/end transitions; decoded by app.ner.crf_decode (numpy)",
            "exported": "network up to the emission scores; CRF scores in crf.json",
        },
        headline={
            "metric": "entity F1",
            "value": metrics["testb"]["overall"]["f1"],
            "split": "CoNLL-2003 eng.testb",
        },
        metrics={**metrics, "ablation": ablation},
        data=data_info,
        preprocessing=NerSection(
            tokenizer=CONLL_TOKENIZER_NAME,
            lowercase=True,
            vocab_artifact="vocab",
            vocab_size=len(vocab.words),
            pad_id=vocab.words.index(PAD),
            unk_id=vocab.words.index(UNK),
            scheme="BIOES",
            source_scheme="IOB1",
            digits_fallback="a word missing from the vocabulary is looked up again with digits -> 0",
            casing_feature=CasingFeature(values=CASES, definition=CASE_DEFINITION),
            chars_artifact="chars",
            char_vocab_size=len(vocab.chars),
            max_word_chars=MAX_WORD_CHARS,
            long_word_rule=f"words longer than {MAX_WORD_CHARS} chars keep their first and last "
            f"{MAX_WORD_CHARS // 2}",
        ),
        labels=TAGS,
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
    )


def check_export(bundle_dir: Path, model: Tagger, vocab: Vocab, sample: list[Sentence]) -> None:
    """The exported network must reproduce eager emissions for a padded batch."""
    import onnxruntime as ort

    feeds = encode_batch([s.words for s in sample], vocab.word_index(), vocab.char_index())
    with torch.inference_mode():
        eager = model.emitter(*(torch.from_numpy(feeds[k]) for k in INPUT_NAMES))
    sess = ort.InferenceSession(str(bundle_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = sess.run(["emissions"], feeds)[0]
    ts = torch.jit.load(str(bundle_dir / "model.pt"))
    with torch.inference_mode():
        ts_out = ts(*(torch.from_numpy(feeds[k]) for k in INPUT_NAMES))
    mask = np.arange(feeds["word_ids"].shape[1])[None, :] < feeds["lengths"][:, None]
    for name, out in (("onnx", onnx_out), ("torchscript", ts_out.numpy())):
        diff = float(np.abs(out - eager.numpy())[mask].max())
        log(f"export check {name}: max |diff| vs eager = {diff:.2e}")
        if diff > 1e-4:
            raise RuntimeError(f"{name} emissions differ from eager by {diff}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.ner", description=__doc__)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder with eng.train/testa/testb")
    p.add_argument("--glove", type=Path, default=DEFAULT_GLOVE, help="GloVe 6B 50d text file (.gz ok)")
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="bundle root (models/)")
    p.add_argument("--epochs", type=int, default=40, help="max epochs of the shipped model")
    p.add_argument("--max-minutes", type=float, default=60.0, help="time budget of the shipped model")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (decays 1/(1+0.05 epoch))")
    p.add_argument("--hidden", type=int, default=200, help="LSTM units per direction")
    p.add_argument("--glove-top", type=int, default=40000, help="most frequent GloVe words kept")
    p.add_argument("--min-train-freq", type=int, default=2, help="training words GloVe lacks, kept from")
    p.add_argument("--ablation-epochs", type=int, default=3, help="epochs per ablation row; 0 skips it")
    p.add_argument("--ablation-minutes", type=float, default=16.0, help="total time for the ablation rows")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU is shared)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 5%% of train, 1 epoch per run; writes no bundle unless --force",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--force", action="store_true", help="overwrite the shipped bundle even if not better")
    p.add_argument(
        "--readme-only", action="store_true", help="rewrite the README section from the shipped manifest"
    )
    args = p.parse_args(argv)
    if args.readme_only:
        m = read_manifest(resolve_bundle_dir(args.model_dir, TASK))
        update_readme(
            (TASK, markdown_tables(m.metrics, m.metrics.get("ablation", []), m.training)), args.model_dir
        )
        return 0

    torch.set_num_threads(args.threads)
    started = time.monotonic()
    files = {split: args.data_dir / f"eng.{split}" for split in ("train", "testa", "testb")}
    data = {split: read_conll(path) for split, path in files.items()}
    train, dev, test = data["train"], data["testa"], data["testb"]
    log(f"sentences: train {len(train)}, testa {len(dev)}, testb {len(test)}")
    glove_words: list[str] = []
    glove: dict[str, np.ndarray] = {}
    for w, v in iter_glove(args.glove):
        glove_words.append(w)
        if len(glove_words) <= args.glove_top:
            glove[w] = v
    vocab = build_vocab(train, glove_words, args.glove_top, args.min_train_freq)
    log(f"vocab {len(vocab.words)} words, {len(vocab.chars)} chars")
    dev_batches = batches(dev, vocab, 128, None)
    test_batches = batches(test, vocab, 128, None)

    main_rc = RunConfig(
        "shipped",
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        lr=args.lr,
        batch_size=args.batch_size,
        hidden=args.hidden,
        seed=args.seed,
    )
    if args.quick:
        main_rc.epochs, main_rc.train_fraction = 1, 0.05
    model, info = train_one(main_rc, vocab, glove, train, dev, dev_batches)
    metrics = {"testa": evaluate(model, dev_batches, dev), "testb": evaluate(model, test_batches, test)}
    log(
        f"shipped model: testa F1 {metrics['testa']['overall']['f1']:.2f}, "
        f"testb F1 {metrics['testb']['overall']['f1']:.2f}"
    )
    log(json.dumps(metrics))

    data_info = {
        "source": "CoNLL-2003 English NER shared task (Tjong Kim Sang & De Meulder, 2003), Reuters RCV1",
        "licence": "Reuters RCV1 text under the NIST/Reuters research agreement; annotations CoNLL-2003 "
        "(research use); not redistributable in this repo",
        "scheme_in_files": "IOB1",
        "splits": {k: file_provenance(files[k], data[k]) for k in files},
        "selection_split": "testa",
        "report_split": "testb",
        "embeddings": {
            "file": args.glove.name,
            "source": "GloVe 6B 50d (Pennington et al. 2014), top 100k words",
            "licence": "ODC PDDL 1.0",
            "words_used": args.glove_top,
            "vocabulary_hits": info["glove_hits"],
        },
    }
    training_info: dict[str, Any] = {
        "optimizer": "Adam",
        "lr": args.lr,
        "lr_decay": "lr / (1 + 0.05 * (epoch - 1))",
        "batch_size": args.batch_size,
        "grad_clip_norm": 5.0,
        "max_epochs": main_rc.epochs,
        "max_minutes": args.max_minutes,
        "seed": args.seed,
        "threads": args.threads,
        "selection": "epoch with the best testa F1",
        **{k: v for k, v in info.items() if k != "config"},
        "torch": torch.__version__,
    }

    shipped = shipped_metric(TASK, "testa", "overall", "f1", model_dir=args.model_dir)
    new_f1 = float(metrics["testa"]["overall"]["f1"])
    if args.quick and not args.force:
        log("quick mode: not writing a bundle (pass --force to write one anyway)")
        return 0
    if shipped is not None and new_f1 <= shipped and not args.force:
        log(f"shipped bundle has testa F1 {shipped:.2f} >= {new_f1:.2f}: keeping it (use --force)")
        return 0
    carried_ablation = previous_ablation(args.model_dir)  # read before this run overwrites it
    sample = dev[:5]
    ablation: list[dict[str, Any]] = []
    bundle_dir = export(model, vocab, metrics, data_info, training_info, ablation, args.model_dir, sample)
    check_export(bundle_dir, model, vocab, sample)
    log(f"bundle written to {bundle_dir} (before ablation)")

    if args.ablation_epochs > 0:
        rows = [
            RunConfig("glove+chars+dropout", True, True, 0.5),
            RunConfig("random emb", False, True, 0.5),
            RunConfig("no chars", True, False, 0.5),
            RunConfig("no dropout", True, True, 0.0),
        ]
        per_row = args.ablation_minutes / len(rows)
        for rc in rows:
            rc.epochs, rc.max_minutes, rc.lr = args.ablation_epochs, per_row, args.lr
            rc.batch_size, rc.hidden, rc.seed = args.batch_size, args.hidden, args.seed
            if args.quick:
                rc.epochs, rc.train_fraction = 1, 0.05
            m, i = train_one(rc, vocab, glove, train, dev, dev_batches)
            ablation.append(
                {
                    "variant": rc.name,
                    "glove": rc.use_glove,
                    "chars": rc.use_chars,
                    "dropout": rc.dropout,
                    "budget": "reduced",
                    "epochs": i["epochs_run"],
                    "testa_f1": float(evaluate(m, dev_batches, dev)["overall"]["f1"]),
                    "testb_f1": float(evaluate(m, test_batches, test)["overall"]["f1"]),
                }
            )
            log(f"ablation {ablation[-1]}")
    else:
        ablation.extend(carried_ablation)
        log(f"ablation skipped: {len(carried_ablation)} rows carried over from the shipped bundle")
    ablation.append(
        {
            "variant": "shipped",
            "glove": True,
            "chars": True,
            "dropout": 0.5,
            "budget": "full",
            "epochs": info["epochs_run"],
            "testa_f1": float(metrics["testa"]["overall"]["f1"]),
            "testb_f1": float(metrics["testb"]["overall"]["f1"]),
        }
    )
    training_info["total_minutes"] = round((time.monotonic() - started) / 60, 1)
    bundle_dir = export(model, vocab, metrics, data_info, training_info, ablation, args.model_dir, sample)
    check_export(bundle_dir, model, vocab, sample)
    size = sum(f.stat().st_size for f in bundle_dir.iterdir())
    log(f"bundle written to {bundle_dir} ({size / 1e6:.1f} MB)")
    table = markdown_tables(metrics, ablation, info)
    print(table, flush=True)
    if args.model_dir.resolve() != DEFAULT_MODEL_DIR.resolve():
        log(f"bundle written outside {DEFAULT_MODEL_DIR}: README left alone")
        return 0
    try:
        update_readme((TASK, table), model_dir=args.model_dir)
    except (OSError, ValueError) as exc:
        log(f"WARNING: README not updated ({exc}); re-run training.bundle.update_readme later")
    return 0


if __name__ == "__main__":
    sys.exit(main())
