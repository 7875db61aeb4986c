"""Writing the forecaster as a bundle: one place for its tensor names and inference parameters, used
by the training script and by the tests' tiny random-weight bundles alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.core.bundle import TensorSpec
from app.forecast.bundle import ForecastSection, Normalisation
from training import bundle as bundle_io
from training.forecast.model import Forecaster, pad_batch

TASK = "forecast"


def tensor_specs(model: Forecaster) -> tuple[list[TensorSpec], list[TensorSpec]]:
    inputs = [
        TensorSpec(name="values", dtype="float32", shape=["batch", "time"]),
        TensorSpec(name="lengths", dtype="int64", shape=["batch"]),
    ]
    outputs = [
        TensorSpec(name="quantiles", dtype="float32", shape=["batch", model.horizon_max, model.n_quantiles])
    ]
    return inputs, outputs


def interval_levels(quantiles: list[float]) -> dict[str, tuple[float, float]]:
    """Central intervals the quantiles support: "80" -> (0.1, 0.9)."""
    pairs = zip(quantiles, reversed(quantiles), strict=True)
    return {str(round(100 * (hi - lo))): (lo, hi) for lo, hi in pairs if lo < 0.5}


def preprocessing(model: Forecaster, min_window: int, max_window: int) -> ForecastSection:
    return ForecastSection(
        min_window=min_window,
        max_window=max_window,
        horizon_max=model.horizon_max,
        quantile_levels=model.quantiles,
        interval_levels=interval_levels(model.quantiles),
        padding="right-padded values, true lengths in `lengths`; packed, so padding is ignored",
        long_histories=f"only the last max_window={max_window} values are used",
        normalisation=Normalisation(
            where="inside the exported graph (inputs and outputs are raw values)",
            scheme="per window: z = (x - mean) / max(std, eps_rel * mean(|x|) + eps_abs), over the "
            "valid values; outputs mapped back with the same mean and scale",
            eps_rel=model.eps_rel,
            eps_abs=model.eps_abs,
        ),
    )


def export(
    model: Forecaster,
    *,
    min_window: int,
    max_window: int,
    version: str,
    model_dir: Path,
    headline: dict[str, Any],
    metrics: dict[str, Any],
    data: dict[str, Any],
    architecture: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    notes: str = "",
) -> Path:
    # Two rows of different lengths, so the traced ONNX graph carries real sequence lengths.
    values, lengths = pad_batch(
        [np.arange(min_window + 8, dtype=np.float32), np.ones(min_window, np.float32)]
    )
    inputs, outputs = tensor_specs(model)
    model.eval()
    return bundle_io.write_bundle(
        module=model,
        example_inputs=(values, lengths),
        task=TASK,
        version=version,
        inputs=inputs,
        outputs=outputs,
        architecture={
            "name": "global LSTM quantile forecaster",
            "summary": f"{model.layers}x LSTM({model.hidden}) + MLP, direct {model.horizon_max}-step "
            f"{model.n_quantiles}-quantile head",
            **model.config(),
            "input_features": ["window-standardised value", "its first difference"],
            "strategy": "direct multi-output (all horizons at once)",
            "quantile_parameterisation": "median = last value + offset; "
            "other quantiles = cumulative softplus gaps from it",
            "parameters": sum(p.numel() for p in model.parameters()),
            **(architecture or {}),
        },
        headline=headline,
        metrics=metrics,
        data=data,
        preprocessing=preprocessing(model, min_window, max_window),
        training=training,
        notes=notes,
        model_dir=model_dir,
        overwrite=True,
    )
