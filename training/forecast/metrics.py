"""Competition error measures on plain numpy arrays, as the M3/M4/Tourism papers define them.

- sMAPE (M4 form): 200/h * sum |y - f| / (|y| + |f|), a step where both are 0 counting as 0.
- MAPE: 100/h * sum |y - f| / |y| (Tourism); steps with y == 0 are skipped.
- MASE: mean |y - f| over the in-sample mean |y_t - y_{t-m}| of the whole history (M4: lag m, the
  seasonal period; lag 1 when the history is not longer than m).
- MSIS (M4): mean over the horizon of (U - L) + 2/a (L - y)[y < L] + 2/a (y - U)[y > U], over the
  same scale as MASE, for the (1 - a) interval.
- OWA (M4): 0.5 * (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2), each a mean over series.
"""

from __future__ import annotations

import numpy as np

from app.forecast.conformal import mase_scale

__all__ = ["coverage", "mape", "mase", "mase_scale", "msis", "owa", "smape"]


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    a = np.asarray(actual, np.float64)
    f = np.asarray(forecast, np.float64)
    denom = np.abs(a) + np.abs(f)
    terms = np.where(denom > 0, 2.0 * np.abs(a - f) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(100.0 * np.mean(terms))


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    a = np.asarray(actual, np.float64)
    f = np.asarray(forecast, np.float64)
    ok = a != 0
    if not np.any(ok):
        return 0.0
    return float(100.0 * np.mean(np.abs(a[ok] - f[ok]) / np.abs(a[ok])))


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, m: int) -> float:
    err = float(np.mean(np.abs(np.asarray(actual, np.float64) - np.asarray(forecast, np.float64))))
    return err / mase_scale(history, m)


def msis(
    actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, history: np.ndarray, m: int, alpha: float
) -> float:
    a = np.asarray(actual, np.float64)
    lo = np.asarray(lower, np.float64)
    hi = np.asarray(upper, np.float64)
    score = (hi - lo) + (2.0 / alpha) * (lo - a) * (a < lo) + (2.0 / alpha) * (a - hi) * (a > hi)
    return float(np.mean(score)) / mase_scale(history, m)


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    a = np.asarray(actual, np.float64)
    return float(np.mean((a >= lower) & (a <= upper)))


def _ratio(model: float, reference: float) -> float:
    # Naive2 without error (a constant series, say): a model as exact is as good, any other
    # infinitely worse; never a ZeroDivisionError that would end a run on a user's file.
    if reference > 0:
        return model / reference
    return 1.0 if model == 0 else float("inf")


def owa(smape_model: float, mase_model: float, smape_naive2: float, mase_naive2: float) -> float:
    return 0.5 * (_ratio(smape_model, smape_naive2) + _ratio(mase_model, mase_naive2))
