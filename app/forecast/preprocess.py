"""The forecaster's numpy pre- and post-processing around the exported network (ES-RNN style).

For one history x (raw values) and a season length m:

1. season: classical decomposition when the M4 test passes (multiplicative for positive series,
   additive otherwise), over the last DECOMPOSE_MAX values; d = x deseasonalised;
2. window: the last `max_window` values of d, normalised by a level (the last value of d):
   positive series ("log path") z = log(d / level); others ("linear path")
   z = (d - level) / mean|d| (a scale that works for any sign);
3. the network reads z and a static feature vector (season-length class, season used, path) and
   returns `horizon_max` future values in z units;
4. back: level * exp(out) or level + out * scale, then the season is put back.

Optionally the deseasonalised forecast is combined with a classical Theta forecast of d (weight
`theta_weight`; 0 = network only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.forecast.seasonal import Season, decompose, theta

# Seasonal indices come from at most this many latest values (M4 hourly has up to 960).
DECOMPOSE_MAX = 1200
# Season-length classes the static features name; anything else is "other".
SEASON_CLASSES = (1, 4, 7, 12, 24, 52)
N_STATIC = len(SEASON_CLASSES) + 1 + 2
Z_CLIP = 10.0


def season_class(m: int) -> int:
    return SEASON_CLASSES.index(m) if m in SEASON_CLASSES else len(SEASON_CLASSES)


def static_features(m: int, season_used: bool, log_path: bool) -> np.ndarray:
    f = np.zeros(N_STATIC, np.float32)
    f[season_class(m)] = 1.0
    f[len(SEASON_CLASSES) + 1] = float(season_used)
    f[len(SEASON_CLASSES) + 2] = float(log_path)
    return f


@dataclass(frozen=True)
class Prepared:
    """One history, ready for the network."""

    z: np.ndarray  # float32 [t], t <= max_window
    static: np.ndarray  # float32 [N_STATIC]
    season: Season
    deseasonalised: np.ndarray  # float64, the whole (capped) history
    n: int  # history length (for the season phase of the forecast)
    level: float
    scale: float  # 1.0 on the log path
    log_path: bool


def deseasonalise(x: np.ndarray, m: int) -> tuple[Season, np.ndarray]:
    """Season of the last DECOMPOSE_MAX values and the deseasonalised history (same length as x);
    the phase is counted from the first value of x."""
    y = np.asarray(x, np.float64)
    cut = max(0, len(y) - DECOMPOSE_MAX)
    tail = decompose(y[cut:], m)
    # Rotate the indices so that position 0 is x[0], not x[cut]: indices_x[i] = tail[(i - cut) % m].
    indices = np.roll(tail.indices, cut % tail.m) if tail.m > 1 else tail.indices
    season = Season(tail.m, tail.used, tail.multiplicative, indices)
    return season, season.remove(y)


def normalise(d: np.ndarray, max_window: int, log_path: bool) -> tuple[np.ndarray, float, float]:
    """(z window, level, scale) of a deseasonalised history."""
    w = d[-max_window:]
    level = float(w[-1])
    if log_path:
        z = np.log(w / level)
        scale = 1.0
    else:
        scale = float(np.mean(np.abs(w)))
        scale = scale if scale > 0.0 else 1.0
        z = (w - level) / scale
    return np.clip(z, -Z_CLIP, Z_CLIP).astype(np.float32), level, scale


def prepare(x: np.ndarray, m: int, max_window: int) -> Prepared:
    y = np.asarray(x, np.float64)
    season, d = deseasonalise(y, m)
    log_path = bool(np.all(d > 0))
    z, level, scale = normalise(d, max_window, log_path)
    return Prepared(
        z, static_features(season.m, season.used, log_path), season, d, len(y), level, scale, log_path
    )


def denormalise(out: np.ndarray, p: Prepared) -> np.ndarray:
    o = np.clip(np.asarray(out, np.float64), -Z_CLIP, Z_CLIP)
    return p.level * np.exp(o) if p.log_path else p.level + o * p.scale


def finish(
    out: np.ndarray,
    p: Prepared,
    horizon: int,
    theta_weight: float = 0.0,
    theta_forecast: np.ndarray | None = None,
) -> np.ndarray:
    """Raw-scale point forecast of `horizon` steps from the network's z-units output, combined
    with the Theta forecast of the deseasonalised history (computed here unless given)."""
    d_hat = denormalise(out[:horizon], p)
    if theta_weight > 0.0:
        th = theta(p.deseasonalised, horizon) if theta_forecast is None else theta_forecast[:horizon]
        d_hat = (1.0 - theta_weight) * d_hat + theta_weight * th
    return p.season.restore(d_hat, p.n)


def pad(
    windows: Sequence[np.ndarray], statics: Sequence[np.ndarray], width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left-padded (values [B,width] float32, lengths [B] int64, static [B,F] float32): every row
    has the same width whatever it is batched with, so its forecast is too."""
    lengths = np.array([len(z) for z in windows], np.int64)
    values = np.zeros((len(windows), width), np.float32)
    for i, z in enumerate(windows):
        if len(z):
            values[i, width - len(z) :] = z
    return values, lengths, np.stack(statics).astype(np.float32)
