"""Train, select on eng.testa, report on eng.testb, export the bundle, update the README.

python -m training.ner                       # shipped model + reduced-budget ablation
python -m training.ner --ablation-epochs 0   # shipped model only (ablation rows carried over)
python -m training.ner --quick               # smoke run, writes no bundle unless --force
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.bundle import read_manifest, resolve_bundle_dir
from training.bundle import DEFAULT_MODEL_DIR, ROOT, shipped_metric, update_readme
from training.logs import setup_logging
from training.ner.data import TYPES, batches, build_vocab, file_provenance, iter_glove, read_conll
from training.ner.export import TASK, export
from training.ner.train import RunConfig, evaluate, train_one

log = logging.getLogger("training.ner")
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ner" / "conll2003"
DEFAULT_GLOVE = ROOT.parent / "shared" / "data" / "embeddings" / "glove.6B.50d.top100k.txt.gz"


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

    log.info("args %s; progress log %s", vars(args), setup_logging(TASK))
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    files = {split: args.data_dir / f"eng.{split}" for split in ("train", "testa", "testb")}
    data = {split: read_conll(path) for split, path in files.items()}
    train, dev, test = data["train"], data["testa"], data["testb"]
    log.info("sentences: train %d, testa %d, testb %d", len(train), len(dev), len(test))
    glove_words: list[str] = []
    glove: dict[str, np.ndarray] = {}
    for w, v in iter_glove(args.glove):
        glove_words.append(w)
        if len(glove_words) <= args.glove_top:
            glove[w] = v
    vocab = build_vocab(train, glove_words, args.glove_top, args.min_train_freq)
    log.info("vocab %d words, %d chars", len(vocab.words), len(vocab.chars))
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
    log.info(
        "shipped model: testa F1 %.2f, testb F1 %.2f",
        metrics["testa"]["overall"]["f1"],
        metrics["testb"]["overall"]["f1"],
    )
    log.info("metrics %s", json.dumps(metrics))

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
        log.info("quick mode: not writing a bundle (pass --force to write one anyway)")
        return 0
    if shipped is not None and new_f1 <= shipped and not args.force:
        log.warning("shipped bundle has testa F1 %.2f >= %.2f: keeping it (use --force)", shipped, new_f1)
        return 0
    carried_ablation = previous_ablation(args.model_dir)  # read before this run overwrites it
    sample = dev[:5]
    ablation: list[dict[str, Any]] = []
    bundle_dir = export(model, vocab, metrics, data_info, training_info, ablation, args.model_dir, sample)
    log.info("bundle written to %s (before ablation)", bundle_dir)

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
            row_model, row_info = train_one(rc, vocab, glove, train, dev, dev_batches)
            ablation.append(
                {
                    "variant": rc.name,
                    "glove": rc.use_glove,
                    "chars": rc.use_chars,
                    "dropout": rc.dropout,
                    "budget": "reduced",
                    "epochs": row_info["epochs_run"],
                    "testa_f1": float(evaluate(row_model, dev_batches, dev)["overall"]["f1"]),
                    "testb_f1": float(evaluate(row_model, test_batches, test)["overall"]["f1"]),
                }
            )
            log.info("ablation %s", ablation[-1])
    else:
        ablation.extend(carried_ablation)
        log.info("ablation skipped: %d rows carried over from the shipped bundle", len(carried_ablation))
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
    size = sum(f.stat().st_size for f in bundle_dir.iterdir())
    log.info("bundle written to %s (%.1f MB)", bundle_dir, size / 1e6)
    table = markdown_tables(metrics, ablation, info)
    log.info("README section:\n%s", table)
    if args.model_dir.resolve() != DEFAULT_MODEL_DIR.resolve():
        log.info("bundle written outside %s: README left alone", DEFAULT_MODEL_DIR)
        return 0
    try:
        update_readme((TASK, table), model_dir=args.model_dir)
    except (OSError, ValueError) as exc:
        log.warning("README not updated (%s); re-run training.bundle.update_readme later", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
