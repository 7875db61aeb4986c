"""The forecast model as the batcher sees it: pad histories, run the backend once, split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.core.backends import Backend
from app.core.bundle import Bundle, BundleError
from app.core.task import ModelTask


@dataclass(frozen=True)
class ForecastItem:
    """One validated series: the (already cut to max_window) history and its horizon."""

    values: np.ndarray  # float32, 1-D, finite
    horizon: int


@dataclass(frozen=True)
class ModelLimits:
    min_window: int
    max_window: int
    horizon_max: int
    quantile_levels: list[float]
    interval_levels: dict[str, tuple[float, float]]  # "80" -> (0.1, 0.9)

    def interval_index(self, level: float) -> tuple[int, int] | None:
        for name, (lo, hi) in self.interval_levels.items():
            if abs(float(name) - level) < 1e-6:
                return self.quantile_levels.index(lo), self.quantile_levels.index(hi)
        return None

    @property
    def supported_levels(self) -> list[float]:
        return sorted(float(name) for name in self.interval_levels)

    @property
    def median_index(self) -> int:
        return self.quantile_levels.index(0.5)


def read_limits(bundle: Bundle) -> ModelLimits:
    pre = bundle.manifest.preprocessing
    try:
        levels = [float(q) for q in pre["quantile_levels"]]
        return ModelLimits(
            min_window=int(pre["min_window"]),
            max_window=int(pre["max_window"]),
            horizon_max=int(pre["horizon_max"]),
            quantile_levels=levels,
            interval_levels={str(k): (float(v[0]), float(v[1])) for k, v in pre["interval_levels"].items()},
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BundleError(f"forecast bundle {bundle.path}: preprocessing lacks {exc}") from None


class ForecastTask(ModelTask[ForecastItem, np.ndarray]):
    """Results are float64 arrays [horizon, n_quantiles] on the series' own scale."""

    name = "forecast"

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        super().__init__(bundle, backend)
        self.limits = read_limits(bundle)

    def item_size(self, item: ForecastItem) -> int:
        return int(item.values.shape[0])

    def predict_batch(self, items: Sequence[ForecastItem]) -> list[np.ndarray]:
        lengths = np.array([len(it.values) for it in items], dtype=np.int64)
        values = np.zeros((len(items), int(lengths.max())), dtype=np.float32)
        for i, it in enumerate(items):
            values[i, : len(it.values)] = it.values
        out = self.backend.run({"values": values, "lengths": lengths})["quantiles"]
        results = [np.asarray(out[i, : it.horizon], dtype=np.float64) for i, it in enumerate(items)]
        for r in results:
            if not np.all(np.isfinite(r)):
                raise FloatingPointError("the model produced a non-finite forecast")
        return results

    def warmup_items(self) -> list[ForecastItem]:
        lim = self.limits
        t = np.arange(lim.max_window, dtype=np.float32)
        wave = (10.0 + np.sin(2 * np.pi * t / 12.0)).astype(np.float32)
        return [
            ForecastItem(wave, lim.horizon_max),
            ForecastItem(wave[: lim.min_window].copy(), 1),
            ForecastItem(np.full(lim.min_window * 2, 5.0, np.float32), lim.horizon_max // 2 or 1),
        ]
