"""Writing the forecaster as a bundle: its tensor names, the typed `preprocessing` section (the
numpy pipeline's constants, Theta weights, interval table), and the exported == eager check. Used
by the training script and by the tests' tiny random-weight bundles alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from app.core.bundle import TensorSpec
from app.forecast import preprocess
from app.forecast.bundle import ForecastSection
from app.forecast.conformal import IntervalTable
from training import bundle as bundle_io

TASK = "forecast"
MIN_WINDOW = 3
SCHEME = (
    "season length m (request field `seasonality`, else frequency/timestamps, else the ACF rule); "
    "classical decomposition (multiplicative for positive series, additive otherwise) when the "
    "M4 90% lag-m ACF test passes, over the last decompose_max values; window = last max_window "
    "deseasonalised values, left-padded; positive: z = log(d / last d), otherwise "
    "z = (d - last d) / mean|d|; the network returns horizon_max z values; mapped back, combined "
    "with a classical Theta forecast of d (theta_weights), season restored; intervals = point + "
    "MASE scale x conformal error quantiles of the season length's class (pooled 'all' otherwise), "
    "growing with sqrt(step/K) past the last calibrated step K"
)


def tensor_specs(horizon_max: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    inputs = [
        TensorSpec(name="values", dtype="float32", shape=["batch", "time"]),
        TensorSpec(name="lengths", dtype="int64", shape=["batch"]),
        TensorSpec(name="static", dtype="float32", shape=["batch", preprocess.N_STATIC]),
    ]
    outputs = [TensorSpec(name="forecast", dtype="float32", shape=["batch", horizon_max])]
    return inputs, outputs


def section(
    *, max_window: int, horizon_max: int, theta_weights: dict[str, float], intervals: IntervalTable
) -> ForecastSection:
    data = {
        "min_window": MIN_WINDOW,
        "max_window": max_window,
        "horizon_max": horizon_max,
        "decompose_max": preprocess.DECOMPOSE_MAX,
        "season_classes": list(preprocess.SEASON_CLASSES),
        "z_clip": preprocess.Z_CLIP,
        "theta_weights": theta_weights,
        "interval_levels": list(intervals.levels),
        "intervals": intervals.to_json(),
        "scheme": SCHEME,
    }
    # The service's own typed check, before anything is written.
    return ForecastSection.model_validate(data)


def example_inputs(max_window: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two rows of different lengths, the real width."""
    rng = np.random.default_rng(0)
    windows = [
        rng.normal(0, 0.1, max_window).astype(np.float32),
        rng.normal(0, 0.1, MIN_WINDOW).astype(np.float32),
    ]
    statics = [preprocess.static_features(12, True, True), preprocess.static_features(1, False, False)]
    values, lengths, static = preprocess.pad(windows, statics, max_window)
    return torch.from_numpy(values), torch.from_numpy(lengths), torch.from_numpy(static)


def export(
    model: torch.nn.Module,
    *,
    max_window: int,
    theta_weights: dict[str, float],
    intervals: IntervalTable,
    version: str,
    model_dir: Path,
    architecture: dict[str, Any],
    headline: dict[str, Any],
    metrics: dict[str, Any],
    data: dict[str, Any],
    training: dict[str, Any] | None = None,
    notes: str = "",
    name: str | None = None,
    overwrite: bool = True,
) -> Path:
    horizon_max = int(model.horizon_max)  # type: ignore[arg-type]
    inputs, outputs = tensor_specs(horizon_max)
    model.eval()
    return bundle_io.write_bundle(
        module=model,
        example_inputs=example_inputs(max_window),
        task=TASK,
        version=version,
        inputs=inputs,
        outputs=outputs,
        architecture=architecture,
        headline=headline,
        metrics=metrics,
        data=data,
        preprocessing=section(
            max_window=max_window, horizon_max=horizon_max, theta_weights=theta_weights, intervals=intervals
        ),
        training=training,
        notes=notes,
        model_dir=model_dir,
        name=name,
        overwrite=overwrite,
    )


def check_export(
    model: torch.nn.Module, path: Path, values: np.ndarray, lengths: np.ndarray, static: np.ndarray
) -> float:
    """Largest |exported - eager| (TorchScript and ONNX Runtime) over one padded batch."""
    args = (torch.from_numpy(values), torch.from_numpy(lengths), torch.from_numpy(static))
    with torch.no_grad():
        eager = model(*args).numpy()
        ts = torch.jit.load(str(path / "model.pt"))(*args).numpy()
    sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = sess.run(["forecast"], {"values": values, "lengths": lengths, "static": static})
    return float(max(np.max(np.abs(ts - eager)), np.max(np.abs(onnx_out - eager))))
