"""Statistical baselines on the competition splits, computed in the training run itself.

statsforecast (Nixtla) supplies Naive, SeasonalNaive, AutoETS, Theta (the M4 'Theta' benchmark:
multiplicative classical decomposition when the 90% ACF test passes, then SES with drift) and,
when asked for, AutoARIMA. Naive2, the M4 reference that OWA is relative to, is
`seasonal.naive2` (the same test and decomposition as the M4 organisers' code). statsforecast's
AutoETS, like R's ets(), fits no seasonal model with a period above 24 (M4 weekly, m = 52).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence

import numpy as np

from app.forecast import seasonal
from training.forecast.competitions import CompSeries

# name -> [n_series] list of [h] point forecasts
Forecasts = dict[str, list[np.ndarray]]
# name -> level -> (lower, upper) lists
Intervals = dict[str, dict[int, tuple[list[np.ndarray], list[np.ndarray]]]]

STATSFORECAST_MODELS = ("Naive", "SeasonalNaive", "AutoETS", "Theta")


def _histories(series: Sequence[CompSeries], split: str) -> list[np.ndarray]:
    return [s.train if split == "test" else s.fit_part for s in series]


def statsforecast_baselines(
    series: Sequence[CompSeries],
    split: str,
    *,
    models: Sequence[str] = STATSFORECAST_MODELS,
    levels: Sequence[int] = (),
    interval_models: Sequence[str] = ("AutoETS",),
    n_jobs: int = 1,
    log: bool = True,
) -> tuple[Forecasts, Intervals, dict[str, float]]:
    """Point forecasts (and intervals for `interval_models`) of each model for every series, over
    the history that `split` gives ("val": train minus its last h; "test": all of train)."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast import models as sfm

    histories = _histories(series, split)
    out: Forecasts = {name: [np.empty(0)] * len(series) for name in models}
    intervals: Intervals = {
        name: {lv: ([np.empty(0)] * len(series), [np.empty(0)] * len(series)) for lv in levels}
        for name in interval_models
        if name in models
    }
    seconds: dict[str, float] = {}
    groups: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(series):
        groups.setdefault((s.m, s.h), []).append(i)
    for (m, h), idx in sorted(groups.items()):
        frames = [
            pd.DataFrame({"unique_id": str(i), "ds": np.arange(len(histories[i])), "y": histories[i]})
            for i in idx
        ]
        df = pd.concat(frames, ignore_index=True)
        for name in models:
            if name == "Naive":
                model = sfm.Naive()
            elif name == "SeasonalNaive":
                model = sfm.SeasonalNaive(season_length=m)
            elif name == "AutoETS":
                model = sfm.AutoETS(season_length=m)
            elif name == "Theta":
                model = sfm.Theta(season_length=m)
            elif name == "AutoTheta":
                model = sfm.AutoTheta(season_length=m)
            elif name == "AutoARIMA":
                model = sfm.AutoARIMA(season_length=m)
            else:
                raise ValueError(f"unknown baseline {name}")
            wants = list(levels) if name in intervals else None
            t0 = time.time()
            sf = StatsForecast(models=[model], freq=1, n_jobs=n_jobs, fallback_model=sfm.Naive())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fc = sf.forecast(df=df, h=h, level=wants) if wants else sf.forecast(df=df, h=h)
            seconds[name] = seconds.get(name, 0.0) + time.time() - t0
            col = str(model)
            fc["unique_id"] = fc["unique_id"].astype(str)
            by_id = {uid: g for uid, g in fc.groupby("unique_id", sort=False)}
            for i in idx:
                g = by_id[str(i)]
                out[name][i] = np.nan_to_num(g[col].to_numpy(np.float64), nan=float(histories[i][-1]))
                for lv in wants or []:
                    lo, hi = intervals[name][lv]
                    lo[i] = g[f"{col}-lo-{lv}"].to_numpy(np.float64)
                    hi[i] = g[f"{col}-hi-{lv}"].to_numpy(np.float64)
            if log:
                print(
                    f"  baseline {name} m={m} h={h}: {len(idx)} series, {time.time() - t0:.1f}s", flush=True
                )
    return out, intervals, seconds


def numpy_baselines(series: Sequence[CompSeries], split: str) -> Forecasts:
    """Naive2 (the OWA reference) and this package's own classical Theta (the one the served
    pipeline can combine with the LSTM), on the same histories."""
    histories = _histories(series, split)
    return {
        "Naive2": [seasonal.naive2(x, s.h, s.m) for x, s in zip(histories, series, strict=True)],
        "Theta (numpy)": [
            seasonal.seasonal_theta(x, s.h, s.m) for x, s in zip(histories, series, strict=True)
        ],
    }


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 16))
