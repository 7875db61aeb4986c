"""A user's series in long format, as statsforecast takes them: one row per (series id, timestamp,
value), CSV/TSV/JSON Lines or Parquet, in any row order.

Each series becomes a `CompSeries` whose `test` is its last `horizon` values and whose last
`horizon` values of `train` are the validation split, so a user's file goes through the same
training, selection and scoring code as the competition series. Every problem is a
`DataFileError` naming the file, line and column, raised before any training.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.forecast.calendar import CalendarError, parse_frequency, season_of_offset
from app.forecast.schemas import MAX_ABS_VALUE
from training.forecast.competitions import CompSeries
from training.userdata import DataFileError, Record, read_table

# Fewest values a validation history needs (the served model's `min_window`).
MIN_HISTORY = 3
DATASET = "series"
# Horizon by season length when --horizon is not given: the M4 competition's (daily and business
# daily: 14; half-hourly like hourly: 48).
DEFAULT_HORIZONS = {1: 6, 4: 8, 12: 18, 52: 13, 7: 14, 5: 14, 24: 48, 48: 48}
DEFAULT_HORIZON = 12


@dataclass(frozen=True)
class Columns:
    id: str = "unique_id"
    time: str = "ds"
    value: str = "y"


@dataclass(frozen=True)
class UserSeries:
    """One series of the file, checked: its values in time order and what the run reports."""

    name: str
    values: np.ndarray  # float64
    frequency: str  # pandas alias
    frequency_source: str  # "given" or "inferred"
    m: int
    horizon: int
    first_line: int
    start: str
    end: str

    def as_comp(self) -> CompSeries:
        h = self.horizon
        return CompSeries(
            id=self.name,
            dataset=DATASET,
            period=self.frequency,
            m=self.m,
            h=h,
            train=self.values[:-h],
            test=self.values[-h:],
        )


def default_horizon(m: int) -> int:
    return DEFAULT_HORIZONS.get(m, DEFAULT_HORIZON)


def _value(path: Path, rec: Record, column: str) -> float:
    raw = rec.values[column]
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise DataFileError(path, "empty value (every row needs a number)", rec.line, column)
    if isinstance(raw, bool):
        raise DataFileError(path, f"{raw!r} is not a number", rec.line, column)
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise DataFileError(path, f"{str(raw)[:40]!r} is not a number", rec.line, column) from None
    if math.isnan(value):
        raise DataFileError(path, "empty value (NaN; fill or drop the row)", rec.line, column)
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise DataFileError(
            path, f"{raw!r} is not a finite number within +/-{MAX_ABS_VALUE:g}", rec.line, column
        )
    return value


def _timestamps(path: Path, records: Sequence[Record], column: str) -> pd.DatetimeIndex:
    raw: list[Any] = [r.values[column] for r in records]
    for rec, v in zip(records, raw, strict=True):
        if v is None or (isinstance(v, str) and not v.strip()):
            raise DataFileError(path, "empty timestamp", rec.line, column)
        # A bare number would be read as nanoseconds since 1970: refuse it rather than guess.
        if isinstance(v, int | float) and not isinstance(v, bool):
            raise DataFileError(
                path, f"{v!r} is not a date: write ISO 8601, e.g. 2024-01-31", rec.line, column
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # utc=True: a file mixing UTC offsets (daylight saving) is compared on one clock.
        parsed = pd.to_datetime(pd.Series(raw, dtype=object), format="ISO8601", errors="coerce", utc=True)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        rec = records[int(bad[0])]
        raise DataFileError(
            path,
            f"{str(raw[int(bad[0])])[:40]!r} is not an ISO 8601 date or date-time (e.g. 2024-01-31 or "
            "2024-01-31T13:30:00)",
            rec.line,
            column,
        )
    return pd.DatetimeIndex(parsed)


def _offset(path: Path, frequency: str) -> pd.DateOffset:
    try:
        return parse_frequency(frequency)
    except CalendarError as exc:
        raise DataFileError(path, f"--frequency: {exc}") from None


def _irregular_line(index: pd.DatetimeIndex, lines: Sequence[int]) -> int:
    """The line of the first step much longer or shorter than the median step (a gap, or a stray
    timestamp); the series' first line when none stands out."""
    gaps = np.diff(index.asi8).astype(np.float64)
    median = float(np.median(gaps))
    odd = np.flatnonzero((gaps > 1.5 * median) | (gaps < 0.5 * median))
    return lines[int(odd[0]) + 1] if odd.size else lines[0]


