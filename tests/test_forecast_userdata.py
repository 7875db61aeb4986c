"""`python -m training.forecast --series FILE --name NAME`: a user's long-format series (CSV or
Parquet, any column names, frequency inferred or given) are read and checked; every bad file is a
DataFileError naming file, line and column, and no bundle is written; a run on a tiny file ships a
bundle the service serves and bulk scoring agrees with; a re-run that beats nothing writes
nothing. The competition model is the same command's other preset. Everything is built here in
tmp_path, from a tiny random-weight base bundle (tests/forecast_support.py)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.core.bundle import read_manifest
from app.core.settings import Settings
from app.main import create_app
from tests.forecast_support import HORIZON_MAX, assert_nested_intervals, write_tiny_bundle
from tests.score_support import read_jsonl, score, set_env, write_jsonl
from training.forecast.custom import UserRun, load_net, verdict
from training.forecast.longformat import Columns, read_long_series
from training.forecast.train import main
from training.userdata import DataFileError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle runs start from (instead of the shipped models/forecast): horizon_max 6."""
    _, path = write_tiny_bundle(tmp_path_factory.mktemp("base"))
    return path


def _frame(
    lengths: Sequence[int] = (40, 45, 50),
    freq: str = "MS",
    names: tuple[str, str, str] = ("unique_id", "ds", "y"),
    seed: int = 0,
) -> pd.DataFrame:
    """Trending series with a 12-step season, one per length, timestamps as ISO text."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, n in enumerate(lengths):
        t = np.arange(n)
        y = (50 + 5 * k + 0.5 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 1, n)
        ds = pd.date_range("2015-01-01", periods=n, freq=freq)
        frames.append(
            pd.DataFrame({names[0]: f"s{k}", names[1]: ds.strftime("%Y-%m-%d %H:%M"), names[2]: y.round(3)})
        )
    return pd.concat(frames, ignore_index=True)


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def _run(tmp_path: Path, base: Path, series: Path, *extra: str) -> Path:
    """The command, in-process, into tmp_path/models; a short fine-tuning."""
    models = tmp_path / "models"
    argv = ["--series", str(series), "--model-dir", str(models), "--base", str(base)]
    argv += ["--steps", "2", "--eval-every", "1", "--batch-size", "16", "--threads", "1", *extra]
    if "--name" not in extra:
        argv += ["--name", "demo"]
    main(argv)
    return models


# ---------------------------------------------------------------- reading


def test_csv_frequency_inferred_and_splits(tmp_path: Path) -> None:
    frame = _frame()
    shuffled = frame.sample(frac=1.0, random_state=1)  # rows in any order
    series = read_long_series(_csv(tmp_path / "s.csv", shuffled), horizon=3, horizon_max=HORIZON_MAX)
    assert [s.name for s in series] == shuffled["unique_id"].drop_duplicates().tolist()  # first seen first
    series.sort(key=lambda s: s.name)
    s0 = series[0]
    assert (s0.frequency, s0.frequency_source, s0.m, s0.horizon) == ("MS", "inferred", 12, 3)
    expected = frame[frame.unique_id == "s0"]["y"].to_numpy()
    np.testing.assert_allclose(s0.values, expected)  # back in time order
    comp = s0.as_comp()
    np.testing.assert_allclose(comp.test, expected[-3:])  # the last horizon: test
    np.testing.assert_allclose(comp.val_target, expected[-6:-3])  # the one before: validation
    np.testing.assert_allclose(comp.fit_part, expected[:-6])


def test_parquet_other_column_names_and_given_frequency(tmp_path: Path) -> None:
    frame = _frame(lengths=(30, 31), freq="W-SUN", names=("store", "week", "sales"))
    frame["week"] = pd.to_datetime(frame["week"])  # a Parquet timestamp column, not text
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path, index=False)
    series = read_long_series(
        path, Columns("store", "week", "sales"), frequency="W-SUN", horizon=4, horizon_max=HORIZON_MAX
    )
    assert [(s.name, len(s.values), s.frequency, s.frequency_source, s.m) for s in series] == [
        ("s0", 30, "W-SUN", "given", 52),
        ("s1", 31, "W-SUN", "given", 52),
    ]


def test_mixed_frequencies_each_inferred_with_its_own_default_horizon(tmp_path: Path) -> None:
    frame = pd.concat(
        [_frame(lengths=(60,), freq="D"), _frame(lengths=(120,), freq="h").assign(unique_id="hourly")]
    )
    series = read_long_series(_csv(tmp_path / "mixed.csv", frame), horizon_max=48)
    assert [(s.name, s.frequency, s.m, s.horizon) for s in series] == [
        ("s0", "D", 7, 14),
        ("hourly", "h", 24, 48),
    ]


# ---------------------------------------------------------------- bad files


def _lines(frame: pd.DataFrame) -> list[str]:
    return frame.to_csv(index=False).splitlines()


def _bad_files() -> list[tuple[str, Any, list[str], str]]:
    """(id, file content: text lines or bytes, extra arguments, expected message pattern)."""
    good = _lines(_frame(lengths=(12, 12)))  # line 1 the header, series s0 on lines 2-13
    rename = [good[0].replace(",y", ",value"), *good[1:]]
    empty_y = [*good[:3], "s0,2015-03-04 00:00,", *good[4:]]
    text_y = [*good[:3], "s0,2015-03-04 00:00,12.5kg", *good[4:]]
    empty_ds = [*good[:3], "s0,,12.5", *good[4:]]
    bad_ds = [*good[:3], "s0,2015-13-45,12.5", *good[4:]]
    dup = [*good[:4], good[3], *good[5:]]
    gap = [*good[:4], *good[5:]]
    short = [*good, *_lines(_frame(lengths=(8,)).assign(unique_id="tiny"))[1:]]
    h3 = ["--horizon", "3"]
    latin1 = "\n".join([*good[:2], "s0,2015-02-04 00:00,12.5 \u00b0C", *good[3:]]).encode("latin-1")
    return [
        ("missing column", rename, h3, r"s\.csv:1: no column 'y' \(the file has 'unique_id', 'ds', 'value'"),
        ("empty y", empty_y, h3, r"s\.csv:4: column 'y': empty value"),
        ("text in y", text_y, h3, r"s\.csv:4: column 'y': '12.5kg' is not a number"),
        ("empty ds", empty_ds, h3, r"s\.csv:4: column 'ds': empty timestamp"),
        ("unparseable ds", bad_ds, h3, r"s\.csv:4: column 'ds': '2015-13-45' is not an ISO 8601 date"),
        (
            "duplicate timestamp",
            dup,
            h3,
            r"s\.csv:5: column 'ds': series 's0': timestamp '2015-03-01 00:00' appears twice "
            r"\(lines 4 and 5\)",
        ),
        (
            "gap at a given frequency",
            gap,
            ["--frequency", "MS", *h3],
            r"s\.csv:5: column 'ds': series 's0': '2015-05-01 00:00' does not follow '2015-03-01 00:00'",
        ),
        ("gap, frequency inferred", gap, h3, r"s\.csv:5: column 'ds': series 's0': cannot infer a frequency"),
        ("non-UTF-8 byte", latin1, h3, r"s\.csv:3:26: byte 0xb0 is not UTF-8"),
        ("empty file", b"", h3, r"s\.csv: the file is empty"),
        ("header only", [good[0]], h3, r"s\.csv: the file holds a header but no rows"),
        (
            "series too short",
            short,
            h3,
            r"s\.csv:26: column 'unique_id': series 'tiny' has 8 values; it needs at least 9",
        ),
        (
            "unknown frequency",
            good,
            ["--frequency", "fortnightly", *h3],
            r"s\.csv: --frequency: unknown frequency",
        ),
        ("horizon above horizon_max", good, ["--horizon", "7"], r"s\.csv: --horizon 7 is outside 1\.\.6"),
        (
            "default horizon above horizon_max",
            good,
            [],  # no --horizon: monthly series take 18
            r"s\.csv:2: column 'ds': series 's0': its default horizon 18 \(MS\) is above the model's "
            r"horizon_max 6",
        ),
    ]


@pytest.mark.parametrize(
    ("content", "extra", "message"), [c[1:] for c in _bad_files()], ids=[c[0] for c in _bad_files()]
)
def test_bad_file_names_file_line_column_and_writes_nothing(
    tmp_path: Path, base: Path, content: Any, extra: list[str], message: str
) -> None:
    path = tmp_path / "s.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text("\n".join(content) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=message) as info:
        _run(tmp_path, base, path, *extra)
    assert info.value.path == path
    assert not (tmp_path / "models").exists()  # nothing written, not even the model folder


def test_bad_parquet_cell_names_its_row_and_writes_nothing(tmp_path: Path, base: Path) -> None:
    frame = _frame(lengths=(12, 12))
    frame.loc[3, "y"] = np.nan  # a null in the fourth data row (Parquet rows count from 1)
    path = tmp_path / "s.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(DataFileError, match=r"s\.parquet:4: column 'y': empty value"):
        _run(tmp_path, base, path, "--horizon", "3")
    assert not (tmp_path / "models").exists()


def test_the_command_prints_the_error_and_exits_2(tmp_path: Path, base: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("unique_id,ds,y\na,2020-01-01,1\na,2020-02-01,oops\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "training.forecast", "--series", str(path), "--name", "demo", "--horizon", "1",
         "--base", str(base), "--model-dir", str(tmp_path / "models")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {path}:3: column 'y': 'oops' is not a number"
    assert not (tmp_path / "models").exists()


# ---------------------------------------------------------------- end to end


def test_trains_ships_serves_and_scores_like_the_api(
    tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _frame()
    path = _csv(tmp_path / "s.csv", frame)
    # Named after the task until the multi-model loader lands: the service finds it as "forecast".
    models = _run(tmp_path, base, path, "--name", "forecast", "--horizon", "3")
    bundle = models / "forecast" / "1.0.0"
    manifest = read_manifest(bundle)
    assert manifest.task == "forecast"
    chosen = manifest.metrics["shipped_option"]
    by_option = manifest.metrics["validation"]["by_option"]
    assert chosen == min(by_option, key=by_option.get)  # the best servable option on validation
    assert set(manifest.metrics["validation"]["baselines"]) == {"SeasonalNaive", "AutoETS", "Theta"}
    assert {"forecast 0.0.1 as it is", "forecast 0.0.1 fine-tuned"} <= set(by_option)
    assert manifest.data["series"] == 3
    assert manifest.data["per_series"]["s1"] == {
        "length": 45, "frequency": "MS", "frequency_source": "inferred", "season_length": 12, "horizon": 3,
        "start": "2015-01-01 00:00", "end": "2018-09-01 00:00",
    }  # fmt: skip
    # Calibrated on this file's series; three monthly ones are too few for a table of their own.
    assert manifest.preprocessing["intervals"].keys() == {"all"}
    assert manifest.preprocessing["intervals"] != read_manifest(base).preprocessing["intervals"]
    report = (bundle / "REPORT.md").read_text()
    for text in (
        "## Data",
        "## Options",
        "## Shipped",
        "## Run",
        "AutoETS",
        f"**{chosen}** (shipped)",
        "min",
    ):
        assert text in report
    assert manifest.metrics["verdict"] in report

    # Served by the app: forecasts of the file's series, dated after their last timestamps.
    s0 = frame[frame.unique_id == "s0"]
    body = {
        "series": [{"values": s0["y"].tolist(), "horizon": 3, "timestamps": s0["ds"].tolist()}],
        "levels": [50, 80, 95],
    }
    settings = Settings(_env_file=None, model_dir=models)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        r = client.post("/forecast", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["version"] == "1.0.0"
        forecast = answer["forecasts"][0]
        assert len(forecast["point"]) == 3
        assert forecast["season_length"] == 12
        assert forecast["timestamps"][0].startswith("2018-05-01")
        assert_nested_intervals(forecast)
        # Bulk scoring with the new bundle answers as the API does.
        set_env(monkeypatch, models)
        rows = [
            {"id": name, "values": g["y"].tolist(), "horizon": 3, "frequency": "MS"}
            for name, g in frame.groupby("unique_id")
        ]
        score(
            "forecast",
            write_jsonl(tmp_path / "in.jsonl", rows),
            tmp_path / "out.jsonl",
            "--option",
            "levels=[80]",
        )
        api = client.post(
            "/forecast",
            json={"series": [{k: v for k, v in r.items() if k != "id"} for r in rows], "levels": [80]},
        )
    got = read_jsonl(tmp_path / "out.jsonl")
    assert [g["id"] for g in got] == ["s0", "s1", "s2"]
    for g, expected in zip(got, api.json()["forecasts"], strict=True):
        assert {k: v for k, v in g.items() if k not in ("id", "row")} == expected

    # The same run again beats nothing it has not already shipped: nothing is written.
    _run(tmp_path, base, path, "--name", "forecast", "--horizon", "3")
    assert sorted(p.name for p in (models / "forecast").iterdir()) == ["1.0.0"]
    # --force ships the best other option as the next version.
    _run(tmp_path, base, path, "--name", "forecast", "--horizon", "3", "--force")
    assert sorted(p.name for p in (models / "forecast").iterdir()) == ["1.0.0", "1.1.0"]


# ---------------------------------------------------------------- the competition preset


def _competition_files(folder: Path) -> None:
    """A few series per competition file, in the files' own format."""
    rng = np.random.default_rng(0)
    spec = {
        "m3.jsonl.gz": ("monthly", 12, 18, 60),
        "tourism.jsonl.gz": ("quarterly", 4, 8, 40),
        "m4_hourly.jsonl.gz": ("hourly", 24, 48, 200),
        "m4_weekly.jsonl.gz": ("weekly", 52, 13, 120),
    }
    folder.mkdir(parents=True)
    for name, (period, m, h, n) in spec.items():
        lines = []
        for k in range(3):
            t = np.arange(n + h)
            y = 100 + t + 10 * np.sin(2 * np.pi * t / max(m, 2)) + rng.normal(0, 1, n + h)
            row = {"id": f"{period}{k}", "period": period, "seasonality": m, "category": "x", "h": h}
            lines.append(json.dumps({**row, "train": y[:n].tolist(), "test": y[n:].tolist()}))
        (folder / name).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_no_data_arguments_run_the_competition_preset(tmp_path: Path) -> None:
    _competition_files(tmp_path / "data" / "competitions")
    summary_path = tmp_path / "summary.json"
    main(["--data-dir", str(tmp_path / "data"), "--steps", "2", "--eval-every", "1", "--batch-size", "8",
          "--hidden", "8", "--max-window", "16", "--baselines", "", "--no-real", "--no-export",
          "--summary", str(summary_path), "--threads", "1"])  # fmt: skip
    summary = json.loads(summary_path.read_text())
    args = summary["args"]
    assert (args["preset"], args["version"], args["lr"], args["theta_weights"]) == (
        "competitions", "2.0.0", "0.002", "0,0.25,0.4,0.5,0.6,0.75"
    )  # fmt: skip
    # The competition options, scored on the competition groups, as the shipped model's run has them.
    names = list(summary["val_scores"]["by_option"])
    assert names[0] == "LSTM"
    assert names[1].startswith("LSTM + Theta (w=")
    assert names[2] == "LSTM + Theta (w per season length)"
    assert summary["chosen"] in summary["val_scores"]["by_option"]
    assert {"Naive2", "Theta (numpy)"} <= set(summary["tables"])
    assert {"M3 monthly", "Tourism quarterly", "M4 hourly", "M4 weekly"} <= set(summary["tables"]["LSTM"])


