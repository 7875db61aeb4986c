"""Bulk scoring with `--engine ray` on a local Ray (2 CPUs, started once for this module): the same
output and errors files as the local engine, for every input format, and a resumed run that
keeps finished parts and scores again the ones a killed run left half-written."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

from app.score.ray_engine import PART, STAGED
from tests.score_support import REVIEWS, score, series, write_jsonl


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def both_engines(tmp_path: Path, task: str, src: Path, suffix: str, *extra: str) -> tuple[Path, Path]:
    local, remote = tmp_path / f"local{suffix}", tmp_path / f"ray{suffix}"
    score(task, src, local, "--part-size", "4", *extra)
    summary = score(task, src, remote, "--part-size", "4", "--engine", "ray", *extra)
    assert summary["engine"] == "ray"
    return local, remote


def errors_of(output: Path) -> str:
    return output.with_name(output.stem + ".errors.jsonl").read_text()


def test_ray_engine_matches_local_engine_on_every_format(score_env: None, tmp_path: Path) -> None:
    rows: list[Any] = [{"id": f"r{i}", "text": t} for i, t in enumerate(REVIEWS)]
    rows[3] = {"id": "bad", "text": 5}  # one bad row, in the middle of a part
    jsonl = write_jsonl(tmp_path / "in.jsonl", [*rows, "{not json"])
    local, remote = both_engines(tmp_path, "sentiment", jsonl, ".jsonl", "--option", "return_attention=true")
    assert remote.read_text() == local.read_text()
    assert errors_of(remote) == errors_of(local)
    assert [json.loads(e)["row"] for e in errors_of(remote).splitlines()] == [4, len(rows) + 1]

    with (tmp_path / "in.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text"])
        writer.writeheader()
        writer.writerows({"id": r["id"], "text": r["text"]} for r in rows)
    local, remote = both_engines(tmp_path, "sentiment", tmp_path / "in.csv", ".csv", "--workers", "1")
    assert remote.read_text() == local.read_text()
    assert errors_of(remote) == errors_of(local)

    # Parquet with list columns, for the forecaster; small row groups, so parts cut across them
    series_rows = [{"id": i, "frequency": None, **series(20 + 3 * i, 2 + i % 3, i / 3)} for i in range(9)]
    series_rows[5] = {"id": 5, "frequency": None, "values": [1.0, 2.0], "horizon": 1}  # too short: 422
    pq.write_table(pa.Table.from_pylist(series_rows), tmp_path / "s.parquet", row_group_size=3)
    local, remote = both_engines(tmp_path, "forecast", tmp_path / "s.parquet", ".parquet", "--workers", "1")
    assert pq.read_table(remote).equals(pq.read_table(local))
    assert pq.read_table(remote).num_rows == 8
    assert errors_of(remote) == errors_of(local) != ""


def test_ray_resume_keeps_finished_parts_and_rescores_half_written_ones(
    score_env: None, tmp_path: Path
) -> None:
    rows = [{"id": i, "text": REVIEWS[i % len(REVIEWS)]} for i in range(10)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    reference = tmp_path / "ref.jsonl"
    score("sentiment", src, reference, "--part-size", "4", "--keep-parts")
    staging = tmp_path / "out.jsonl.parts"
    (tmp_path / "ref.jsonl.parts").rename(staging)
    # As a run killed mid-way leaves it (started locally: the engines share parts): part 0
    # finished; part 1 never harvested; part 2 half written by Ray (one of its two rows).
    manifest = json.loads((staging / "manifest.json").read_text())
    for part in ("1", "2"):
        del manifest["parts"][part]
        for f in staging.glob(f"part-0000{part}*"):
            f.unlink()
    (staging / "manifest.json").write_text(json.dumps(manifest))
    half = staging / "ray" / f"{PART}=2"
    half.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([{"row": 9, "ok": True, "record": "{}"}], schema=STAGED.remove(0)),
        half / "x.parquet",
    )
    finished = (staging / "part-00000.jsonl").stat().st_mtime_ns

    summary = score(
        "sentiment", src, out, "--part-size", "4", "--engine", "ray", "--workers", "1", "--keep-parts"
    )
    assert summary["scored_this_run"] == 6  # parts 1 and 2 (rows 5-10), not part 0
    assert (staging / "part-00000.jsonl").stat().st_mtime_ns == finished
    assert not (staging / "ray").exists()  # harvested
    assert out.read_text() == reference.read_text()
