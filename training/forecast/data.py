"""The real series under `../shared/data/timeseries` and their held-out splits.

Each file is read at its own frequency. A series carries its seasonal period `m` (used by the
seasonal-naive baseline, ETS and the MASE scale) and its evaluation horizon. `m` is the cycle the
data really has (the CO2 year, the day of half-hourly demand); where there is none (sunspots'
"months", stock prices) it is 1, so seasonal naive is not handed an invented season.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "timeseries"

# Licences as stated in the data folder's README.md.
LICENCES = {
    "sunspots_yearly.csv": "public domain (NOAA); via statsmodels==0.15.0",
    "sunspots_monthly.csv": "MIT (pmdarima==2.1.1 package); R datasets",
    "co2_weekly_maunaloa.csv": "public domain; via statsmodels==0.15.0",
    "nile_yearly.csv": "public domain; via statsmodels==0.15.0",
    "elnino_sst_monthly.csv": "public domain; via statsmodels==0.15.0",
    "msft_daily_ohlcv.csv": "MIT (pmdarima==2.1.1 package); Kaggle source terms not checked",
    "electricity_demand_england_wales_halfhourly.csv": "MIT (pmdarima==2.1.1 package), Taylor 2003",
    "stocks_monthly_5symbols.csv": "MIT (vega_datasets==0.9.0 package)",
    "seattle_weather_daily.csv": "public domain (NOAA); via vega_datasets==0.9.0",
    "sf_temps_hourly_2010.csv": "public domain (NOAA); via vega_datasets==0.9.0",
}


@dataclass(frozen=True)
class Series:
    name: str
    values: np.ndarray  # float64, no gaps
    frequency: str  # pandas offset alias
    m: int  # seasonal period
    horizon: int  # evaluation horizon
    source: str  # file name
    note: str = ""


@dataclass(frozen=True)
class Split:
    """Rolling-origin evaluation on the tail: `origins` forecast points, each `horizon` apart.

    Test origins cover the last `n_origins * horizon` values; validation origins the same amount
    just before them. Training windows only ever see values before the first validation origin.
    """

    series: Series
    n_origins: int
    train_end: int = field(init=False)
    val_origins: list[int] = field(init=False)
    test_origins: list[int] = field(init=False)

    def __post_init__(self) -> None:
        n, h, k = len(self.series.values), self.series.horizon, self.n_origins
        test = [n - (k - i) * h for i in range(k)]
        val = [t - k * h for t in test]
        object.__setattr__(self, "test_origins", test)
        object.__setattr__(self, "val_origins", val)
        object.__setattr__(self, "train_end", val[0])


def _read(data_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(data_dir / name)


def _col(
    name: str, file: str, column: str, freq: str, m: int, horizon: int, note: str = ""
) -> Callable[[Path], list[Series]]:
    def load(data_dir: Path) -> list[Series]:
        frame = _read(data_dir, file)
        values = frame[column].astype(float)
        missing = int(values.isna().sum())
        if missing:
            # Linear interpolation keeps the weekly grid regular; the count goes in the manifest.
            values = values.interpolate(limit_direction="both")
            note_ = f"{missing} missing values linearly interpolated"
        else:
            note_ = note
        return [Series(name, values.to_numpy(np.float64), freq, m, horizon, file, note_)]

    return load


def _stocks(data_dir: Path) -> list[Series]:
    file = "stocks_monthly_5symbols.csv"
    frame = _read(data_dir, file)
    out = []
    for symbol, group in frame.groupby("symbol", sort=True):
        values = group.sort_values("date")["price"].to_numpy(np.float64)
        out.append(Series(f"stock_{str(symbol).lower()}_monthly", values, "MS", 1, 12, file))
    return out


LOADERS: list[Callable[[Path], list[Series]]] = [
    _col("sunspots_yearly", "sunspots_yearly.csv", "sunspots", "YS", 1, 6),
    _col("sunspots_monthly", "sunspots_monthly.csv", "sunspots", "MS", 1, 18),
    _col("co2_weekly", "co2_weekly_maunaloa.csv", "co2", "W-SAT", 52, 13),
    _col("nile_yearly", "nile_yearly.csv", "volume", "YS", 1, 6),
    _col("elnino_sst_monthly", "elnino_sst_monthly.csv", "sst", "MS", 12, 18),
    _col("msft_close_daily", "msft_daily_ohlcv.csv", "Close", "B", 1, 14, "trading days"),
    _stocks,
    _col("seattle_temp_max_daily", "seattle_weather_daily.csv", "temp_max", "D", 1, 14),
    _col("seattle_temp_min_daily", "seattle_weather_daily.csv", "temp_min", "D", 1, 14),
    _col("seattle_wind_daily", "seattle_weather_daily.csv", "wind", "D", 1, 14),
    _col("sf_temp_hourly", "sf_temps_hourly_2010.csv", "temp", "h", 24, 48, "one hour missing in source"),
    _col(
        "electricity_demand_halfhourly",
        "electricity_demand_england_wales_halfhourly.csv",
        "demand_mw",
        "30min",
        48,
        48,
    ),
]


def load_all(data_dir: Path = DEFAULT_DATA_DIR) -> list[Series]:
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data folder {data_dir} not found (pass --data-dir)")
    return [s for load in LOADERS for s in load(data_dir)]


def n_origins(series: Series, max_origins: int = 3) -> int:
    """Up to `max_origins` test origins, fewer for short series so that training keeps most of
    the history (Nile, the monthly stocks)."""
    return int(np.clip(len(series.values) // (10 * series.horizon), 1, max_origins))


def make_splits(series: list[Series], max_origins: int = 3) -> list[Split]:
    return [Split(s, n_origins(s, max_origins)) for s in series]


def provenance(series: list[Series], data_dir: Path) -> dict[str, object]:
    files = sorted({s.source for s in series})
    info: dict[str, object] = {"dir": "../shared/data/timeseries (README.md there)", "files": {}}
    for f in files:
        raw = (data_dir / f).read_bytes()
        rows = raw.count(b"\n") - 1
        info["files"][f] = {  # type: ignore[index]
            "rows": rows,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "licence": LICENCES.get(f, "see README.md"),
            "series": [s.name for s in series if s.source == f],
        }
    info["series"] = {
        s.name: {
            "length": len(s.values),
            "frequency": s.frequency,
            "m": s.m,
            "horizon": s.horizon,
            "note": s.note,
        }
        for s in series
    }
    return info
