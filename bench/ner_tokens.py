"""How well the serving tokenizer reproduces CoNLL-2003's tokens, and what that costs in F1.

`python -m bench.ner_tokens` detokenises every eng.testb sentence into the plain text a user would
post (`detokenise`), then
  1. tokenises it with spaCy's default English rules and with the NER rules
     (`app.core.text.tokenize_conll`) and counts sentences and tokens whose boundaries differ
     from the file's own tokens;
  2. posts the same sentences to the shipped NER model twice, through the service's own app,
     once pre-tokenised (`tokens`) and once as raw text (`texts`), and scores both answers
     against the gold entities by character span (conlleval rules: exact span and type).
The results go into the README between `<!-- ner-raw:start -->` and `<!-- ner-raw:end -->`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.core.text import Token, tokenize, tokenize_conll
from app.ner.tags import iob1_spans
from training.bundle import replace_readme_section
from training.ner.conlleval import score_spans
from training.ner.data import Sentence, read_conll

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ner" / "conll2003" / "eng.testb"
CharSpan = tuple[int, int, str]

# Penn-Treebank-style glue: no space before closing punctuation and clitics, none after openers.
_NO_SPACE_BEFORE = frozenset(
    {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "''", "...", "'s", "'S", "n't", "N'T"}
    | {"'re", "'ve", "'ll", "'d", "'m", "'RE", "'VE", "'LL", "'D", "'M"}
)
_NO_SPACE_AFTER = frozenset({"(", "[", "{", "$", "``"})


def detokenise(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The sentence as running text, and each word's [start, end) in it. Straight double quotes
    alternate between opening (glued to the next word) and closing (glued to the previous)."""
    parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    pos, glue_next, quote_open = 0, True, False
    for word in words:
        glue = glue_next or word in _NO_SPACE_BEFORE
        glue_next = word in _NO_SPACE_AFTER
        if word == '"':
            glue = glue or quote_open
            glue_next = not quote_open
            quote_open = not quote_open
        if not glue:
            parts.append(" ")
            pos += 1
        parts.append(word)
        offsets.append((pos, pos + len(word)))
        pos += len(word)
    return "".join(parts), offsets


def boundary_mismatches(
    sentences: Sequence[Sentence], tokenizer: Callable[[str], list[Token]]
) -> tuple[int, int, Counter[str]]:
    """(sentences whose tokens differ, gold tokens whose boundaries the tokenizer misses, the
    missed gold tokens by text)."""
    bad_sentences, missed = 0, Counter[str]()
    for s in sentences:
        text, offsets = detokenise(s.words)
        got = {(t.start, t.end) for t in tokenizer(text)}
        lost = [text[a:b] for a, b in offsets if (a, b) not in got]
        bad_sentences += bool(lost) or len(got) != len(offsets)
        missed.update(lost)
    return bad_sentences, sum(missed.values()), missed


def gold_char_spans(s: Sentence, offsets: Sequence[tuple[int, int]]) -> list[CharSpan]:
    return [(offsets[a][0], offsets[b - 1][1], label) for a, b, label in iob1_spans(s.tags)]


def _space_joined(words: Sequence[str]) -> list[tuple[int, int]]:
    offsets, pos = [], 0
    for w in words:
        offsets.append((pos, pos + len(w)))
        pos += len(w) + 1
    return offsets


def score_through_api(client: Any, sentences: Sequence[Sentence], how: str, batch: int) -> dict[str, Any]:
    """Entity P/R/F1 of the service's answers, by character span. `how`: "tokens" posts CoNLL's
    own tokens (spans in the tokens joined by single spaces), "texts" posts the detokenised text,
    "spacy" posts the detokenised text cut by spaCy's default rules as `tokens` (what the service
    did before it had CoNLL rules) and maps the answer back onto the text."""
    gold: list[list[CharSpan]] = []
    predicted: list[list[CharSpan]] = []
    for i in range(0, len(sentences), batch):
        chunk = sentences[i : i + batch]
        docs = [detokenise(s.words) for s in chunk]
        if how == "texts":
            body: dict[str, Any] = {"texts": [text for text, _ in docs]}
        elif how == "spacy":
            cut = [tokenize(text) for text, _ in docs]
            body = {"tokens": [[t.text for t in toks] for toks in cut]}
        else:
            body = {"tokens": [s.words for s in chunk]}
            docs = [(" ".join(s.words), _space_joined(s.words)) for s in chunk]
        response = client.post("/ner", json=body)
        response.raise_for_status()
        for j, (s, (_, offsets), result) in enumerate(
            zip(chunk, docs, response.json()["results"], strict=True)
        ):
            gold.append(gold_char_spans(s, offsets))
            spans = [(e["start"], e["end"], e["label"]) for e in result["entities"]]
            if how == "spacy":  # offsets into the space-joined tokens -> offsets into the text
                joined = _space_joined([t.text for t in cut[j]])
                back = {a: t.start for (a, _), t in zip(joined, cut[j], strict=True)}
                back |= {b: t.end for (_, b), t in zip(joined, cut[j], strict=True)}
                spans = [(back[a], back[b], label) for a, b, label in spans]
            predicted.append(spans)
    return score_spans(gold, predicted)["overall"]  # type: ignore[return-value]


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
        report["f1"] = {
            how: score_through_api(client, sentences, how, batch) for how in ("tokens", "texts", "spacy")
        }
    print(json.dumps(report["f1"], indent=1), file=sys.stderr)
    section = markdown(report)
    print(section)
    if not args.no_readme:
        replace_readme_section("ner-raw", section, args.readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
