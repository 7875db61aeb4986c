"""A long-format file such as a user would bring, made from real series of
`../shared/data/timeseries` (see its README), for trying `--series` on real data:

    python -m training.forecast.examples /tmp/timeseries_long.csv
    python -m training.forecast --series /tmp/timeseries_long.csv --name timeseries --horizon 12

Ten series at four frequencies (monthly, weekly, daily, half-hourly), each with its timestamps as
the source file writes them, so the frequency of every series is inferred. The data is not
committed; this script is how to remake it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from training.forecast.data import DEFAULT_DATA_DIR

# (series id, file, time column, value column)
COLUMNS = [
    ("sunspots_monthly", "sunspots_monthly.csv", "month", "sunspots"),
    ("elnino_sst_monthly", "elnino_sst_monthly.csv", "month", "sst"),
    ("co2_weekly", "co2_weekly_maunaloa.csv", "date", "co2"),
    ("seattle_temp_max_daily", "seattle_weather_daily.csv", "date", "temp_max"),
    (
        "electricity_demand_halfhourly",
        "electricity_demand_england_wales_halfhourly.csv",
        "timestamp",
        "demand_mw",
    ),
]
STOCKS = "stocks_monthly_5symbols.csv"


def long_format(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    frames = []
    for name, file, time, value in COLUMNS:
        src = pd.read_csv(data_dir / file)
        y = src[value].astype(float)
        if y.isna().any():
            # The weekly CO2 record has 59 missing weeks; a user would fill them before training
            # (the reader refuses empty values), here linearly, as training.forecast.data does.
            y = y.interpolate(limit_direction="both")
        frames.append(pd.DataFrame({"unique_id": name, "ds": src[time].astype(str), "y": y}))
    stocks = pd.read_csv(data_dir / STOCKS)
    for symbol, group in stocks.groupby("symbol", sort=True):
        frames.append(
            pd.DataFrame(
                {"unique_id": f"stock_{str(symbol).lower()}", "ds": group["date"], "y": group["price"]}
            )
        )
    return pd.concat(frames, ignore_index=True)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.forecast.examples", description=__doc__)
    p.add_argument("out", type=Path, help="CSV (or .parquet) to write")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = p.parse_args(argv)
    frame = long_format(args.data_dir)
    if args.out.suffix == ".parquet":
        frame.to_parquet(args.out, index=False)
    else:
        frame.to_csv(args.out, index=False)
    print(f"wrote {args.out}: {frame['unique_id'].nunique()} series, {len(frame):,} rows")


if __name__ == "__main__":
    main()
