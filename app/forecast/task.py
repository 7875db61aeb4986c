"""POST /forecast, start to end: decode posted series (checked against the model's limits) into
histories, run the model on a padded batch, encode the median and intervals, dated when the
series were. The route (`routes.py`) only wires this to HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from app.core.backends import Backend
from app.core.bundle import Bundle
from app.core.errors import invalid
from app.core.limits import InputLimits, check_count
from app.core.task import ModelTask
from app.forecast.bundle import ForecastSection
from app.forecast.calendar import CalendarError, future_timestamps
from app.forecast.schemas import ForecastRequest, ForecastResponse, Interval, SeriesForecast
from app.forecast.validation import ForecastItem, PreparedSeries, prepare_series


def _dated(i: int, p: PreparedSeries, horizon: int) -> tuple[list[str] | None, str | None]:
    if p.index is None:
        return None, p.offset.freqstr if p.offset is not None else None
    try:
        return future_timestamps(p.index, horizon, p.offset)
    except CalendarError as exc:
        raise invalid(("body", "series", i, "timestamps"), str(exc)) from None
    except (OverflowError, ValueError) as exc:  # stepping past pandas' representable dates
        raise invalid(("body", "series", i, "timestamps"), f"cannot date the forecast: {exc}") from None


class ForecastTask(ModelTask[ForecastRequest, ForecastItem, np.ndarray, ForecastResponse]):
    """Results are float64 arrays [horizon, n_quantiles] on the series' own scale."""

    name = "forecast"

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        super().__init__(bundle, backend)
        self.section = bundle.section(ForecastSection)

    def _intervals(self, levels: Sequence[float]) -> list[tuple[float, tuple[int, int]]]:
        """(level, (lower, upper) quantile index) for each requested level."""
        pairs = []
        for k, level in enumerate(levels):
            pair = self.section.interval_index(level)
            if pair is None:
                supported = self.section.supported_levels
                raise invalid(
                    ("body", "levels", k),
                    f"unsupported interval level {level}; this model supports {supported}",
                    value=level,
                )
            pairs.append((level, pair))
        return pairs

    def request_size(self, request: ForecastRequest) -> int:
        return len(request.series)

    def decode(self, request: ForecastRequest, limits: InputLimits) -> list[ForecastItem]:
        check_count("series", len(request.series), limits.max_items_per_request, "series")
        self._intervals(request.levels)
        prepared = [
            prepare_series(i, s, self.section, limits.max_series_values) for i, s in enumerate(request.series)
        ]
        items = []
        for i, (p, s) in enumerate(zip(prepared, request.series, strict=True)):
            stamps, freq = _dated(i, p, s.horizon)
            items.append(dataclasses.replace(p.item, timestamps=stamps, frequency=freq))
        return items

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

    def encode(
        self, request: ForecastRequest, items: Sequence[ForecastItem], results: Sequence[np.ndarray]
    ) -> ForecastResponse:
        pairs = self._intervals(request.levels)
        median = self.section.median_index
        forecasts = [
            SeriesForecast(
                point=q[:, median].tolist(),
                intervals=[
                    Interval(level=lv, lower=q[:, lo].tolist(), upper=q[:, hi].tolist())
                    for lv, (lo, hi) in pairs
                ],
                timestamps=item.timestamps,
                frequency=item.frequency,
                history_used=item.history_used,
                history_truncated=item.truncated,
            )
            for item, q in zip(items, results, strict=True)
        ]
        return ForecastResponse(
            model=self.manifest.task,
            version=self.manifest.version,
            quantile_levels=self.section.quantile_levels,
            forecasts=forecasts,
        )

    def warmup_items(self) -> list[ForecastItem]:
        sec = self.section
        t = np.arange(sec.max_window, dtype=np.float32)
        wave = (10.0 + np.sin(2 * np.pi * t / 12.0)).astype(np.float32)
        return [
            ForecastItem(wave, sec.horizon_max),
            ForecastItem(wave[: sec.min_window].copy(), 1),
            ForecastItem(np.full(sec.min_window * 2, 5.0, np.float32), sec.horizon_max // 2 or 1),
        ]
