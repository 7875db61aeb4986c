"""`python -m bench.tokenizer_check`: the cached tokenizer (`app.core.text.tokenize`) against
spaCy's own output on the whole IMDB test set (25,000 reviews, `<br />` removed as the service
does): every token, every offset and so every id the sentiment model gets must be identical.
Then the path the service takes (`Preprocessor.prepare_text`, ids cached per whitespace run)
against `prepare` of spaCy's tokens, with the shipped sentiment bundle: same ids, tokens, counts.
Also times them, cold (empty cache) and warm. Needs ../shared/data; exits 1 on any difference."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from app.core import text
from app.core.text import clean_html_breaks, tokenize, tokenize_uncached

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tokenizer_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--model-dir", type=Path, default=REPO / "models")
    args = p.parse_args(argv)
    from training.sentiment.data import read_split

    reviews = [clean_html_breaks(r.text) for r in read_split(args.data_dir / "sentiment" / "imdb", "test")]
    text._RUNS.clear()
    mismatches, cold, spacy_s = 0, 0.0, 0.0
    for review in reviews:
        t0 = time.perf_counter()
        mine = tokenize(review)
        t1 = time.perf_counter()
        reference = tokenize_uncached(review)
        spacy_s += time.perf_counter() - t1
        cold += t1 - t0
        if mine != reference:
            mismatches += 1
            if mismatches <= 5:
                first = next(
                    (a, b) for a, b in zip([*mine, None], [*reference, None], strict=False) if a != b
                )
                print(f"difference: {first}")
    t0 = time.perf_counter()
    for review in reviews:
        tokenize(review)
    warm = time.perf_counter() - t0
    n = len(reviews)
    print(
        f"{n:,} IMDB test reviews: {mismatches} differ from spaCy's tokens. Per review: spaCy "
        f"{spacy_s / n * 1000:.2f} ms, cached tokenizer {cold / n * 1000:.2f} ms on first sight "
        f"(cache filling), {warm / n * 1000:.2f} ms on the second pass ({len(text._RUNS):,} runs kept)"
    )
    return 1 if mismatches or _check_prepare_text(reviews, args.model_dir) else 0


def _check_prepare_text(reviews: list[str], model_dir: Path) -> int:
    from app.core.bundle import load_bundle, resolve_bundle_dir
    from app.sentiment.preprocess import Preprocessor

    preprocessor = Preprocessor(load_bundle(resolve_bundle_dir(model_dir, "sentiment"), required=()))
    mismatches, cold, reference_s = 0, 0.0, 0.0
    for review in reviews:
        t0 = time.perf_counter()
        mine = preprocessor.prepare_text(review)
        t1 = time.perf_counter()
        reference = preprocessor.prepare(tokenize_uncached(review))
        reference_s += time.perf_counter() - t1
        cold += t1 - t0
        same = (mine.ids.tolist(), mine.tokens, mine.n_tokens, mine.truncated) == (
            reference.ids.tolist(),
            reference.tokens,
            reference.n_tokens,
            reference.truncated,
        )
        if not same:
            mismatches += 1
            if mismatches <= 5:
                print(f"prepare_text differs on: {review[:200]!r}")
    t0 = time.perf_counter()
    for review in reviews:
        preprocessor.prepare_text(review)
    warm = time.perf_counter() - t0
    n = len(reviews)
    print(
        f"prepare_text (the served path, ids cached per run) vs prepare(spaCy's tokens): {mismatches} of "
        f"{n:,} reviews differ. Per review: spaCy + prepare {reference_s / n * 1000:.2f} ms, "
        f"prepare_text {cold / n * 1000:.2f} ms on first sight, {warm / n * 1000:.2f} ms on the second pass"
    )
    return mismatches


if __name__ == "__main__":
    sys.exit(main())
