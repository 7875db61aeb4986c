"""What a text-classifier run found, said once and written three ways: the manifest's metrics,
data and training sections, REPORT.md beside the bundle, and the README summary. Every figure
comes from the run itself."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.bundle import ROOT
from training.report import fmt, machine, table, write_report
from training.sentiment.dataset import Dataset
from training.sentiment.train import Config

# Published figures a run on a known benchmark is set beside (test accuracy, in %).
PUBLISHED = {
    "sst5": "published test accuracy (root level): LSTM 46.4, BiLSTM 49.1, Tree-LSTM 51.0 "
    "(Tai et al., ACL 2015); CNN-non-static 48.0 (Kim, EMNLP 2014)",
}


@dataclass
class Facts:
    args: argparse.Namespace
    data: Dataset
    cfg: Config
    vocab_size: int
    lengths: dict[str, Any]
    truncated: dict[str, int]
    embedding: dict[str, Any]
    choice: str
    ablation: list[dict[str, Any]]
    ablation_budget: str
    result: dict[str, Any]
    test: dict[str, Any] | None
    baselines: list[dict[str, Any]]
    version: str
    minutes: float

    @property
    def final_split(self) -> str:
        return "test" if self.test is not None else "dev"

    def final(self) -> dict[str, Any]:
        return self.test if self.test is not None else self.result["val"]

    def headline(self) -> dict[str, Any]:
        final = self.final()
        split = (
            f"{self.data.name} test ({final['n']:,})"
            if self.test is not None
            else f"{self.data.name} dev ({final['n']:,}; no test file)"
        )
        return {"metric": "accuracy", "value": final["accuracy"], "split": split}

    def counts(self) -> dict[str, int]:
        out = {"train": len(self.data.train), "dev": len(self.data.dev)}
        if self.data.test is not None:
            out["test"] = len(self.data.test)
        if self.data.unlabelled:
            out["unlabelled"] = len(self.data.unlabelled)
        return out

    def verdict(self) -> str:
        """Whether the LSTM beats each baseline on the final split, in words, both metrics."""
        split = self.final_split
        mine = self.final()
        parts = []
        for b in self.baselines:
            theirs = b[split]
            acc = mine["accuracy"] - theirs["accuracy"]
            f1 = mine["macro_f1"] - theirs["macro_f1"]
            if acc > 0 and f1 > 0:
                word = "beats"
            elif acc <= 0 and f1 <= 0:
                word = "does NOT beat"
            else:
                word = "is mixed against"
            parts.append(
                f"the LSTM {word} {b['name']} on {split} (accuracy {acc * 100:+.1f} points, "
                f"macro-F1 {f1 * 100:+.1f} points)"
            )
        text = "; ".join(parts) + "."
        if self.test is None:
            text += " No test file was given: there is no test figure, and dev also chose the model."
        return text[0].upper() + text[1:]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.args.name,
            "version": self.version,
            "labels": self.data.labels,
            "dev": _short(self.result["val"]),
            "test": _short(self.test) if self.test is not None else None,
            "baselines": {
                b["name"]: {k: _short(b[k]) for k in ("dev", "test") if k in b} for b in self.baselines
            },
            "embedding": self.cfg.embedding,
            "minutes": self.minutes,
        }

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.test is not None:
            out["test"] = self.test
        out["validation"] = dict(self.result["val"])
        out["training_curve"] = self.result["history"]
        out["ablation"] = {
            "budget": self.ablation_budget,
            "selection": f"validation {self.cfg.select}",
            "rows": self.ablation,
        }
        out["baselines"] = self.baselines
        out["verdict"] = self.verdict()
        return out

    def data_section(self) -> dict[str, Any]:
        return {
            **self.data.source,
            "name": self.data.name,
            "language": self.args.language,
            "counts": self.counts(),
            "label_distribution": self.data.distribution(),
            "validation_split": self.data.dev_origin,
            "token_lengths_train": self.lengths,
            "truncated": self.truncated,
            "embedding": self.embedding,
            **(
                {"glove_licence": "GloVe 6B: ODC PDDL 1.0 (Pennington et al., 2014)"}
                if self.cfg.embedding == "glove50"
                else {}
            ),
        }

    def training_section(self) -> dict[str, Any]:
        return {
            "config": self.result["config"],
            "choice": self.choice,
            "class_weights": self.cfg.class_weights,
            "epoch_seconds": self.result["epoch_seconds"],
            "train_minutes": self.result["minutes"],
            "total_minutes": self.minutes,
            "quick": bool(self.args.quick),
            "machine": machine(),
        }


def _short(m: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if m is None else {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}


def _figures_table(f: Facts) -> str:
    rows = [["LSTM (this bundle)", f.result["val"]["accuracy"], f.result["val"]["macro_f1"]]]
    rows[0] += [f.test["accuracy"], f.test["macro_f1"]] if f.test is not None else ["", ""]
    for b in f.baselines:
        row = [b["name"], b["dev"]["accuracy"], b["dev"]["macro_f1"]]
        row += [b["test"]["accuracy"], b["test"]["macro_f1"]] if "test" in b else ["", ""]
        rows.append(row)
    return table(["model", "dev accuracy", "dev macro-F1", "test accuracy", "test macro-F1"], rows)


def _per_class(m: dict[str, Any]) -> str:
    rows = [
        [label, v["precision"], v["recall"], v["f1"], v["support"]] for label, v in m["per_class"].items()
    ]
    rows.append(["**macro**", "", "", m["macro_f1"], m["n"]])
    return table(["label", "precision", "recall", "F1", "support"], rows)


def _confusion(m: dict[str, Any]) -> str:
    labels = m["labels"]
    rows = [[f"**{label}**", *row] for label, row in zip(labels, m["confusion_matrix"], strict=True)]
    return "Rows: true label; columns: predicted.\n\n" + table(["", *labels], rows)


def _config_line(f: Facts) -> str:
    c = f.cfg
    return (
        f"{c.layers}-layer bi-{c.cell.upper()} ({c.hidden}/direction), {c.head} head, "
        f"{f.embedding['source']} {f.embedding['dim']}d embedding, max_length {c.max_length} (head+tail), "
        f"vocabulary {f.vocab_size:,}{' (vectors frozen)' if c.freeze_embedding else ''}, "
        f"class weights {'on' if c.class_weights else 'off'}, seed {c.seed}"
    )


def sections(f: Facts) -> list[tuple[str, str]]:
    a = f.args
    dist = f.data.distribution()
    splits = list(dist)
    dist_rows = [[label, *(dist[s][label] for s in splits)] for label in f.data.labels]
    dist_rows.append(["**total**", *(sum(dist[s].values()) for s in splits)])
    files = f.data.source.get("files") or {}
    data_lines = [f"- {k}: `{v}`" for k, v in files.items()] or [
        f"- {f.data.source.get('source', f.data.name)}"
    ]
    data_lines += [
        f"- dev: {f.data.dev_origin}",
        f"- language: `{a.language}` (spaCy `spacy.blank({a.language!r})` tokenizer, lower-cased)",
        f"- tokens per training text: {', '.join(f'{k} {v}' for k, v in f.lengths.items())}; "
        f"texts cut to max_length: {', '.join(f'{k} {v:,}' for k, v in f.truncated.items())}",
    ]
    if f.data.unlabelled:
        data_lines.append(f"- unlabelled texts for word2vec: {len(f.data.unlabelled):,}")
    emb = f.embedding
    emb_line = (
        f"Word vectors: **{emb['source']}** ({emb['dim']}d, "
        f"vocabulary coverage {emb['vocab_coverage']:.1%}); "
        f"candidates {', '.join(emb['candidates'])}. Embedding, cell and head: {f.choice}."
    )
    if emb.get("words_from_vectors_file"):
        emb_line += (
            f" {emb['words_from_vectors_file']:,} words of the vectors file that no training text has "
            "joined the vocabulary (--vectors-vocab)."
        )
    if emb.get("word2vec_training"):
        w = emb["word2vec_training"]
        emb_line += f" word2vec: {w.get('corpus')}, {w.get('epochs')} epoch(s), {w.get('words'):,} words."
    tried = "No choice on dev in this run."
    if f.ablation:
        rows = [
            [
                r["embedding"],
                r["cell"],
                r["head"],
                r["val_accuracy"],
                r["val_macro_f1"],
                f"{r['minutes']:.1f}",
            ]
            for r in sorted(f.ablation, key=lambda r: -r[f"val_{f.cfg.select}"])
        ]
        tried = f"Budget per run: {f.ablation_budget}.\n\n" + table(
            ["embedding", "cell", "head", "dev accuracy", "dev macro-F1", "minutes"], rows
        )
    curve = table(
        ["epoch", "train loss", "dev accuracy", "dev macro-F1", "minutes"],
        [
            [
                f"{p['epoch']:.2f}",
                p["train_loss"],
                p["val_accuracy"],
                p.get("val_macro_f1", ""),
                f"{p['minutes']:.1f}",
            ]
            for p in f.result["history"]
        ],
    )
    best = f.result["val"]
    curve += (
        f"\n\nKept: the weights of epoch {best['epoch']} (best dev {f.cfg.select}); early stopping after "
        f"{f.cfg.patience} dev checks without improvement, at most {f.cfg.epochs} epochs and "
        f"{f.cfg.max_minutes:g} minutes."
    )
    if f.test is not None:
        test = f"{_per_class(f.test)}\n\n{_confusion(f.test)}"
    else:
        test = (
            "**No test file was given, so there is no test figure.** Dev (which chose the model, so "
            f"its figures are optimistic):\n\n{_per_class(best)}\n\n{_confusion(best)}"
        )
    tfidf = next(b for b in f.baselines if b["name"].startswith("TF-IDF"))
    baselines = (
        f"Figures in the summary above. TF-IDF: {tfidf['features']}; C = {tfidf['C']:g} chosen on "
        f"{tfidf['selection']} from {[g['C'] for g in tfidf['grid']]}; class weights "
        f"{tfidf['class_weight'] or 'none'}. Majority class: always `{f.baselines[0]['predicts']}`."
    )
    if f.data.name in PUBLISHED:
        baselines += f"\n\nFor reference, {PUBLISHED[f.data.name]}."
    timing = (
        f"{f.minutes:.1f} min in all (final training {f.result['minutes']:.1f} min, epochs "
        f"{', '.join(f'{s:.0f}' for s in f.result['epoch_seconds'])} s); {machine()}; "
        f"torch threads {a.threads}{'; --quick run' if a.quick else ''}."
    )
    return [
        ("Summary", f"{_config_line(f)}.\n\n{_figures_table(f)}\n\n{f.verdict()}"),
        (
            "Data",
            "\n".join(data_lines)
            + "\n\nLabels, in the bundle's order:\n\n"
            + table(["label", *splits], dist_rows),
        ),
        ("Options tried", f"{emb_line}\n\n{tried}"),
        ("Dev curve", curve),
        ("Test" if f.test is not None else "Test (none)", test),
        ("Baselines (same split)", baselines),
        ("Time and machine", timing),
    ]


def write(bundle: Path, f: Facts) -> Path:
    title = f"{f.args.name} {f.version}: text classifier on {f.data.name} ({len(f.data.labels)} labels)"
    return write_report(bundle, title, sections(f))


def readme_markdown(f: Facts, report: Path | None) -> str:
    """The README's summary of a run: the figures table, the verdict and how the run was made."""
    where = ""
    if report is not None:
        shown = report.relative_to(ROOT) if report.is_relative_to(ROOT) else report
        where = f" Full report: `{shown}`."
    extra = f"\n\nFor reference, {PUBLISHED[f.data.name]}." if f.data.name in PUBLISHED else ""
    return (
        f"`{f.args.name}` {f.version} on {f.data.name} ({len(f.data.labels)} labels; "
        f"{', '.join(f'{k} {v:,}' for k, v in f.counts().items())}): {_config_line(f)}; "
        f"embedding, cell and head {f.choice}. {f.minutes:.1f} min on {machine()}.{where}\n\n"
        f"{_figures_table(f)}\n\n{f.verdict()}{extra}"
    )


__all__ = ["Facts", "fmt", "readme_markdown", "sections", "write"]