def _series(
    path: Path,
    name: str,
    records: list[Record],
    stamps: pd.DatetimeIndex,
    cols: Columns,
    frequency: str | None,
    horizon: int | None,
    horizon_max: int,
) -> UserSeries:
    order = np.argsort(stamps.asi8, kind="stable")
    records = [records[i] for i in order]
    index = stamps[order]
    lines = [r.line for r in records]
    # Messages quote the timestamps as the file writes them.
    texts = [str(r.values[cols.time]) for r in records]
    dup = np.flatnonzero(np.diff(index.asi8) == 0)
    if dup.size:
        i = int(dup[0])
        raise DataFileError(
            path,
            f"series {name!r}: timestamp {texts[i + 1]!r} appears twice (lines {lines[i]} and "
            f"{lines[i + 1]})",
            lines[i + 1],
            cols.time,
        )
    if frequency is not None:
        offset, source = _offset(path, frequency), "given"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            on_grid = np.asarray((index[:-1] + offset) == index[1:])
        off = np.flatnonzero(~on_grid)
        if off.size:
            i = int(off[0])
            raise DataFileError(
                path,
                f"series {name!r}: {texts[i + 1]!r} does not follow {texts[i]!r} at "
                f"frequency {frequency!r} (a gap or an off-grid timestamp): fill the gap, or pass the "
                "series' own --frequency",
                lines[i + 1],
                cols.time,
            )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(index) if len(index) >= 3 else None
        if inferred is None:
            raise DataFileError(
                path,
                f"series {name!r}: cannot infer a frequency from its {len(index)} timestamps (unevenly "
                "spaced from about this line): fill gaps, or pass --frequency",
                _irregular_line(index, lines) if len(index) >= 3 else lines[0],
                cols.time,
            )
        offset, source = _offset(path, inferred), "inferred"
    m = season_of_offset(offset)
    h = horizon if horizon is not None else default_horizon(m)
    if h > horizon_max:
        raise DataFileError(
            path,
            f"series {name!r}: its default horizon {h} ({offset.freqstr}) is above the model's "
            f"horizon_max {horizon_max}: pass --horizon",
            lines[0],
            cols.time,
        )
    n = len(records)
    need = 2 * h + MIN_HISTORY
    if n < need:
        raise DataFileError(
            path,
            f"series {name!r} has {n} values; it needs at least {need}: the last {h} (the horizon) are "
            f"the test, the {h} before them the validation, and {MIN_HISTORY} must remain to forecast "
            "from (pass a smaller --horizon, or drop the series)",
            records[0].line,
            cols.id,
        )
    values = np.array([_value(path, r, cols.value) for r in records], np.float64)
    return UserSeries(
        name=name,
        values=values,
        frequency=offset.freqstr,
        frequency_source=source,
        m=m,
        horizon=h,
        first_line=min(lines),
        start=texts[0],
        end=texts[-1],
    )


def read_long_series(
    path: Path,
    cols: Columns = Columns(),
    *,
    frequency: str | None = None,
    horizon: int | None = None,
    horizon_max: int,
    fmt: str | None = None,
) -> list[UserSeries]:
    """Every series of the file, checked, in order of first appearance. `horizon` None: each
    series' from its frequency (`DEFAULT_HORIZONS`), which must be within `horizon_max` too."""
    if horizon is not None and not 1 <= horizon <= horizon_max:
        raise DataFileError(
            path, f"--horizon {horizon} is outside 1..{horizon_max}, the horizons the model can forecast"
        )
    if len({cols.id, cols.time, cols.value}) < 3:
        raise DataFileError(path, f"the id, time and value columns must differ; got {cols}")
    records = read_table(path, [cols.id, cols.time, cols.value], fmt)
    # Values and timestamps are checked over the whole file first; of a bad value and a bad
    # timestamp, the one on the earlier line is reported (a user fixes the file top down).
    value_error = None
    for rec in records:
        try:
            _value(path, rec, cols.value)
        except DataFileError as exc:
            value_error = exc
            break
    try:
        stamps = _timestamps(path, records, cols.time)
    except DataFileError as exc:
        if value_error is None or (exc.line or 0) < (value_error.line or 0):
            raise
        raise value_error from None
    if value_error is not None:
        raise value_error
    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        raw = rec.values[cols.id]
        key = "" if raw is None else str(raw).strip()
        if not key:
            raise DataFileError(path, "empty series id", rec.line, cols.id)
        groups.setdefault(key, []).append(i)
    out = []
    for name, idx in groups.items():
        s = _series(path, name, [records[i] for i in idx], stamps[idx], cols, frequency, horizon, horizon_max)
        out.append(s)
    return out


def summary(series: Sequence[UserSeries], path: Path) -> dict[str, Any]:
    """What the report and the manifest say about the data."""
    lengths = np.array([len(s.values) for s in series])
    freqs: dict[str, int] = {}
    for s in series:
        freqs[s.frequency] = freqs.get(s.frequency, 0) + 1
    return {
        "file": path.name,
        "series": len(series),
        "values": int(lengths.sum()),
        "length_min": int(lengths.min()),
        "length_median": float(np.median(lengths)),
        "length_max": int(lengths.max()),
        "frequencies": freqs,
        "per_series": {
            s.name: {
                "length": len(s.values),
                "frequency": s.frequency,
                "frequency_source": s.frequency_source,
                "season_length": s.m,
                "horizon": s.horizon,
                "start": s.start,
                "end": s.end,
            }
            for s in series
        },
        "splits": "per series: the last horizon values are the test, the horizon before them the "
        "validation (option choice, Theta weights, interval calibration), the rest fine-tuning windows",
    }
