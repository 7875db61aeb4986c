"""Dating the forecast: parse posted timestamps and frequency, step forward from the last one."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd
from pandas.tseries.frequencies import to_offset


class CalendarError(ValueError):
    """A timestamp or frequency problem; the message is shown to the client, so it says what to
    send, in the API's terms, and never passes pandas' own exception text through."""


FREQUENCY_HINT = 'a pandas offset alias such as "D", "h", "30min", "W", "MS", "QS" or "YS"'
ISO_HINT = "an ISO 8601 date or date-time, e.g. 2024-01-31 or 2024-01-31T13:30:00"
# pandas' nanosecond timestamps cover these dates only.
DATE_RANGE = f"{pd.Timestamp.min:%Y-%m-%d} to {pd.Timestamp.max:%Y-%m-%d}"


def parse_frequency(frequency: str) -> pd.DateOffset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            offset = to_offset(frequency)
    except (ValueError, TypeError):
        offset = None
    if offset is None:
        raise CalendarError(f"unknown frequency {frequency!r}: use {FREQUENCY_HINT}")
    return offset


def _parse_one(i: int, text: str) -> pd.Timestamp:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stamp = pd.Timestamp(pd.to_datetime(text, format="ISO8601"))
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise CalendarError(f"timestamp {i} ({text!r}) is outside the dates {DATE_RANGE}") from None
    except (ValueError, TypeError):
        raise CalendarError(f"timestamp {i} ({text!r}) is not {ISO_HINT}") from None
    if stamp is pd.NaT:
        raise CalendarError(f"timestamp {i} ({text!r}) is not {ISO_HINT}")
    return stamp


def parse_timestamps(timestamps: Sequence[str]) -> pd.DatetimeIndex:
    stamps = [_parse_one(i, t) for i, t in enumerate(timestamps)]
    if len({s.tzinfo is None for s in stamps}) > 1:
        raise CalendarError(
            "timestamps mix times with and without a UTC offset: give every one an offset, or none"
        )
    if len({s.utcoffset() for s in stamps}) > 1:  # e.g. across a daylight-saving change: compare in UTC
        stamps = [s.tz_convert("UTC") for s in stamps]
    index = pd.DatetimeIndex(stamps)
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise CalendarError("timestamps must be strictly increasing")
    return index


def future_timestamps(
    index: pd.DatetimeIndex, horizon: int, offset: pd.DateOffset | None
) -> tuple[list[str], str]:
    """ISO strings of the next `horizon` steps after the last timestamp, and the spacing used as a
    frequency alias (one the client could post back as `frequency`).

    Without an explicit frequency the spacing is pandas' inferred one, else (irregular stamps) the
    median gap between them."""
    if offset is None and len(index) >= 3:
        with warnings.catch_warnings():
            # pandas 3 announces that infer_freq will return an offset; to_offset takes either.
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(index)
        if inferred is not None:
            offset = to_offset(inferred)
    if offset is None:
        if len(index) < 2:
            raise CalendarError("one timestamp cannot give a spacing: pass `frequency` too")
        offset = to_offset(pd.Series(index).diff().median())  # a Timedelta becomes "D", "27h", ...
    last = index[-1]
    try:
        steps = [last + k * offset for k in range(1, horizon + 1)]
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise CalendarError(f"the forecast would be dated past {DATE_RANGE.split()[-1]}") from None
    return [s.isoformat() for s in steps], offset.freqstr


def season_of_offset(offset: pd.DateOffset) -> int:
    """The season length a spacing implies: the number of steps in the next longer natural cycle
    (hours and sub-daily steps: a day; days: a week; business days: a week of 5; weeks: a year
    of 52; months: a year; quarters: a year). 1 when there is none (years) or the step does not
    divide the cycle evenly."""
    n = max(int(getattr(offset, "n", 1)), 1)
    if isinstance(offset, pd.offsets.Tick):
        step = pd.Timedelta(offset)
        day = pd.Timedelta(days=1)
        if step < day:
            ratio = day / step
            return int(ratio) if float(ratio).is_integer() else 1
        return {day: 7, 7 * day: 52}.get(step, 1)
    if isinstance(offset, pd.offsets.BusinessDay):
        return 5 if n == 1 else 1
    if isinstance(offset, pd.offsets.Day):  # pandas >= 3 no longer counts Day as a Tick
        return {1: 7, 7: 52}.get(n, 1)
    if isinstance(offset, pd.offsets.Week):
        return 52 if n == 1 else 1
    per_year = {
        pd.offsets.MonthBegin: 12,
        pd.offsets.MonthEnd: 12,
        pd.offsets.BusinessMonthBegin: 12,
        pd.offsets.BusinessMonthEnd: 12,
        pd.offsets.SemiMonthBegin: 24,
        pd.offsets.SemiMonthEnd: 24,
        pd.offsets.QuarterBegin: 4,
        pd.offsets.QuarterEnd: 4,
        pd.offsets.BQuarterBegin: 4,
        pd.offsets.BQuarterEnd: 4,
    }
    for kind, count in per_year.items():
        if isinstance(offset, kind):
            return count // n if count % n == 0 and count // n > 1 else 1
    return 1


def inferred_offset(index: pd.DatetimeIndex) -> pd.DateOffset | None:
    """pandas' inferred spacing of regular timestamps (None when irregular or too few)."""
    if len(index) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inferred = pd.infer_freq(index)
    return to_offset(inferred) if inferred is not None else None
