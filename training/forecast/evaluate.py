"""Held-out evaluation: the model and the baselines on the same rolling origins of every series."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.forecast import baselines
from training.forecast.data import Split
from training.forecast.export import interval_levels
from training.forecast.model import Forecaster, pad_batch

# history windows -> list of [horizon, n_quantiles] arrays (raw scale)
QuantileFn = Callable[[list[np.ndarray], int], list[np.ndarray]]


@dataclass(frozen=True)
class Case:
    split: Split
    origin: int

    @property
    def history(self) -> np.ndarray:
        return self.split.series.values[: self.origin]

    @property
    def actual(self) -> np.ndarray:
        s = self.split.series
        return s.values[self.origin : self.origin + s.horizon]


def cases(splits: Sequence[Split], which: str) -> list[Case]:
    return [Case(sp, o) for sp in splits for o in (sp.test_origins if which == "test" else sp.val_origins)]


def direct_quantiles(model: Forecaster, max_window: int) -> QuantileFn:
    def run(histories: list[np.ndarray], horizon: int) -> list[np.ndarray]:
        values, lengths = pad_batch([h[-max_window:] for h in histories])
        with torch.no_grad():
            out = model(values, lengths)[:, :horizon].numpy().astype(np.float64)
        return list(out)

    return run


def recursive_quantiles(model: Forecaster, max_window: int) -> QuantileFn:
    """One-step model fed its own median back; only the median path is meaningful, so the
    returned 'quantiles' repeat it (intervals are not evaluated for this strategy)."""

    def run(histories: list[np.ndarray], horizon: int) -> list[np.ndarray]:
        hist = [np.asarray(h, np.float64) for h in histories]
        paths: list[list[float]] = [[] for _ in hist]
        median_idx = model.quantiles.index(0.5)
        for _ in range(horizon):
            values, lengths = pad_batch([h[-max_window:] for h in hist])
            with torch.no_grad():
                step = model(values, lengths)[:, 0, median_idx].numpy().astype(np.float64)
            for i, v in enumerate(step):
                paths[i].append(float(v))
                hist[i] = np.append(hist[i], v)
        return [np.repeat(np.asarray(p)[:, None], model.n_quantiles, axis=1) for p in paths]

    return run


def model_forecasts(fn: QuantileFn, all_cases: Sequence[Case], horizon_max: int) -> list[np.ndarray]:
    out = fn([c.history for c in all_cases], horizon_max)
    return [q[: c.split.series.horizon] for q, c in zip(out, all_cases, strict=True)]


def mean_mase(all_cases: Sequence[Case], forecasts: Sequence[np.ndarray]) -> float:
    """Mean over series of the mean over that series' origins (every series weighs the same)."""
    per: dict[str, list[float]] = {}
    for c, f in zip(all_cases, forecasts, strict=True):
        per.setdefault(c.split.series.name, []).append(
            baselines.mase(c.actual, f, c.history, c.split.series.m)
        )
    return float(np.mean([np.mean(v) for v in per.values()]))


def full_table(
    all_cases: Sequence[Case], quantiles: Sequence[np.ndarray], levels: Sequence[float]
) -> dict[str, object]:
    """Per-series MASE/sMAPE for the model (median) and baselines, interval coverage, means."""
    lv = list(levels)
    median_idx = lv.index(0.5)
    intervals = {name: (lv.index(lo), lv.index(hi)) for name, (lo, hi) in interval_levels(lv).items()}
    rows: dict[str, dict[str, list[float]]] = {}
    meta: dict[str, dict[str, object]] = {}
    for c, q in zip(all_cases, quantiles, strict=True):
        s = c.split.series
        fc = {
            "lstm": q[:, median_idx],
            "naive": baselines.naive(c.history, s.horizon),
            "seasonal_naive": baselines.seasonal_naive(c.history, s.horizon, s.m),
            "ets": baselines.ets(c.history, s.horizon, s.m),
        }
        r = rows.setdefault(s.name, {})
        for k, f in fc.items():
            r.setdefault(f"mase_{k}", []).append(baselines.mase(c.actual, f, c.history, s.m))
            r.setdefault(f"smape_{k}", []).append(baselines.smape(c.actual, f))
        for name, (lo, hi) in intervals.items():
            inside = (c.actual >= q[:, lo]) & (c.actual <= q[:, hi])
            r.setdefault(f"coverage_{name}", []).extend(inside.astype(float).tolist())
        meta[s.name] = {
            "frequency": s.frequency,
            "m": s.m,
            "horizon": s.horizon,
            "origins": c.split.n_origins,
        }
    per_series = [
        {"series": name, **meta[name], **{k: round(float(np.mean(v)), 4) for k, v in r.items()}}
        for name, r in rows.items()
    ]
    keys = [k for k in per_series[0] if k.startswith(("mase_", "smape_", "coverage_"))]
    means = {k: round(float(np.mean([p[k] for p in per_series])), 4) for k in keys}  # type: ignore[arg-type]
    beats_ets = sum(p["mase_lstm"] < p["mase_ets"] for p in per_series)  # type: ignore[operator]
    beats_snaive = sum(p["mase_lstm"] < p["mase_seasonal_naive"] for p in per_series)  # type: ignore[operator]
    return {
        "mean": means,
        "series_beating_ets": f"{beats_ets}/{len(per_series)}",
        "series_beating_seasonal_naive": f"{beats_snaive}/{len(per_series)}",
        "per_series": per_series,
    }


def markdown_table(table: dict[str, object], levels: Sequence[float]) -> str:
    per = table["per_series"]
    assert isinstance(per, list)
    cov = [k for k in per[0] if k.startswith("coverage_")]
    head = (
        "| series | freq | m | H | origins | MASE LSTM | naive | s-naive | ETS "
        "| sMAPE LSTM | naive | s-naive | ETS | " + " | ".join(f"cover {k[9:]}%" for k in cov) + " |"
    )
    lines = [head, "|" + "---|" * (13 + len(cov))]
    fmt = [
        "mase_lstm",
        "mase_naive",
        "mase_seasonal_naive",
        "mase_ets",
        "smape_lstm",
        "smape_naive",
        "smape_seasonal_naive",
        "smape_ets",
        *cov,
    ]

    def cell(key: str, value: object) -> str:
        x = float(value)  # type: ignore[arg-type]
        if key.startswith("mase"):
            return f"{x:.3f}"
        return f"{x:.1f}" if key.startswith("smape") else f"{100 * x:.0f}%"

    def cells(row: dict[str, object]) -> str:
        return " | ".join(cell(k, row[k]) for k in fmt)

    for row in per:
        meta = f"{row['series']} | {row['frequency']} | {row['m']} | {row['horizon']} | {row['origins']}"
        lines.append(f"| {meta} | {cells(row)} |")
    mean = table["mean"]
    assert isinstance(mean, dict)
    lines.append(f"| **mean** | | | | | {cells(mean)} |")
    return "\n".join(lines)
