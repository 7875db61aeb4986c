"""POST /forecast."""

from __future__ import annotations

from typing import cast

import numpy as np
from fastapi import APIRouter, Depends, Request

from app.core.errors import invalid
from app.core.limits import check_count
from app.core.service import ModelService, get_service
from app.forecast.calendar import CalendarError, future_timestamps
from app.forecast.schemas import ForecastRequest, ForecastResponse, Interval, SeriesForecast
from app.forecast.task import ForecastTask
from app.forecast.validation import PreparedSeries, prepare_series

router = APIRouter(tags=["forecast"])


def _dated(i: int, p: PreparedSeries, horizon: int) -> tuple[list[str] | None, str | None]:
    if p.index is None:
        return None, p.offset.freqstr if p.offset is not None else None
    try:
        return future_timestamps(p.index, horizon, p.offset)
    except CalendarError as exc:
        raise invalid(("body", "series", i, "timestamps"), str(exc)) from None
    except (OverflowError, ValueError) as exc:  # stepping past pandas' representable dates
        raise invalid(("body", "series", i, "timestamps"), f"cannot date the forecast: {exc}") from None


@router.post(
    "/forecast",
    response_model=ForecastResponse,
    summary="Forecast one or more series with prediction intervals",
)
async def forecast(
    body: ForecastRequest,
    request: Request,
    service: ModelService = Depends(get_service("forecast")),
) -> ForecastResponse:
    task = cast(ForecastTask, service.task)
    limits = task.limits
    settings = request.app.state.settings
    check_count("series", len(body.series), settings.max_items_per_request, "series")
    pairs = []
    for k, level in enumerate(body.levels):
        pair = limits.interval_index(level)
        if pair is None:
            raise invalid(
                ("body", "levels", k),
                f"unsupported interval level {level}; this model supports {limits.supported_levels}",
                value=level,
            )
        pairs.append((level, pair))
    prepared = [prepare_series(i, s, limits, settings.max_series_values) for i, s in enumerate(body.series)]
    dates = [_dated(i, p, s.horizon) for i, (p, s) in enumerate(zip(prepared, body.series, strict=True))]
    results: list[np.ndarray] = await service.predict([p.item for p in prepared])
    forecasts = []
    for p, q, (stamps, freq) in zip(prepared, results, dates, strict=True):
        forecasts.append(
            SeriesForecast(
                point=q[:, limits.median_index].tolist(),
                intervals=[
                    Interval(level=lv, lower=q[:, lo].tolist(), upper=q[:, hi].tolist())
                    for lv, (lo, hi) in pairs
                ],
                timestamps=stamps,
                frequency=freq,
                history_used=p.history_used,
                history_truncated=p.truncated,
            )
        )
    m = task.manifest
    return ForecastResponse(
        model=m.task, version=m.version, quantile_levels=limits.quantile_levels, forecasts=forecasts
    )
