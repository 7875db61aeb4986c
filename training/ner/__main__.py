"""Train a BiLSTM-CRF tagger, select it on a dev file, report on a test file, export the bundle.

python -m training.ner                       # CoNLL-2003 preset: the shipped model + ablation
python -m training.ner --ablation-epochs 0   # shipped model only (ablation rows carried over)
python -m training.ner --train train.conll --dev dev.conll --test test.conll --name legal \\
    --language pt                            # your own column files -> models/legal/1.0.0
python -m training.ner ... --quick           # smoke run (~2 min): at most 2 epochs

Without --train the run is the CoNLL-2003 preset: eng.train/testa/testb under --data-dir,
`WORD POS CHUNK NER` lines in IOB1, GloVe 50d, bundle `models/ner`, README tables rewritten.
Both go through the same reader, training, evaluation and export. A bundle is only written when
it beats the newest bundle of that name on the same dev file (--force to override); every
written bundle gets a REPORT.md beside its manifest. A bad data file stops the run before
training with `FILE:LINE:COLUMN: message` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.bundle import BundleError, Manifest, read_manifest, resolve_bundle_dir
from app.ner.bundle import tokenizer_for, tokenizer_name
from training.bundle import DEFAULT_MODEL_DIR, ROOT, code_revision, replace_readme_section, update_readme
from training.logs import setup_logging
from training.ner.data import (
    CONLL2003,
    SCHEMES,
    TYPES,
    ColumnFormat,
    Sentence,
    batches,
    build_vocab,
    entity_types,
    file_provenance,
    iter_glove,
    read_splits,
    vector_key,
)
from training.ner.export import TASK, VERSION, export
from training.ner.train import RunConfig, evaluate, train_one
from training.report import REPORT_NAME, machine, table, write_report
from training.userdata import DataFileError, read_text

log = logging.getLogger("training.ner")
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ner" / "conll2003"
DEFAULT_GLOVE = ROOT.parent / "shared" / "data" / "embeddings" / "glove.6B.50d.top100k.txt.gz"
GLOVE_SOURCE = "GloVe 6B 50d (Pennington et al. 2014), top 100k words"
# Sentences posted per request when the test file goes through the served pipeline.
RAW_BATCH = 64


@dataclass(frozen=True)
class Run:
    """What a run trains on: its files by split, which split selects and which reports, and the
    bundle it writes. The CoNLL-2003 preset is one of these."""

    files: dict[str, Path]
    fmt: ColumnFormat
    dev: str
    test: str | None
    name: str
    language: str
    preset: bool

    def describe(self, split: str) -> str:
        return f"CoNLL-2003 eng.{split}" if self.preset else f"{self.files[split].name} ({split})"


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.ner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data (leave out --train for the CoNLL-2003 preset)")
    data.add_argument(
        "--train", type=Path, help="training file: one token a line, blank line between sentences"
    )
    data.add_argument(
        "--dev", type=Path, help="dev file (model selection, early stopping); needed with --train"
    )
    data.add_argument("--test", type=Path, help="test file, scored once at the end (optional)")
    data.add_argument("--token-column", type=int, default=0, help="field holding the token (0 = first)")
    data.add_argument("--tag-column", type=int, default=-1, help="field holding the tag (-1 = last)")
    data.add_argument(
        "--scheme", choices=["auto", *SCHEMES], default="auto", help="tag scheme of the files (auto: detect)"
    )
    data.add_argument(
        "--language", default="en", help="ISO code: raw text at /ner is tokenised with its rules"
    )
    data.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="CoNLL-2003 folder (preset)")
    out = p.add_argument_group("bundle")
    out.add_argument(
        "--name", help="model name: the bundle goes to MODEL_DIR/NAME/VERSION (needed with --train)"
    )
    out.add_argument("--version", help="bundle version (default: 1.0.0, or the newest one of NAME, replaced)")
    out.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="bundle root (models/)")
    out.add_argument(
        "--force", action="store_true", help="write the bundle even if it does not beat the one there"
    )
    out.add_argument(
        "--readme-section", help="also write the run's figures into README.md between <!-- NAME:start/end -->"
    )
    out.add_argument(
        "--readme-from",
        type=Path,
        metavar="BUNDLE_DIR",
        help="with --readme-section: take the figures from that bundle's REPORT.md, train nothing",
    )
    out.add_argument(
        "--readme-only", action="store_true", help="rewrite the preset's README section and stop"
    )
    vec = p.add_argument_group("word vectors")
    vec.add_argument(
        "--embeddings",
        choices=["glove", "word2vec", "none"],
        help="pre-trained GloVe (English), word2vec trained here on the training text (+ --unlabelled), "
        "or random; default glove for en, word2vec otherwise",
    )
    vec.add_argument("--glove", type=Path, default=DEFAULT_GLOVE, help="GloVe text file (.gz ok)")
    vec.add_argument("--glove-top", type=int, default=40000, help="most frequent GloVe words kept")
    vec.add_argument(
        "--unlabelled", type=Path, help="plain text (UTF-8) to train word2vec on besides the training file"
    )
    vec.add_argument("--vector-dim", type=int, default=100, help="word2vec vector size")
    vec.add_argument("--w2v-epochs", type=int, default=10, help="word2vec passes over its text")
    fit = p.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=40, help="most epochs")
    fit.add_argument("--max-minutes", type=float, default=60.0, help="time budget of the training loop")
    fit.add_argument(
        "--patience", type=int, default=5, help="early stop after this many epochs without a better dev F1"
    )
    fit.add_argument("--batch-size", type=int, default=32)
    fit.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (decays 1/(1+0.05 epoch))")
    fit.add_argument("--hidden", type=int, default=200, help="LSTM units per direction")
    fit.add_argument("--dropout", type=float, default=0.5)
    fit.add_argument(
        "--word-dropout",
        type=float,
        help="share of training words replaced by <unk> each step (default: 0.1; 0 for the preset, "
        "as the shipped model was trained)",
    )
    fit.add_argument(
        "--min-train-freq", type=int, default=2, help="training words without a vector, kept from"
    )
    fit.add_argument(
        "--ablation-epochs", type=int, help="epochs per ablation row; 0 skips it (default: 3 preset, 0)"
    )
    fit.add_argument("--ablation-minutes", type=float, default=16.0, help="total time for the ablation rows")
    fit.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU is shared)")
    fit.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (~2 min on LeNER-Br): at most 2 epochs and 1.5 min of training",
    )
    fit.add_argument("--seed", type=int, default=1)
    return p


def plan(args: argparse.Namespace, p: argparse.ArgumentParser) -> Run:
    if args.train is None:
        if args.dev or args.test:
            p.error("--dev/--test need --train (without it the run is the CoNLL-2003 preset)")
        files = {split: args.data_dir / f"eng.{split}" for split in ("train", "testa", "testb")}
        return Run(files, CONLL2003, "testa", "testb", args.name or TASK, "en", preset=True)
    if args.dev is None or not args.name:
        p.error("--train needs --dev and --name")
    files = {"train": args.train, "dev": args.dev} | ({"test": args.test} if args.test else {})
    fmt = ColumnFormat(args.token_column, args.tag_column, args.scheme)
    return Run(files, fmt, "dev", "test" if args.test else None, args.name, args.language, preset=False)


def check_language(language: str, p: argparse.ArgumentParser) -> None:
    import spacy

    try:
        spacy.blank(language)
    except Exception as exc:  # spaCy raises ImportError or its own errors for unknown codes
        p.error(f"--language {language!r}: spaCy has no rules for it ({exc})")


def read_unlabelled(path: Path, language: str) -> list[list[str]]:
    """Plain text for word2vec, one or more sentences a line, cut with the served tokenizer."""
    tokenize = tokenizer_for(language)
    return [
        [vector_key(t.text) for t in tokenize(line)] for line in read_text(path).splitlines() if line.strip()
    ]


def word2vec(
    corpus: list[list[str]], dim: int, epochs: int, seed: int, threads: int
) -> tuple[list[str], dict[str, np.ndarray], dict[str, Any]]:
    """Skip-gram vectors over `corpus` (vector keys), most frequent word first."""
    from gensim.models import Word2Vec

    started = time.monotonic()
    # Skip-gram is better than CBOW for the rare words a small corpus is made of.
    model = Word2Vec(
        sentences=corpus,
        vector_size=dim,
        window=5,
        min_count=2,
        sg=1,
        negative=5,
        epochs=epochs,
        workers=max(1, threads),
        seed=seed,
    )
    words = list(model.wv.index_to_key)
    vectors = {w: np.array(model.wv[w], dtype=np.float32) for w in words}  # gensim's are read-only
    info = {
        "method": "gensim word2vec skip-gram, window 5, min_count 2",
        "gensim": __import__("gensim").__version__,
        "dim": dim,
        "epochs": epochs,
        "corpus_tokens": sum(len(s) for s in corpus),
        "words": len(words),
        "seconds": round(time.monotonic() - started, 1),
    }
    return words, vectors, info


def existing_bundle(model_dir: Path, name: str) -> Manifest | None:
    try:
        return read_manifest(resolve_bundle_dir(model_dir, name))
    except BundleError:
        return None


def replace_verdict(
    old: Manifest | None, run: Run, dev_sha: str, new_f1: float, force: bool
) -> tuple[bool, str]:
    """Whether this run may write its bundle, and why: only over a bundle it beat on the same
    dev file (a figure on another file says nothing), unless forced."""
    if old is None:
        return True, "no bundle of that name yet"
    old_split = old.data.get("splits", {}).get(run.dev, {})
    try:
        old_f1 = float(old.metrics[run.dev]["overall"]["f1"])
    except (KeyError, TypeError, ValueError):
        old_f1 = None
    if force:
        return True, "--force"
    if old_split.get("sha256") != dev_sha or old_f1 is None:
        return (
            False,
            f"{run.name} {old.version} was selected on another dev file; pass --force or a new --name",
        )
    if new_f1 <= old_f1:
        return False, f"{run.name} {old.version} has {run.dev} F1 {old_f1:.2f} >= {new_f1:.2f}"
    return True, f"{run.dev} F1 {new_f1:.2f} > {old_f1:.2f} of {run.name} {old.version}"


def raw_versus_tokens(bundle_dir: Path, sentences: list[Sentence], language: str) -> dict[str, Any]:
    """The test sentences through the bundle's own serving pipeline, as raw text and as tokens;
    limits raised so that every sentence fits in one request item, as it does in the file."""
    from app.core.backends import load_backend
    from app.core.bundle import load_bundle
    from app.core.limits import InputLimits
    from app.ner.schemas import NerRequest
    from app.ner.task import NerTask
    from training.ner.rawtext import boundary_mismatches, score_through_api

    bundle = load_bundle(bundle_dir)
    task = NerTask(bundle, load_backend("onnx", bundle, "cpu"))
    longest = max(len(s.words) for s in sentences)
    chars = max(sum(len(w) + 1 for w in s.words) for s in sentences)
    limits = InputLimits(RAW_BATCH, chars, longest, 1)

    def post(body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = task.answer(NerRequest.model_validate(body), limits).model_dump()
        return answer

    bad, missed, which = boundary_mismatches(sentences, tokenizer_for(language))
    return {
        "tokenizer": tokenizer_name(language),
        "sentences": len(sentences),
        "sentences_cut_differently": bad,
        "gold_tokens": sum(len(s.words) for s in sentences),
        "gold_tokens_missed": missed,
        "top_missed": which.most_common(12),
        "tokens": score_through_api(post, sentences, "tokens", RAW_BATCH)["overall"],
        "texts": score_through_api(post, sentences, "texts", RAW_BATCH)["overall"],
    }


def per_type_table(metrics: dict[str, Any], run: Run) -> str:
    report = run.test or run.dev
    rows = []
    types = sorted(set(metrics[run.dev]["per_type"]) | set(metrics[report]["per_type"]))
    for t in [*types, "overall"]:
        r = metrics[report]["overall"] if t == "overall" else metrics[report]["per_type"].get(t)
        d = metrics[run.dev]["overall"] if t == "overall" else metrics[run.dev]["per_type"].get(t)
        name = "**overall**" if t == "overall" else t
        empty = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        r, d = r or empty, d or empty
        rows.append([name, r["precision"], r["recall"], r["f1"], d["f1"], r["support"]])
    return table(
        ["type", f"{report} P", f"{report} R", f"{report} F1", f"{run.dev} F1", f"{report} support"],
        rows,
        digits=2,
    )


def code(text: str) -> str:
    """`text` as Markdown code, also when it holds backticks (LeNER-Br's ``` `` ``` quotes)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def raw_table(raw: dict[str, Any]) -> str:
    n = raw["sentences"]
    top = ", ".join(f"{code(w)} ({c})" for w, c in raw["top_missed"]) or "none"
    return "\n".join(
        [
            f"Served tokenizer: {raw['tokenizer']}. Sentences it cuts differently from the file's "
            f"tokens: **{raw['sentences_cut_differently']:,} of {n:,}** "
            f"({100 * raw['sentences_cut_differently'] / n:.1f}%); gold tokens split or merged: "
            f"{raw['gold_tokens_missed']:,} of {raw['gold_tokens']:,} ({top}).",
            "",
            table(
                ["posted as", "entity P", "entity R", "entity F1"],
                [
                    [
                        "`tokens` (the file's own tokens)",
                        *(raw["tokens"][k] for k in ("precision", "recall", "f1")),
                    ],
                    [
                        "`texts` (detokenised raw text)",
                        *(raw["texts"][k] for k in ("precision", "recall", "f1")),
                    ],
                ],
                digits=2,
            ),
        ]
    )


def report_sections(
    run: Run,
    data: dict[str, list[Sentence]],
    data_info: dict[str, Any],
    training_info: dict[str, Any],
    metrics: dict[str, Any],
    info: dict[str, Any],
) -> list[tuple[str, str]]:
    splits = list(data)
    counts = {split: entity_types(data[split]) for split in splits}
    types = sorted(counts["train"])
    data_rows = [
        [
            split,
            run.files[split].name,
            len(data[split]),
            sum(len(s.words) for s in data[split]),
            sum(counts[split].values()),
        ]
        for split in splits
    ]
    dist_rows = [[t, *(counts[split][t] for split in splits)] for t in types]
    emb = data_info["embeddings"]
    options = [
        ["language / tokenizer", f"{run.language} / {tokenizer_name(run.language)}"],
        ["columns", f"token {run.fmt.token_column}, tag {run.fmt.tag_column}"],
        [
            "tag scheme",
            f"{data_info['scheme_in_files']} in the files (--scheme {run.fmt.scheme}), trained as BIOES",
        ],
        ["word vectors", emb["source"]],
        ["vocabulary words with a vector", f"{info['glove_hits']:,} of {training_info['vocab_words']:,}"],
        ["network", f"BiLSTM {info['config']['hidden']}x2 + char CNN + casing, CRF"],
        [
            "dropout / word dropout / lr / batch",
            f"{training_info['dropout']} / {training_info['word_dropout']} / {training_info['lr']} / "
            f"{training_info['batch_size']}",
        ],
        [
            "epochs",
            f"{info['epochs_run']} run (max {training_info['max_epochs']}), best {info['best_epoch']}; "
            f"stopped: {info['stopped']}",
        ],
        [
            "budget / patience / seed",
            f"{training_info['max_minutes']:g} min / {training_info['patience']} / {training_info['seed']}",
        ],
        ["quick", "yes: at most 2 epochs and 1.5 min of training" if training_info["quick"] else "no"],
    ]
    dev_key = f"{run.dev}_f1"
    curve = [[h["epoch"], h["loss"], h[dev_key], h["epoch_seconds"]] for h in info["history"]]
    sections = [
        (
            "Data",
            table(["split", "file", "sentences", "tokens", "entities"], data_rows)
            + "\n\nEntity types (entities per split):\n\n"
            + table(["type", *splits], dist_rows),
        ),
        ("Options", table(["option", "value"], options)),
        (
            f"{run.dev} F1 per epoch",
            table(["epoch", "train loss", f"{run.dev} F1", "seconds"], curve, digits=2)
            + f"\n\nSelected: epoch {info['best_epoch']} "
            f"({run.dev} F1 {metrics[run.dev]['overall']['f1']:.2f}).",
        ),
        (
            f"{'Test' if run.test else 'Dev'} per type (conlleval: exact span and type)",
            per_type_table(metrics, run),
        ),
    ]
    if "raw_text" in metrics:
        sections.append(
            (f"Raw text versus the file's tokens ({run.test or run.dev})", raw_table(metrics["raw_text"]))
        )
    sections.append(
        (
            "Time and machine",
            f"{training_info['total_minutes']} min in all ({info['train_minutes']} min training), "
            f"{training_info['threads']} torch thread(s); {training_info['machine']}; "
            f"code {training_info.get('code_revision', '')}; finished {training_info['finished']}.",
        )
    )
    return sections


# The parts of a run's REPORT.md that a README shows; the rest stays in the report.
README_PARTS = ("Test per type", "Dev per type", "Raw text", "Time")


def readme_markdown(report: Path) -> str:
    """A run's headline figures for a README section, cut from its REPORT.md (so they are the
    run's own): the title, the per-type table, raw text versus tokens, time and machine."""
    title, *parts = re.split(r"^## ", report.read_text(encoding="utf-8"), flags=re.M)
    kept = [f"##### {part.strip()}" for part in parts if part.startswith(README_PARTS)]
    return "\n\n".join([f"**{title.removeprefix('# ').strip()}**", *kept])


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.readme_from is not None:
        if not args.readme_section:
            p.error("--readme-from needs --readme-section")
        replace_readme_section(args.readme_section, readme_markdown(args.readme_from / REPORT_NAME))
        return 0
    if args.readme_only:
        m = read_manifest(resolve_bundle_dir(args.model_dir, TASK))
        update_readme(
            (TASK, markdown_tables(m.metrics, m.metrics.get("ablation", []), m.training)), args.model_dir
        )
        return 0
    run = plan(args, p)
    if args.word_dropout is None:
        # 0.1 raised LeNER-Br's dev F1 from 84.06 to 85.95 (training/reports/lener-br.md)
        args.word_dropout = 0.0 if run.preset else 0.1
    embeddings = args.embeddings or ("glove" if run.language == "en" else "word2vec")
    if embeddings == "glove" and run.language != "en":
        log.warning("GloVe 6B is English; for %r text it covers few words", run.language)
    check_language(run.language, p)
    if not logging.getLogger().handlers:
        log.info("progress log %s", setup_logging(TASK))
    log.info("args %s", vars(args))
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    revision = code_revision()  # the code this run imported, whatever is committed meanwhile
    try:
        data, scheme = read_splits(run.files, run.fmt, "train")
        unlabelled = read_unlabelled(args.unlabelled, run.language) if args.unlabelled else []
        if embeddings == "glove" and not args.glove.is_file():
            raise DataFileError(args.glove, "GloVe file not found (--glove, or --embeddings word2vec/none)")
    except DataFileError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train, dev = data["train"], data[run.dev]
    test = data[run.test] if run.test else None
    log.info("scheme %s; sentences %s", scheme, {k: len(v) for k, v in data.items()})

    vector_words: list[str] = []
    vectors: dict[str, np.ndarray] = {}
    top = args.glove_top
    if embeddings == "glove":
        emb_info: dict[str, Any] = {
            "file": args.glove.name,
            "source": GLOVE_SOURCE,
            "licence": "ODC PDDL 1.0",
        }
        for w, v in iter_glove(args.glove):
            vector_words.append(w)
            if len(vector_words) <= top:
                vectors[w] = v
        emb_info["words_used"] = top
        emb_label = "GloVe 50d"
    elif embeddings == "word2vec":
        corpus = [[vector_key(w) for w in s.words] for s in train] + unlabelled
        vector_words, vectors, w2v = word2vec(
            corpus, args.vector_dim, args.w2v_epochs, args.seed, args.threads
        )
        top = len(vector_words)
        text = "the training file" + (f" + {args.unlabelled.name}" if args.unlabelled else "")
        emb_info = {
            "source": f"word2vec {args.vector_dim}d trained on {text} ({w2v['corpus_tokens']:,} tokens)",
            **w2v,
        }
        emb_label = f"word2vec {args.vector_dim}d"
    else:
        emb_info = {"source": "none (random initialisation)"}
        emb_label = "random embeddings"
    vocab = build_vocab(train, vector_words, top, args.min_train_freq)
    vectors = {w: vectors[w] for w in vocab.words if w in vectors}
    log.info(
        "vocab %d words (%d with vectors), %d chars, %d tags",
        len(vocab.words),
        len(vectors),
        len(vocab.chars),
        len(vocab.tags),
    )
    dev_batches = batches(dev, vocab, 128, None)
    test_batches = batches(test, vocab, 128, None) if test is not None else []

    rc = RunConfig(
        "shipped" if run.preset else run.name,
        use_glove=embeddings != "none",
        dropout=args.dropout,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        lr=args.lr,
        batch_size=args.batch_size,
        hidden=args.hidden,
        seed=args.seed,
        patience=args.patience,
        word_dropout=args.word_dropout,
        dev_name=run.dev,
    )
    if args.quick:
        rc.epochs, rc.max_minutes = min(rc.epochs, 2), min(rc.max_minutes, 1.5)
    model, info = train_one(rc, vocab, vectors, train, dev, dev_batches)
    metrics: dict[str, Any] = {run.dev: evaluate(model, dev_batches, dev, vocab.tags)}
    if test is not None and run.test:
        metrics[run.test] = evaluate(model, test_batches, test, vocab.tags)
    log.info("F1 %s", {k: v["overall"]["f1"] for k, v in metrics.items()})

    data_info: dict[str, Any] = {
        "scheme_in_files": scheme,
        "columns": {"token": run.fmt.token_column, "tag": run.fmt.tag_column},
        "splits": {k: file_provenance(run.files[k], data[k]) for k in run.files},
        "selection_split": run.dev,
        "report_split": run.test or run.dev,
        "entity_types": dict(sorted(entity_types(train).items())),
        "embeddings": emb_info,
    }
    if run.preset:
        data_info = {
            "source": "CoNLL-2003 English NER shared task (Tjong Kim Sang & De Meulder, 2003), Reuters RCV1",
            "licence": "Reuters RCV1 text under the NIST/Reuters research agreement; annotations CoNLL-2003 "
            "(research use); not redistributable in this repo",
            **data_info,
        }
        data_info["embeddings"]["vocabulary_hits"] = info["glove_hits"]
    training_info: dict[str, Any] = {
        "optimizer": "Adam",
        "lr": args.lr,
        "lr_decay": "lr / (1 + 0.05 * (epoch - 1))",
        "batch_size": args.batch_size,
        "dropout": args.dropout,
        "word_dropout": args.word_dropout,
        "grad_clip_norm": 5.0,
        "max_epochs": rc.epochs,
        "max_minutes": args.max_minutes,
        "patience": args.patience,
        "seed": args.seed,
        "threads": args.threads,
        "quick": args.quick,
        "language": run.language,
        "vocab_words": len(vocab.words),
        "selection": f"epoch with the best {run.dev} F1",
        **{k: v for k, v in info.items() if k != "config"},
        "torch": torch.__version__,
        "machine": machine(),
    }

    old = existing_bundle(args.model_dir, run.name)
    dev_sha = str(data_info["splits"][run.dev]["sha256"])
    ok, why = replace_verdict(old, run, dev_sha, float(metrics[run.dev]["overall"]["f1"]), args.force)
    if not ok:
        log.warning("not writing a bundle: %s", why)
        return 0
    log.info("writing the bundle: %s", why)
    version = args.version or (old.version if old is not None else VERSION)
    carried_ablation = previous_ablation(args.model_dir) if run.preset else []
    sample = dev[:5]
    report_split = run.test or run.dev

    def write(model_dir: Path, ablation: list[dict[str, Any]]) -> Path:
        return export(
            model,
            vocab,
            metrics,
            data_info,
            training_info,
            ablation,
            model_dir,
            sample,
            name=run.name,
            version=version,
            language=run.language,
            source_scheme=scheme,
            report_split=report_split,
            report_split_name=run.describe(report_split),
            embeddings=emb_label,
            revision=revision,
        )

    # The raw-text figures need a servable bundle; a scratch one keeps the real one untouched
    # until every figure is in.
    with tempfile.TemporaryDirectory(prefix="ner-raw-") as scratch:
        metrics["raw_text"] = raw_versus_tokens(write(Path(scratch), []), test or dev, run.language)
    log.info(
        "raw text vs tokens %s",
        json.dumps({k: v for k, v in metrics["raw_text"].items() if k != "top_missed"}),
    )

    ablation: list[dict[str, Any]] = []
    ablation_epochs = args.ablation_epochs if args.ablation_epochs is not None else (3 if run.preset else 0)
    if ablation_epochs > 0:
        rows = [
            RunConfig("glove+chars+dropout", True, True, 0.5),
            RunConfig("random emb", False, True, 0.5),
            RunConfig("no chars", True, False, 0.5),
            RunConfig("no dropout", True, True, 0.0),
        ]
        per_row = args.ablation_minutes / len(rows)
        for arc in rows:
            arc.epochs, arc.max_minutes, arc.lr = ablation_epochs, per_row, args.lr
            arc.batch_size, arc.hidden, arc.seed, arc.dev_name = (
                args.batch_size,
                args.hidden,
                args.seed,
                run.dev,
            )
            if args.quick:
                arc.epochs, arc.train_fraction = 1, 0.1
            row_model, row_info = train_one(arc, vocab, vectors, train, dev, dev_batches)
            row: dict[str, Any] = {
                "variant": arc.name,
                "glove": arc.use_glove,
                "chars": arc.use_chars,
                "dropout": arc.dropout,
                "budget": "reduced",
                "epochs": row_info["epochs_run"],
                f"{run.dev}_f1": float(evaluate(row_model, dev_batches, dev, vocab.tags)["overall"]["f1"]),
            }
            if test is not None:
                row[f"{report_split}_f1"] = float(
                    evaluate(row_model, test_batches, test, vocab.tags)["overall"]["f1"]
                )
            ablation.append(row)
            log.info("ablation %s", row)
    elif run.preset:
        ablation.extend(carried_ablation)
        log.info("ablation skipped: %d rows carried over from the shipped bundle", len(carried_ablation))
    if ablation or run.preset:
        ablation.append(
            {
                "variant": "shipped",
                "glove": rc.use_glove,
                "chars": True,
                "dropout": args.dropout,
                "budget": "full",
                "epochs": info["epochs_run"],
                f"{run.dev}_f1": float(metrics[run.dev]["overall"]["f1"]),
                f"{report_split}_f1": float(metrics[report_split]["overall"]["f1"]),
            }
        )
    training_info["total_minutes"] = round((time.monotonic() - started) / 60, 1)
    training_info["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    bundle_dir = write(args.model_dir, ablation)
    training_info["code_revision"] = revision
    sections = report_sections(run, data, data_info, training_info, metrics, info)
    headline = metrics[report_split]["overall"]["f1"]
    title = f"NER model {run.name} {version}: {run.describe(report_split)} entity F1 {headline:.2f}"
    report = write_report(bundle_dir, title, sections)
    size = sum(f.stat().st_size for f in bundle_dir.iterdir())
    log.info("bundle written to %s (%.1f MB); report %s", bundle_dir, size / 1e6, report)
    if args.readme_section:
        replace_readme_section(args.readme_section, readme_markdown(report))
    if run.preset:
        section = markdown_tables(metrics, ablation, info)
        log.info("README section:\n%s", section)
        try:
            update_readme((TASK, section), model_dir=args.model_dir)
        except (OSError, ValueError) as exc:
            log.warning("README not updated (%s); re-run training.bundle.update_readme later", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
