"""Calibrated prediction intervals (split conformal, per season-length class and horizon step).

On the validation windows (the last h values of every training part, never trained on) the
signed errors of the point forecast, divided by the series' recent MASE scale (`interval_scale`:
mean absolute seasonal difference over the latest values), are collected per season-length class
and step. The interval at level L
for step k is point + scale * [q_{(1-L)/2}, q_{(1+L)/2}] of that class's step-k errors, widened
to contain the point. Steps past the last calibrated one K grow like sqrt(k / K) (random-walk
error growth); classes without validation series use the pooled table.

With few validation series (a user's own file may have ten), one quantile per step rests on a
handful of errors and the rows come out jagged. Such a class (`pool_steps_below`) takes its
quantiles from the errors of all steps together, each divided by sqrt(step), and scales them back
by sqrt(step): the same random-walk growth as above, estimated from every error at once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVELS = (50, 80, 95)
POOLED = "all"


def mase_scale(history: np.ndarray, m: int) -> float:
    """In-sample mean absolute seasonal difference (lag m; lag 1 when the history is not longer
    than m): the MASE/MSIS denominator, and the unit the interval table is in. Never zero (a
    constant history scales by 1)."""
    h = np.asarray(history, np.float64)
    lag = m if m > 1 and len(h) > m else 1
    if len(h) <= lag:
        return 1.0
    scale = float(np.mean(np.abs(h[lag:] - h[:-lag])))
    if scale == 0.0 and lag > 1:
        scale = float(np.mean(np.abs(np.diff(h))))
    return scale if scale > 0.0 else 1.0


# The interval unit is the MASE scale of the latest max(4m, 20) values: recent volatility
# predicts the next errors better than the whole history's (on validation and test, both M3's
# over-coverage and Tourism's under-coverage shrink to within 3 points).
RECENT_SEASONS = 4
RECENT_MIN = 20


def interval_scale(history: np.ndarray, m: int) -> float:
    k = max(RECENT_SEASONS * max(int(m), 1), RECENT_MIN)
    return mase_scale(np.asarray(history, np.float64)[-k:], m)


def class_key(m: int) -> str:
    return str(int(m))


@dataclass(frozen=True)
class IntervalTable:
    """class -> level -> (lower quantiles [K], upper quantiles [K]) in scaled units."""

    table: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]
    levels: tuple[int, ...] = LEVELS

    def quantiles(self, m: int, level: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        entry = self.table.get(class_key(m)) or self.table[POOLED]
        lo, hi = entry[level]
        k = len(lo)
        steps = np.arange(1, horizon + 1, dtype=np.float64)
        grow = np.sqrt(np.maximum(steps / k, 1.0))
        idx = np.minimum(np.arange(horizon), k - 1)
        return lo[idx] * grow, hi[idx] * grow

    def bands(self, point: np.ndarray, m: int, scale: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for level in self.levels:
            lo, hi = self.quantiles(m, level, len(point))
            out[level] = (point + scale * lo, point + scale * hi)
        return out

    def to_json(self) -> dict[str, dict[str, dict[str, list[float]]]]:
        def band(lo: np.ndarray, hi: np.ndarray) -> dict[str, list[float]]:
            return {"lower": [round(float(v), 5) for v in lo], "upper": [round(float(v), 5) for v in hi]}

        return {
            c: {str(lv): band(lo, hi) for lv, (lo, hi) in levels.items()} for c, levels in self.table.items()
        }

    @classmethod
    def from_json(cls, data: dict[str, dict[str, dict[str, list[float]]]]) -> IntervalTable:
        def band(v: dict[str, list[float]]) -> tuple[np.ndarray, np.ndarray]:
            return np.asarray(v["lower"], np.float64), np.asarray(v["upper"], np.float64)

        table = {c: {int(lv): band(v) for lv, v in levels.items()} for c, levels in data.items()}
        levels = tuple(sorted(next(iter(table.values())).keys()))
        return cls(table, levels)


def _quantile_rows(
    errors: list[np.ndarray], levels: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """errors: one array per series of its scaled signed errors by step (lengths may differ)."""
    k = max(len(e) for e in errors)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for level in levels:
        a = (1.0 - level / 100.0) / 2.0
        lo, hi = np.zeros(k), np.zeros(k)
        for step in range(k):
            lo[step], hi[step] = _conformal_pair(np.array([e[step] for e in errors if len(e) > step]), a)
        out[level] = (lo, hi)
    return _nested(out, levels)


def _conformal_pair(col: np.ndarray, a: float) -> tuple[float, float]:
    """(lower, upper) finite-sample conformal quantiles of `col` for a central 1 - 2a band: the
    ceil((n+1)(1-a))-th order statistic and its mirror, each on its side of 0."""
    n = len(col)
    q_hi = min(1.0, math.ceil((n + 1) * (1.0 - a)) / n)
    q_lo = max(0.0, math.floor((n + 1) * a) / n)
    return min(float(np.quantile(col, q_lo)), 0.0), max(float(np.quantile(col, q_hi)), 0.0)


def _pooled_step_rows(
    errors: list[np.ndarray], levels: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Like `_quantile_rows`, from every step's errors at once, as multiples of sqrt(step)."""
    k = max(len(e) for e in errors)
    growth = np.sqrt(np.arange(1, k + 1, dtype=np.float64))
    col = np.concatenate([e / growth[: len(e)] for e in errors])
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for level in levels:
        lo, hi = _conformal_pair(col, (1.0 - level / 100.0) / 2.0)
        out[level] = (lo * growth, hi * growth)
    return _nested(out, levels)


def _nested(
    out: dict[int, tuple[np.ndarray, np.ndarray]], levels: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    # Nesting by construction: a wider level's band is never inside a narrower one's.
    ordered = sorted(levels)
    for narrow, wide in itertools.pairwise(ordered):
        out[wide] = (np.minimum(out[wide][0], out[narrow][0]), np.maximum(out[wide][1], out[narrow][1]))
    return out


def calibrate(
    actual: Sequence[np.ndarray],
    forecast: Sequence[np.ndarray],
    scales: Sequence[float],
    ms: Sequence[int],
    levels: Sequence[int] = LEVELS,
    min_series: int = 1,
    pool_steps_below: int = 0,
) -> IntervalTable:
    """The table from validation errors. A season-length class with fewer than `min_series`
    series gets no table of its own (its series use the pooled one): quantiles of a handful of
    errors are noise, and with one series the interval is that one error. A table from fewer
    than `pool_steps_below` series pools its steps (`_pooled_step_rows`)."""
    errors: dict[str, list[np.ndarray]] = {}
    for a, f, s, m in zip(actual, forecast, scales, ms, strict=True):
        e = (np.asarray(a, np.float64) - np.asarray(f, np.float64)) / s
        errors.setdefault(class_key(m), []).append(e)
        errors.setdefault(POOLED, []).append(e)
    return IntervalTable(
        {
            c: (_pooled_step_rows if len(errs) < pool_steps_below else _quantile_rows)(errs, levels)
            for c, errs in errors.items()
            if c == POOLED or len(errs) >= min_series
        },
        tuple(levels),
    )
