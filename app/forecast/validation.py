"""Checks a posted series against the model's limits and turns it into a ForecastItem.

Every failure is a 422 naming the field (`invalid`), raised before any model work."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.core.errors import invalid
from app.forecast.bundle import ForecastSection
from app.forecast.calendar import CalendarError, parse_frequency, parse_timestamps
from app.forecast.schemas import MAX_ABS_VALUE, SeriesIn


@dataclass(frozen=True)
class ForecastItem:
    """One validated series: the (already cut to max_window) history and its horizon, and what
    the answer reports about it."""

    values: np.ndarray  # float32, 1-D, finite
    horizon: int
    truncated: bool = False  # older values than max_window were dropped
    timestamps: list[str] | None = None  # dates of the forecast steps, when timestamps were posted
    frequency: str | None = None  # the spacing used to date them

    @property
    def history_used(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class PreparedSeries:
    item: ForecastItem
    history_used: int
    truncated: bool
    index: pd.DatetimeIndex | None
    offset: pd.DateOffset | None


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
    used = min(n, limits.max_window)
    item = ForecastItem(values[-used:].astype(np.float32), s.horizon, truncated=used < n)
    return PreparedSeries(item, used, used < n, index, offset)
