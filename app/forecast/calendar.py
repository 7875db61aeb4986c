"""Dating the forecast: parse posted timestamps and frequency, step forward from the last one."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd
from pandas.tseries.frequencies import to_offset


class CalendarError(ValueError):
    """A timestamp or frequency problem; the message is shown to the client."""


def parse_frequency(frequency: str) -> pd.DateOffset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            offset = to_offset(frequency)
    except (ValueError, TypeError) as exc:
        raise CalendarError(f"unknown frequency {frequency!r}: {exc}") from None
    if offset is None:
        raise CalendarError(f"unknown frequency {frequency!r}")
    return offset


def parse_timestamps(timestamps: Sequence[str]) -> pd.DatetimeIndex:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            index = pd.DatetimeIndex(pd.to_datetime(list(timestamps), format="ISO8601"))
    except (ValueError, TypeError, OverflowError) as exc:
        raise CalendarError(f"timestamps must be ISO 8601 date-times: {exc}") from None
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise CalendarError("timestamps must be strictly increasing")
    return index


def future_timestamps(
    index: pd.DatetimeIndex, horizon: int, offset: pd.DateOffset | None
) -> tuple[list[str], str]:
    """ISO strings of the next `horizon` steps after the last timestamp, and the spacing used.

    Without an explicit frequency the spacing is pandas' inferred one, else (irregular stamps) the
    median gap between them."""
    if offset is None and len(index) >= 3:
        with warnings.catch_warnings():
            # pandas 3 announces that infer_freq will return an offset; to_offset takes either.
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(index)
        if inferred is not None:
            offset = to_offset(inferred)
    last = index[-1]
    if offset is not None:
        steps = [last + k * offset for k in range(1, horizon + 1)]
        label = offset.freqstr
    else:
        if len(index) < 2:
            raise CalendarError("one timestamp cannot give a spacing: pass `frequency` too")
        gap = pd.Series(index).diff().median()
        steps = [last + k * gap for k in range(1, horizon + 1)]
        label = f"median gap {gap}"
    return [s.isoformat() for s in steps], label
