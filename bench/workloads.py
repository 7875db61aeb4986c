"""Request inputs for the benchmark: real text and series from `../shared/data/` when it is there,
otherwise synthetic ones shaped like them, so the command works on any checkout.

Real sources (see `../shared/data/README.md`):
- `/sentiment` reviews: IMDB test reviews (`sentiment/imdb/test_{pos,neg}.jsonl.gz`), sampled
  uniformly with a fixed seed, `<br />` left in (the service strips it, as for any client);
- `/sentiment` short texts: the opening sentence(s) of other IMDB test reviews, 12-28 words;
- `/ner`: CoNLL-2003 `eng.testb` sentences of 12-16 tokens (mean 14), tokens joined by spaces;
- `/forecast`: windows of 60-500 points cut at random from the real series in `timeseries/`,
  each with a random horizon between 1 and the bundle's `horizon_max`.

Synthetic fallback (no data folder): reviews are sentences drawn from a movie-review phrase grammar
with word counts from a log-normal fitted to IMDB (median ~175, mean ~230 words), short texts are
one or two such sentences, NER sentences mix capitalised person/organisation/place names into
14-token newswire templates, and series are trend + one or two seasonalities + AR(1) noise.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 20260523


@dataclass
class Workload:
    """One kind of request: a pool of ready-to-send JSON bodies for one endpoint."""

    name: str
    endpoint: str  # "/sentiment", "/ner", "/forecast"
    model: str  # bundle / metrics label
    items_per_request: int
    bodies: list[bytes]
    # The raw per-item inputs (texts or series dicts) in pool order, for the in-process ceiling.
    raw_items: list[Any]
    source: str  # where the inputs came from, for the report
    concurrencies: tuple[int, ...] | None = None  # None: the run's default list
    stats: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- text

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")
_BR = re.compile(r"<br\s*/?>", re.I)


def _read_jsonl_gz(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def imdb_reviews(data_dir: Path) -> list[str] | None:
    folder = data_dir / "sentiment" / "imdb"
    files = [folder / "test_pos.jsonl.gz", folder / "test_neg.jsonl.gz"]
    if not all(f.is_file() for f in files):
        return None
    return [row["text"] for f in files for row in _read_jsonl_gz(f)]


def short_from_review(review: str) -> str | None:
    """The opening sentence(s) of a review, 12-28 words, or None when it has no such opening."""
    words: list[str] = []
    for sentence in _SENT_SPLIT.split(_BR.sub(" ", review).strip()):
        words.extend(sentence.split())
        if len(words) >= 12:
            break
    return " ".join(words) if 12 <= len(words) <= 28 else None


_SUBJECTS = [
    "The film",
    "This movie",
    "The director",
    "The lead actress",
    "The script",
    "The soundtrack",
    "The supporting cast",
    "The final act",
    "The cinematography",
    "The plot",
    "Every scene",
    "The dialogue",
    "The villain",
    "The opening sequence",
]
_VERBS = [
    "feels",
    "is",
    "looks",
    "seems",
    "turns out to be",
    "never becomes",
    "somehow remains",
    "ends up",
    "tries hard to be",
]
_ADJS = [
    "wonderful",
    "dull",
    "clever",
    "predictable",
    "moving",
    "painfully slow",
    "gorgeous",
    "confusing",
    "hilarious",
    "forgettable",
    "brilliant",
    "awkward",
    "charming",
    "pointless",
    "tense",
    "overlong",
]
_TAILS = [
    "and I would watch it again",
    "although the second half drags",
    "which surprised me more than I expected",
    "even if the ending is rushed",
    "and the actors clearly had fun",
    "but it never quite comes together",
    "so I cannot really recommend it",
    "and the music fits every mood",
    "despite a few silly moments",
    "though my friends disagreed",
]


def _synthetic_sentence(rng: random.Random) -> str:
    s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_ADJS)}"
    if rng.random() < 0.7:
        s += f", {rng.choice(_TAILS)}"
    return s + rng.choice([".", ".", ".", "!", "?"])


def synthetic_review(rng: random.Random) -> str:
    target = int(min(1200, max(30, rng.lognormvariate(5.16, 0.75))))  # median ~175 words
    sentences: list[str] = []
    n = 0
    while n < target:
        s = _synthetic_sentence(rng)
        sentences.append(s)
        n += len(s.split())
    return " ".join(sentences)


def synthetic_short(rng: random.Random) -> str:
    return " ".join(_synthetic_sentence(rng) for _ in range(2))


def sentiment_workloads(data_dir: Path, pool: int, multi: int) -> list[Workload]:
    rng = random.Random(SEED)
    reviews = imdb_reviews(data_dir)
    if reviews is not None:
        rng.shuffle(reviews)
        review_pool = reviews[:pool]
        shorts = [s for s in (short_from_review(r) for r in reviews[pool:]) if s is not None][:pool]
        src_r = "IMDB test reviews (uniform sample)"
        src_s = "opening sentences of IMDB test reviews (12-28 words)"
    else:
        review_pool = [synthetic_review(rng) for _ in range(pool)]
        shorts = [synthetic_short(rng) for _ in range(pool)]
        src_r = src_s = "synthetic (no ../shared/data)"
    out = [
        _text_workload("sentiment-review", "/sentiment", "sentiment", review_pool, src_r),
        _text_workload("sentiment-short", "/sentiment", "sentiment", shorts, src_s),
    ]
    if multi > 1:
        bodies = [
            json.dumps({"texts": [review_pool[(i + k) % pool] for k in range(multi)]}).encode()
            for i in range(0, pool, multi)
        ]
        out.append(
            Workload(
                f"sentiment-review-x{multi}",
                "/sentiment",
                "sentiment",
                multi,
                bodies,
                review_pool,
                f"{src_r}, {multi} per request",
                concurrencies=(4,),
            )
        )
    return out


def _text_workload(name: str, endpoint: str, model: str, texts: list[str], source: str) -> Workload:
    words = [len(t.split()) for t in texts]
    return Workload(
        name,
        endpoint,
        model,
        1,
        [json.dumps({"texts": [t]}).encode() for t in texts],
        texts,
        source,
        stats={"mean_words": sum(words) / len(words), "median_words": sorted(words)[len(words) // 2]},
    )


# ------------------------------------------------------------------------------------------------ NER


def conll_sentences(path: Path) -> list[list[str]]:
    sentences: list[list[str]] = []
    current: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if current:
                    sentences.append(current)
                current = []
            else:
                current.append(parts[0])
    if current:
        sentences.append(current)
    return sentences


_PEOPLE = ["Angela Merkel", "John Smith", "Maria Lopez", "Kofi Annan", "Yuki Tanaka", "Peter Blackburn"]
_ORGS = ["Reuters", "the European Commission", "Ford", "the United Nations", "Bayern Munich", "Siemens"]
_PLACES = ["Berlin", "Brazil", "New York", "Nairobi", "Tokyo", "the Netherlands", "Sydney"]


def synthetic_ner_sentence(rng: random.Random) -> str:
    templates = [
        "{p} told {o} on Monday that talks in {l} would resume next week .",
        "{o} shares rose 3 percent in {l} after {p} announced the deal .",
        "In {l} , {p} said {o} expected profits to fall this year .",
        "{p} of {o} arrived in {l} for a two-day visit on Tuesday .",
    ]
    return rng.choice(templates).format(p=rng.choice(_PEOPLE), o=rng.choice(_ORGS), l=rng.choice(_PLACES))


def ner_workload(data_dir: Path, pool: int) -> Workload:
    rng = random.Random(SEED + 1)
    path = data_dir / "ner" / "conll2003" / "eng.testb"
    if path.is_file():
        sents = [" ".join(s) for s in conll_sentences(path) if 12 <= len(s) <= 16]
        rng.shuffle(sents)
        texts = [sents[i % len(sents)] for i in range(pool)]
        source = "CoNLL-2003 eng.testb sentences of 12-16 tokens"
    else:
        texts = [synthetic_ner_sentence(rng) for _ in range(pool)]
        source = "synthetic newswire sentences (no ../shared/data)"
    return _text_workload("ner", "/ner", "ner", texts, source)


# ------------------------------------------------------------------------------------------- forecast

# file -> value column (and for the long-format stocks file, the symbol column).
_SERIES_FILES: dict[str, str] = {
    "co2_weekly_maunaloa.csv": "co2",
    "electricity_demand_england_wales_halfhourly.csv": "demand_mw",
    "elnino_sst_monthly.csv": "sst",
    "msft_daily_ohlcv.csv": "Close",
    "nile_yearly.csv": "volume",
    "seattle_weather_daily.csv": "temp_max",
    "sf_temps_hourly_2010.csv": "temp",
    "stocks_monthly_5symbols.csv": "price",
    "sunspots_monthly.csv": "sunspots",
    "sunspots_yearly.csv": "sunspots",
}


def real_series(data_dir: Path) -> list[list[float]]:
    folder = data_dir / "timeseries"
    out: list[list[float]] = []
    for name, column in _SERIES_FILES.items():
        path = folder / name
        if not path.is_file():
            continue
        groups: dict[str, list[float]] = {}
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                value = row.get(column, "")
                if value in ("", "NA", "nan"):
                    continue  # CO2 has missing weeks: the series is read without them
                groups.setdefault(row.get("symbol", ""), []).append(float(value))
        out.extend(groups.values())
    return out


def synthetic_series(rng: random.Random, n: int) -> list[float]:
    level, slope = rng.uniform(10, 1000), rng.uniform(-0.5, 0.5)
    periods = rng.sample([7, 12, 24, 48, 52], k=rng.choice([1, 2]))
    amps = [rng.uniform(0.05, 0.3) * level for _ in periods]
    noise, values = 0.0, []
    for t in range(n):
        noise = 0.7 * noise + rng.gauss(0, 0.03 * level)
        season = sum(a * math.sin(2 * math.pi * t / p) for a, p in zip(amps, periods, strict=True))
        values.append(round(level + slope * t + season + noise, 4))
    return values


def forecast_workload(data_dir: Path, pool: int, horizon_max: int, min_len: int = 60) -> Workload:
    rng = random.Random(SEED + 2)
    series = [s for s in real_series(data_dir) if len(s) >= min_len]
    items: list[dict[str, Any]] = []
    for _ in range(pool):
        length = rng.randint(min_len, 500)
        if series:
            candidates = [s for s in series if len(s) >= length] or [max(series, key=len)]
            s = rng.choice(candidates)
            length = min(length, len(s))
            start = rng.randint(0, len(s) - length)
            values = s[start : start + length]
        else:
            values = synthetic_series(rng, length)
        items.append({"values": values, "horizon": rng.randint(1, horizon_max)})
    lengths = [len(it["values"]) for it in items]
    return Workload(
        "forecast",
        "/forecast",
        "forecast",
        1,
        [json.dumps({"series": [it]}).encode() for it in items],
        items,
        "windows of 60-500 points from the real series in timeseries/"
        if series
        else "synthetic trend+seasonal+AR(1) series (no ../shared/data)",
        stats={"mean_points": sum(lengths) / len(lengths), "horizon_max": horizon_max},
    )


def horizon_max_of(model_dir: Path) -> int:
    """The forecast bundle's horizon_max, read from its manifest without loading the model."""
    from app.core.bundle import read_manifest, resolve_bundle_dir

    manifest = read_manifest(resolve_bundle_dir(model_dir, "forecast"))
    return int(manifest.preprocessing["horizon_max"])


def build_workloads(
    data_dir: Path, model_dir: Path, models: list[str], pool: int, multi: int
) -> list[Workload]:
    out: list[Workload] = []
    if "sentiment" in models:
        out.extend(sentiment_workloads(data_dir, pool, multi))
    if "ner" in models:
        out.append(ner_workload(data_dir, pool))
    if "forecast" in models:
        out.append(forecast_workload(data_dir, pool, horizon_max_of(model_dir)))
    return out
