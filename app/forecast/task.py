"""POST /forecast, start to end: decode posted series (checked against the model's limits, season
length settled, deseasonalised and normalised, Theta computed) into items, run the network on a
left-padded batch, map its output back, combine with Theta, put the season back, and add the
calibrated intervals. The route (`routes.py`) only wires this to HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from app.core.backends import Backend
from app.core.bundle import Bundle
from app.core.errors import invalid
from app.core.limits import InputLimits, check_count
from app.core.task import ModelTask
from app.forecast import preprocess
from app.forecast.bundle import ForecastSection
from app.forecast.calendar import CalendarError, future_timestamps
from app.forecast.schemas import ForecastRequest, ForecastResponse, Interval, SeriesForecast
from app.forecast.validation import ForecastItem, PreparedSeries, prepare_series


@dataclasses.dataclass(frozen=True)
class ForecastResult:
    point: np.ndarray  # [horizon]
    bands: dict[int, tuple[np.ndarray, np.ndarray]]  # level -> (lower, upper)


def _dated(i: int, p: PreparedSeries, horizon: int) -> tuple[list[str] | None, str | None]:
    if p.index is None:
        return None, p.offset.freqstr if p.offset is not None else None
    try:
        return future_timestamps(p.index, horizon, p.offset)
    except CalendarError as exc:
        raise invalid(("body", "series", i, "timestamps"), str(exc)) from None
    except (OverflowError, ValueError) as exc:  # stepping past pandas' representable dates
        raise invalid(("body", "series", i, "timestamps"), f"cannot date the forecast: {exc}") from None


class ForecastTask(ModelTask[ForecastRequest, ForecastItem, ForecastResult, ForecastResponse]):
    name = "forecast"
    cost_follows_size = True

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        super().__init__(bundle, backend)
        self.section = bundle.section(ForecastSection)
        self.intervals = self.section.interval_table()

    def _levels(self, levels: Sequence[float]) -> list[int]:
        offered = self.section.interval_levels
        out = []
        for k, level in enumerate(levels):
            match = [lv for lv in offered if abs(lv - level) < 1e-6]
            if not match:
                raise invalid(
                    ("body", "levels", k),
                    f"unsupported interval level {level}; this model supports "
                    f"{sorted(float(v) for v in offered)}",
                    value=level,
                )
            out.append(match[0])
        return out

    def request_size(self, request: ForecastRequest) -> int:
        return len(request.series)

    def decode(self, request: ForecastRequest, limits: InputLimits) -> list[ForecastItem]:
        check_count("series", len(request.series), limits.max_items_per_request, "series")
        self._levels(request.levels)
        prepared = [
            prepare_series(i, s, self.section, limits.max_series_values) for i, s in enumerate(request.series)
        ]
        items = []
        for i, (p, s) in enumerate(zip(prepared, request.series, strict=True)):
            stamps, freq = _dated(i, p, s.horizon)
            items.append(dataclasses.replace(p.item, timestamps=stamps, frequency=freq))
        return items

    def item_size(self, item: ForecastItem) -> int:
        return int(item.prepared.z.shape[0])

    def predict_batch(self, items: Sequence[ForecastItem]) -> list[ForecastResult]:
        values, lengths, static = preprocess.pad(
            [it.prepared.z for it in items], [it.prepared.static for it in items], self.section.max_window
        )
        out = self.backend.run({"values": values, "lengths": lengths, "static": static})["forecast"]
        results = []
        for row, it in zip(out, items, strict=True):
            point = preprocess.finish(
                np.asarray(row, np.float64), it.prepared, it.horizon, it.theta_weight, it.theta
            )
            if not np.all(np.isfinite(point)):
                raise FloatingPointError("the model produced a non-finite forecast")
            results.append(
                ForecastResult(point, self.intervals.bands(point, it.season_length, it.interval_scale))
            )
        return results

    def encode(
        self, request: ForecastRequest, items: Sequence[ForecastItem], results: Sequence[ForecastResult]
    ) -> ForecastResponse:
        levels = self._levels(request.levels)
        forecasts = [
            SeriesForecast(
                point=r.point.tolist(),
                intervals=[
                    Interval(level=float(lv), lower=r.bands[lv][0].tolist(), upper=r.bands[lv][1].tolist())
                    for lv in levels
                ],
                timestamps=item.timestamps,
                frequency=item.frequency,
                history_used=item.history_used,
                history_truncated=item.truncated,
                season_length=item.season_length,
                season_source=item.season_source,
                deseasonalised=item.prepared.season.used,
            )
            for item, r in zip(items, results, strict=True)
        ]
        return ForecastResponse(
            model=self.bundle.name,
            version=self.bundle.version,
            interval_levels=[float(v) for v in self.section.interval_levels],
            forecasts=forecasts,
        )

    def warmup_items(self) -> list[ForecastItem]:
        sec = self.section
        t = np.arange(4 * 12, dtype=np.float64)
        wave = 10.0 + np.sin(2 * np.pi * t / 12.0) + 0.05 * t
        short = np.array([3.0, 3.2, 3.1, 3.4, 3.3, 3.5, 3.6])
        out = []
        for values, m, horizon in ((wave, 12, sec.horizon_max), (short, 1, 1)):
            p = preprocess.prepare(values, m, sec.max_window)
            out.append(
                ForecastItem(
                    p,
                    horizon,
                    np.full(horizon, p.deseasonalised[-1]),
                    sec.theta_weight(m),
                    1.0,
                    "seasonality",
                    len(values),
                )
            )
        return out
