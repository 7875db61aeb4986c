"""Season handling shared by training and serving (numpy only): the season length of a series, the
M4 seasonality test, classical decomposition, and the classical Theta forecast.

Conventions follow the M4 competition's benchmark code (Makridakis, Spiliotis & Assimakopoulos,
2020, `Benchmarks and Evaluation.R` / `main.py` of Mcompetitions/M4-methods) and ES-RNN (Smyl 2020),
whose preprocessing the forecaster reuses:

- a season of length m is *used* only when the series has at least 3m values and its lag-m
  autocorrelation is significant at 90% (|r_m| > 1.645 * sqrt((1 + 2 sum_{k<m} r_k^2) / n));
- the seasonal indices are those of a classical decomposition (centred moving average of order m,
  then the mean ratio, or difference, per season position, normalised to mean 1, or 0);
- multiplicative when every value is positive, additive otherwise (a ratio to a value <= 0 is
  meaningless).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# z of the one-sided 90% test the M4 benchmarks use for the lag-m autocorrelation.
SEASONALITY_Z = 1.645
# The estimated season is the strongest ACF peak at a lag up to this many values ...
MAX_ESTIMATED_SEASON = 400
# ... that the series covers at least this many times (the same 3 seasons the test needs).
MIN_SEASONS = 3
# An ACF peak weaker than this is noise even when "significant" on a very long series.
MIN_PEAK_ACF = 0.3
HARMONIC_SHARE = 0.8


def acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations r_0..r_max_lag (r_0 = 1) with the usual 1/n normalisation."""
    x = np.asarray(x, np.float64)
    x = x - x.mean()
    denom = float(np.dot(x, x))
    n = len(x)
    if denom <= 0.0:
        return np.concatenate([[1.0], np.zeros(max_lag)])
    return np.array([1.0] + [float(np.dot(x[k:], x[: n - k])) / denom for k in range(1, max_lag + 1)])


def acf_significant(x: np.ndarray, m: int) -> bool:
    """The M4 seasonality test: lag-m autocorrelation beyond its 90% Bartlett band."""
    n = len(x)
    if m <= 1 or n < MIN_SEASONS * m:
        return False
    r = acf(x, m)
    limit = SEASONALITY_Z * math.sqrt((1.0 + 2.0 * float(np.sum(r[1:m] ** 2))) / n)
    return abs(float(r[m])) > limit


