"""A tiny random-weight forecast bundle, so tests never depend on the shipped model or the data."""

from __future__ import annotations

from pathlib import Path

import torch

from training.forecast.export import export
from training.forecast.model import Forecaster

MIN_WINDOW = 4
MAX_WINDOW = 32
HORIZON_MAX = 6
# More lags than the shortest histories have, so the clamped look-back path is exercised too.
SKIP_LAGS = 10


def tiny_model(seed: int = 0) -> Forecaster:
    torch.manual_seed(seed)
    model = Forecaster(hidden=8, layers=2, horizon_max=HORIZON_MAX, skip_lags=SKIP_LAGS)
    model.eval()
    return model


def write_tiny_bundle(model_dir: Path, seed: int = 0) -> tuple[Forecaster, Path]:
    model = tiny_model(seed)
    path = export(
        model,
        min_window=MIN_WINDOW,
        max_window=MAX_WINDOW,
        version="0.0.1",
        model_dir=model_dir,
        headline={"metric": "mean MASE", "value": 1.0, "split": "none (random weights)"},
        metrics={},
        data={"note": "random weights for tests"},
    )
    return model, path