# ---------------------------------------------------------------- what the report says shipped


def test_verdict_says_when_a_baseline_the_service_cannot_serve_won(tmp_path: Path, base: Path) -> None:
    run = UserRun([], load_net(base), None, "old 1.0.0 (current) as it is", "demo", "1.1.0", tmp_path, {})
    summary: dict[str, Any] = {
        "val_scores": {"by_option": {"old 1.0.0 (current) as it is": 0.9, "fine-tuned": 0.8}},
        "baseline_validation": {"AutoETS": 0.7, "Theta": 0.95},
        "chosen": "fine-tuned",
    }
    text = verdict(summary, run, force=False)
    assert text == (
        "The best option on validation is statsforecast's AutoETS (0.7000), which the service cannot "
        "serve (its forecast task runs the LSTM + Theta pipeline only); the best servable option is "
        "fine-tuned (0.8000). Shipped: fine-tuned."
    )
    # The incumbent still best among the servable options: nothing written, unless --force.
    summary["val_scores"]["by_option"]["old 1.0.0 (current) as it is"] = 0.75
    assert run.pick(summary["val_scores"]["by_option"], force=False) == "old 1.0.0 (current) as it is"
    assert verdict(summary, run, force=False).endswith("nothing beat it on validation, nothing was written.")
    assert run.pick(summary["val_scores"]["by_option"], force=True) == "fine-tuned"
