"""Reference forecasters and the error measures, on plain numpy arrays.

MASE follows Hyndman & Koehler (2006): the forecast's mean absolute error divided by the in-sample
mean absolute error of the seasonal-naive forecast (period `m`, 1 = naive) on the history up to the
forecast origin, so a value below 1 beats that one-step in-sample benchmark.
"""

from __future__ import annotations

import warnings

import numpy as np

# Fitting ETS on tens of thousands of points buys nothing on a 48-step horizon and costs minutes.
ETS_MAX_HISTORY = 2000


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    return np.full(horizon, float(history[-1]))


def seasonal_naive(history: np.ndarray, horizon: int, m: int) -> np.ndarray:
    """Repeat the last full season; with m <= 1 or too short a history this is `naive`."""
    if m <= 1 or len(history) < m:
        return naive(history, horizon)
    season = history[-m:]
    return np.array([season[i % m] for i in range(horizon)], dtype=np.float64)


def ets(history: np.ndarray, horizon: int, m: int) -> np.ndarray:
    """Additive damped-trend Holt-Winters (seasonal when two full seasons are available), fitted
    by maximum likelihood; falls back to naive when the optimiser fails."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.asarray(history[-ETS_MAX_HISTORY:], dtype=np.float64)
    seasonal = "add" if m > 1 and len(y) >= 2 * m else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(
                y,
                trend="add",
                damped_trend=True,
                seasonal=seasonal,
                seasonal_periods=m if seasonal else None,
                initialization_method="estimated",
            ).fit()
            out = np.asarray(fit.forecast(horizon), dtype=np.float64)
    except Exception:  # statsmodels raises a variety of numerical errors on odd series
        return naive(history, horizon)
    return out if np.all(np.isfinite(out)) else naive(history, horizon)


def mase_scale(history: np.ndarray, m: int) -> float:
    """In-sample MAE of the seasonal-naive (or naive) one-step forecast; never zero."""
    h = np.asarray(history, dtype=np.float64)
    lag = m if m > 1 and len(h) > m else 1
    if len(h) <= lag:
        return 1.0
    scale = float(np.mean(np.abs(h[lag:] - h[:-lag])))
    if scale == 0.0 and lag > 1:
        scale = float(np.mean(np.abs(np.diff(h))))
    return scale if scale > 0.0 else 1.0


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, m: int) -> float:
    err = np.mean(np.abs(np.asarray(actual, np.float64) - np.asarray(forecast, np.float64)))
    return float(err / mase_scale(history, m))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200); a step where both are zero counts as no error."""
    a = np.asarray(actual, np.float64)
    f = np.asarray(forecast, np.float64)
    denom = np.abs(a) + np.abs(f)
    terms = np.where(denom > 0, 2.0 * np.abs(a - f) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(100.0 * np.mean(terms))
