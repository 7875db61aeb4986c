"""How well the serving tokenizer reproduces CoNLL-2003's tokens, and what that costs in F1.

`python -m bench.ner_tokens` detokenises every eng.testb sentence into the plain text a user would
post (`detokenise`), then
  1. tokenises it with spaCy's default English rules and with the NER rules
     (`app.core.text.tokenize_conll`) and counts sentences and tokens whose boundaries differ
     from the file's own tokens;
  2. posts the same sentences to the shipped NER model twice, through the service's own app,
     once pre-tokenised (`tokens`) and once as raw text (`texts`), and scores both answers
     against the gold entities by character span (conlleval rules: exact span and type).
The measuring code is `training.ner.rawtext`, which every training run also uses for its report.
The results go into the README between `<!-- ner-raw:start -->` and `<!-- ner-raw:end -->`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from app.core.text import tokenize, tokenize_conll
from training.bundle import replace_readme_section
from training.ner.data import read_conll

# The measuring code is shared with each training run's report (training.ner.rawtext).
from training.ner.rawtext import boundary_mismatches, detokenise, score_through_api

__all__ = ["boundary_mismatches", "detokenise", "main", "markdown", "score_through_api"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ner" / "conll2003" / "eng.testb"


def _prf(scores: dict[str, float], bold: bool = False) -> str:
    f1 = f"**{scores['f1']:.2f}**" if bold else f"{scores['f1']:.2f}"
    return f"{scores['precision']:.2f} | {scores['recall']:.2f} | {f1}"


def markdown(report: dict[str, Any]) -> str:
    tok = report["tokenizer"]
    raw, pre, old = report["f1"]["texts"], report["f1"]["tokens"], report["f1"]["spacy"]
    top = ", ".join(f"`{w}` ({n})" for w, n in tok["conll"]["top_missed"][:12]) or "none"
    lines = [
        "#### Raw text versus CoNLL's tokens",
        "",
        f"Written by `python -m bench.ner_tokens` ({report['when']}, model {report['model']}): every "
        f"eng.testb sentence ({report['sentences']:,}) detokenised into plain text, tokenised by the "
        "service and posted to `/ner` as `texts`, beside the same sentences posted pre-tokenised "
        "as `tokens`; entities scored by exact character span and type.",
        "",
        "| tokenizer | sentences tokenised differently from CoNLL | gold tokens split or merged |",
        "|---|--:|--:|",
    ]
    for key, name in (("spacy", "spaCy English defaults"), ("conll", "served (`tokenize_conll`)")):
        t = tok[key]
        lines.append(
            f"| {name} | {t['sentences']:,} ({100 * t['sentences'] / report['sentences']:.1f}%) "
            f"| {t['tokens']:,} of {tok['gold_tokens']:,} |"
        )
    lines += [
        "",
        "| posted as | entity P | entity R | entity F1 |",
        "|---|--:|--:|--:|",
        f"| `tokens` (CoNLL's own tokens) | {_prf(pre, bold=True)} |",
        f"| `texts` (detokenised raw text) | {_prf(raw, bold=True)} |",
        f"| raw text cut by spaCy's default rules (the service before its CoNLL rules) | {_prf(old)} |",
        "",
        f"Gold tokens the served tokenizer still splits differently: {top}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CoNLL-2003 file (eng.testb)")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--no-readme", action="store_true", help="print only")
    args = parser.parse_args(argv)

    from fastapi.testclient import TestClient

    from app.core.settings import Settings
    from app.main import create_app

    sentences = read_conll(args.data)
    report: dict[str, Any] = {
        "sentences": len(sentences),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "tokenizer": {"gold_tokens": sum(len(s.words) for s in sentences)},
    }
    for key, tokenizer in (("spacy", tokenize), ("conll", tokenize_conll)):
        bad, missed, which = boundary_mismatches(sentences, tokenizer)
        report["tokenizer"][key] = {"sentences": bad, "tokens": missed, "top_missed": which.most_common(20)}
        print(f"{key}: {bad} sentences differ, {missed} gold tokens missed", file=sys.stderr)

    settings = Settings(model_dir=args.model_dir, models="ner", log_level="warning")
    with TestClient(create_app(settings)) as client:
        version = next(m for m in client.get("/models").json()["models"] if m["name"] == "ner")["manifest"][
            "version"
        ]
        report["model"] = f"ner {version}"
        batch = settings.max_items_per_request

        def post(body: dict[str, Any]) -> dict[str, Any]:
            response = client.post("/ner", json=body)
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

        report["f1"] = {
            how: score_through_api(post, sentences, how, batch)["overall"]
            for how in ("tokens", "texts", "spacy")
        }
    print(json.dumps(report["f1"], indent=1), file=sys.stderr)
    section = markdown(report)
    print(section)
    if not args.no_readme:
        replace_readme_section("ner-raw", section, args.readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