def estimate_season_length(x: np.ndarray) -> int:
    """Season length of a series with no calendar information. Candidates are the local maxima of
    the autocorrelation of the first differences (differencing removes the trend that would
    otherwise make every lag look correlated) among lags 3..min(n/3, 400) that reach MIN_PEAK_ACF
    after a negative one and whose lag also passes the M4 test on the series itself; the answer
    is the shortest candidate dividing the strongest one's lag and within HARMONIC_SHARE of its
    autocorrelation (the season, not one of its multiples), 1 when none."""
    y = np.asarray(x, np.float64)
    d = np.diff(y)
    max_lag = min(len(y) // MIN_SEASONS, MAX_ESTIMATED_SEASON)
    if max_lag < 2 or len(d) < 4:
        return 1
    r = acf(d, max_lag + 1)
    # A seasonal peak follows a trough: the autocorrelation must have gone negative at some lag
    # from 2 on (lag 1 of differenced noise is always negative), which rules out the high short
    # lags of a smooth, slow cycle.
    peaks = [
        k
        for k in range(3, max_lag + 1)
        if r[k] >= max(r[k - 1], r[k + 1]) and r[k] >= MIN_PEAK_ACF and float(np.min(r[2:k])) < 0.0
    ]
    passing = [k for k in peaks if acf_significant(y, k)]
    if not passing:
        return 1
    # A season's multiples peak too (24 for a season of 12), sometimes a little higher: the
    # shortest divisor of the best peak's lag that peaks within HARMONIC_SHARE of it is the season.
    best = max(passing, key=lambda k: r[k])
    return min(k for k in passing if best % k == 0 and r[k] >= HARMONIC_SHARE * r[best])


@dataclass(frozen=True)
class Season:
    """Seasonal indices of one series: `indices[p]` is the factor (multiplicative) or offset
    (additive) of season position p, where the first value of the history is position 0."""

    m: int
    used: bool  # the test passed and the series is deseasonalised
    multiplicative: bool
    indices: np.ndarray  # [m] (ones/zeros when not used)

    def at(self, start: int, count: int) -> np.ndarray:
        """Indices of positions start .. start+count-1 (positions past the history continue the cycle)."""
        return self.indices[(start + np.arange(count)) % self.m]

    def remove(self, x: np.ndarray) -> np.ndarray:
        si = self.at(0, len(x))
        return np.asarray(x / si if self.multiplicative else x - si, np.float64)

    def restore(self, forecast: np.ndarray, n_history: int) -> np.ndarray:
        """Put the season back on a forecast of the steps right after a history of n values."""
        si = self.at(n_history, forecast.shape[-1])
        return np.asarray(forecast * si if self.multiplicative else forecast + si, np.float64)


def decompose(x: np.ndarray, m: int, test: bool = True) -> Season:
    """Classical decomposition indices of `x` for season length m (M4 benchmarks' `seasonality_test`
    + `decompose(type="multiplicative")`); an identity season when m <= 1, the history is shorter
    than 3 seasons or (with `test`) the lag-m autocorrelation is not significant."""
    y = np.asarray(x, np.float64)
    positive = bool(np.all(y > 0))
    m = max(int(m), 1)
    identity = Season(m, False, positive, np.ones(m) if positive else np.zeros(m))
    if m <= 1 or len(y) < MIN_SEASONS * m or (test and not acf_significant(y, m)):
        return identity
    # Centred moving average of order m (2 x m for even m), as R's decompose().
    w = np.concatenate([[0.5], np.ones(m - 1), [0.5]]) / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(y, w, mode="valid")
    offset = (len(w) - 1) // 2
    idx = np.arange(offset, offset + len(trend))
    detr = y[idx] / trend if positive else y[idx] - trend
    if positive and not np.all(np.isfinite(detr)):
        return identity
    pos = idx % m
    raw = np.array([detr[pos == p].mean() for p in range(m)])
    if positive:
        raw = raw / raw.mean()
        if not np.all(raw > 0):
            return identity
    else:
        raw = raw - raw.mean()
    return Season(m, True, positive, raw)


def ses_fit(x: np.ndarray, alphas: np.ndarray | None = None) -> tuple[float, float]:
    """Simple exponential smoothing by grid search over alpha (level starts at the first value):
    (alpha, final level) minimising the in-sample one-step squared error."""
    y = np.asarray(x, np.float64)
    grid = np.linspace(0.01, 0.99, 99) if alphas is None else alphas
    level = np.full(len(grid), y[0])
    sse = np.zeros(len(grid))
    for v in y[1:]:
        err = v - level
        sse += err * err
        level = level + grid * err
    best = int(np.argmin(sse))
    return float(grid[best]), float(level[best])


def theta(x: np.ndarray, horizon: int) -> np.ndarray:
    """Classical Theta (Assimakopoulos & Nikolopoulos 2000, as Hyndman & Billah 2003 showed it:
    SES with drift equal to half the linear-trend slope) on an already deseasonalised series."""
    y = np.asarray(x, np.float64)
    n = len(y)
    if n < 3:
        return np.full(horizon, y[-1])
    alpha, level = ses_fit(y)
    t = np.arange(n, dtype=np.float64)
    slope = float(np.polyfit(t, y, 1)[0])
    steps = np.arange(horizon, dtype=np.float64)
    return level + 0.5 * slope * (steps + (1.0 - (1.0 - alpha) ** n) / alpha)


def seasonal_theta(x: np.ndarray, horizon: int, m: int) -> np.ndarray:
    season = decompose(x, m)
    return season.restore(theta(season.remove(np.asarray(x, np.float64)), horizon), len(x))


def naive2(x: np.ndarray, horizon: int, m: int) -> np.ndarray:
    """The M4 reference: naive on the deseasonalised series (when the test passes), reseasonalised."""
    season = decompose(x, m)
    des = season.remove(np.asarray(x, np.float64))
    return season.restore(np.full(horizon, des[-1]), len(x))
