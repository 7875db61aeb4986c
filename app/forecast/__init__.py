"""Forecasting: a seasonal global LSTM (ES-RNN-style preprocessing) combined with Theta, served at
POST /forecast."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Task", "router"]


def __getattr__(name: str) -> Any:
    # Resolved on first use, so that the numpy pipeline (seasonal, preprocess, conformal) imports
    # without the web stack: the training script uses the same modules.
    if name == "Task":
        return importlib.import_module("app.forecast.task").ForecastTask
    if name == "router":
        return importlib.import_module("app.forecast.routes").router
    raise AttributeError(f"module 'app.forecast' has no attribute {name!r}")
