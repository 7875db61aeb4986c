"""A tiny random-weight forecast bundle, so tests never depend on the shipped model or the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.forecast import preprocess
from app.forecast.conformal import LEVELS, POOLED, IntervalTable
from training.forecast.export import MIN_WINDOW, export
from training.forecast.model import Forecaster

MAX_WINDOW = 16
HORIZON_MAX = 6
__all__ = [
    "HORIZON_MAX",
    "MAX_WINDOW",
    "MIN_WINDOW",
    "assert_nested_intervals",
    "tiny_intervals",
    "tiny_model",
    "write_tiny_bundle",
]


def tiny_model(seed: int = 0) -> Forecaster:
    torch.manual_seed(seed)
    model = Forecaster(preprocess.N_STATIC, hidden=8, layers=1, horizon_max=HORIZON_MAX)
    model.eval()
    return model


def tiny_intervals() -> IntervalTable:
    """Error quantiles growing with the level and the step; a separate table for m = 12 so the
    class lookup is exercised."""
    steps = np.arange(1, 4, dtype=np.float64)
    table = {}
    for cls, width in ((POOLED, 1.0), ("12", 0.5)):
        table[cls] = {lv: (-width * k * steps, width * k * steps) for k, lv in enumerate(LEVELS, start=1)}
    return IntervalTable(table)


def write_tiny_bundle(model_dir: Path, seed: int = 0) -> tuple[Forecaster, Path]:
    model = tiny_model(seed)
    path = export(
        model,
        max_window=MAX_WINDOW,
        theta_weights={"default": 0.5, "1": 0.25},
        intervals=tiny_intervals(),
        version="0.0.1",
        model_dir=model_dir,
        architecture={"name": "tiny test forecaster", **model.config()},
        headline={"metric": "M3 sMAPE", "value": 99.0, "split": "none (random weights)"},
        metrics={},
        data={"note": "random weights for tests"},
    )
    return model, path


def assert_nested_intervals(forecast: dict[str, Any]) -> None:
    """One answered forecast with levels [50, 80, 95]: each interval holds the point and sits
    inside the next wider one, at every step."""
    point = np.array(forecast["point"])
    (lo50, hi50), (lo80, hi80), (lo95, hi95) = (
        (np.array(i["lower"]), np.array(i["upper"])) for i in forecast["intervals"]
    )
    assert np.all(lo95 <= lo80)
    assert np.all(lo80 <= lo50)
    assert np.all(lo50 <= point)
    assert np.all(point <= hi50)
    assert np.all(hi50 <= hi80)
    assert np.all(hi80 <= hi95)
