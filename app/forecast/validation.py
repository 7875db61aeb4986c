"""Checks a posted series against the model's limits, settles its season length, and runs the
numpy pipeline around the network (deseasonalise, normalise, Theta) into a ForecastItem.

Every failure is a 422 naming the field (`invalid`), raised before any model work."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.core.errors import invalid
from app.forecast import preprocess, seasonal
from app.forecast.bundle import ForecastSection
from app.forecast.calendar import (
    CalendarError,
    inferred_offset,
    parse_frequency,
    parse_timestamps,
    season_of_offset,
)
from app.forecast.conformal import interval_scale
from app.forecast.schemas import MAX_ABS_VALUE, SeasonSource, SeriesIn

__all__ = ["MAX_ABS_VALUE", "ForecastItem", "PreparedSeries", "prepare_series", "season_length"]


@dataclass(frozen=True)
class ForecastItem:
    """One validated series, prepared for the network, with what the answer reports about it."""

    prepared: preprocess.Prepared
    horizon: int
    theta: np.ndarray  # classical Theta forecast of the deseasonalised history, [horizon]
    theta_weight: float
    interval_scale: float
    season_source: SeasonSource
    history_used: int
    truncated: bool = False
    timestamps: list[str] | None = None  # dates of the forecast steps, when timestamps were posted
    frequency: str | None = None  # the spacing used to date them

    @property
    def season_length(self) -> int:
        return self.prepared.season.m


@dataclass(frozen=True)
class PreparedSeries:
    item: ForecastItem
    index: pd.DatetimeIndex | None
    offset: pd.DateOffset | None


def season_length(
    values: np.ndarray, seasonality: int | None, offset: pd.DateOffset | None, index: pd.DatetimeIndex | None
) -> tuple[int, SeasonSource]:
    """(m, source): the request's `seasonality`, else what `frequency` implies, else what the
    timestamps' spacing implies, else the autocorrelation estimate (`seasonal.estimate_season_length`)."""
    if seasonality is not None:
        return seasonality, "seasonality"
    if offset is not None:
        return season_of_offset(offset), "frequency"
    if index is not None:
        spacing = inferred_offset(index)
        if spacing is not None:
            return season_of_offset(spacing), "timestamps"
    return seasonal.estimate_season_length(values), "estimated"


def prepare_series(i: int, s: SeriesIn, limits: ForecastSection, max_values: int) -> PreparedSeries:
    loc = ("body", "series", i)
    n = len(s.values)
    if n > max_values:
        raise invalid(
            (*loc, "values"), f"at most {max_values} values per series; got {n}", limit=max_values, value=n
        )
    if n < limits.min_window:
        raise invalid(
            (*loc, "values"),
            f"history too short: the model needs at least {limits.min_window} values; got {n}",
            limit=limits.min_window,
            value=n,
        )
    values = np.asarray(s.values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > MAX_ABS_VALUE))
    if bad.size:
        j = int(bad[0])
        raise invalid(
            (*loc, "values", j),
            f"values must be finite numbers within +/-{MAX_ABS_VALUE:g}; got {s.values[j]} at position {j}",
            "finite_number",
        )
    if s.horizon > limits.horizon_max:
        raise invalid(
            (*loc, "horizon"),
            f"horizon must be between 1 and {limits.horizon_max}; got {s.horizon}",
            limit=limits.horizon_max,
            value=s.horizon,
        )
    offset = None
    if s.frequency is not None:
        try:
            offset = parse_frequency(s.frequency)
        except CalendarError as exc:
            raise invalid((*loc, "frequency"), str(exc)) from None
    index = None
    if s.timestamps is not None:
        if len(s.timestamps) != n:
            raise invalid(
                (*loc, "timestamps"),
                f"one timestamp per value: got {len(s.timestamps)} timestamps for {n} values",
                value=len(s.timestamps),
                expected=n,
            )
        try:
            index = parse_timestamps(s.timestamps)
        except CalendarError as exc:
            raise invalid((*loc, "timestamps"), str(exc)) from None
    m, source = season_length(values, s.seasonality, offset, index)
    prepared = preprocess.prepare(values, m, limits.max_window)
    item = ForecastItem(
        prepared=prepared,
        horizon=s.horizon,
        theta=seasonal.theta(prepared.deseasonalised, s.horizon),
        theta_weight=limits.theta_weight(m),
        interval_scale=interval_scale(values, m),
        season_source=source,
        history_used=n,
    )
    return PreparedSeries(item, index, offset)
