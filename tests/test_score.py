"""Bulk scoring (`python -m app.score`), local engine: every row's answer is, field for field, what
POST /<task> answers for that row's body; bad rows land in the errors file with the API's own 422
detail; an interrupted run resumes without rescoring finished parts; JSON Lines, CSV and Parquet
round trips. Small fixture files and tiny random-weight bundles, made here."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

import app.score.job as job_module
from app.core.settings import Settings
from app.main import create_app
from app.score.__main__ import main
from app.score.files import read_output
from tests.score_support import (
    DOCS,
    LIMITS,
    REVIEWS,
    ROOT,
    read_jsonl,
    score,
    series,
    write_jsonl,
)


@pytest.fixture(scope="session")
def settings(score_model_dir: Path) -> Settings:
    return Settings(_env_file=None, model_dir=score_model_dir, **LIMITS)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


# ---------------------------------------------------------------- same answers as the API


def test_sentiment_rows_match_post_sentiment(client: TestClient, score_env: None, tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(REVIEWS)]
    src = write_jsonl(tmp_path / "reviews.jsonl", rows)
    # batch size 3 and parts of 5 rows: answers must not depend on batch company or part cuts
    summary = score("sentiment", src, tmp_path / "out.jsonl", "--option", "return_attention=true",
                    "--batch-size", "3", "--part-size", "5")  # fmt: skip
    assert summary["rows"] == len(REVIEWS)
    assert summary["ok"] == len(REVIEWS)
    assert summary["errors"] == 0
    api = client.post("/sentiment", json={"texts": REVIEWS, "return_attention": True})
    assert api.status_code == 200
    got = read_jsonl(tmp_path / "out.jsonl")
    assert [g["id"] for g in got] == [r["id"] for r in rows]
    assert [g["row"] for g in got] == list(range(1, len(rows) + 1))
    for g, expected in zip(got, api.json()["predictions"], strict=True):
        assert {k: v for k, v in g.items() if k not in ("id", "row")} == expected
    assert not (tmp_path / "out.jsonl.parts").exists()  # staging removed after success


def test_ner_rows_match_post_ner(client: TestClient, score_env: None, tmp_path: Path) -> None:
    tokens = ["EU", "rejects", "German", "call", "."]
    src = write_jsonl(tmp_path / "docs.jsonl", [{"text": DOCS[0]}, {"tokens": tokens}, {"text": DOCS[1]}])
    score("ner", src, tmp_path / "ents.jsonl", "--option", "return_tags=true")
    got = read_jsonl(tmp_path / "ents.jsonl")
    texts = client.post("/ner", json={"texts": [DOCS[0], DOCS[1]], "return_tags": True}).json()["results"]
    pre = client.post("/ner", json={"tokens": [tokens], "return_tags": True}).json()["results"]
    assert [g["id"] for g in got] == [1, 2, 3]
    for g, expected in zip(got, [texts[0], pre[0], texts[1]], strict=True):
        assert {k: v for k, v in g.items() if k not in ("id", "row")} == expected
        assert expected["tokens"]  # return_tags reached the pipeline


def test_forecast_rows_match_post_forecast(client: TestClient, score_env: None, tmp_path: Path) -> None:
    rows = [
        {"id": "a", **series(30, 3)},
        {"id": "b", **series(12, 2, 1.0), "frequency": "MS",
         "timestamps": [f"2020-{m:02d}-01" for m in range(1, 13)]},
        {"id": "c", **series(45, 4, 2.0)},
    ]  # fmt: skip
    src = write_jsonl(tmp_path / "series.jsonl", rows)
    score("forecast", src, tmp_path / "fc.jsonl", "--option", "levels=[50, 80]")
    got = read_jsonl(tmp_path / "fc.jsonl")
    body = {"series": [{k: v for k, v in r.items() if k != "id"} for r in rows], "levels": [50, 80]}
    api = client.post("/forecast", json=body)
    assert api.status_code == 200, api.text
    for g, expected in zip(got, api.json()["forecasts"], strict=True):
        assert {k: v for k, v in g.items() if k not in ("id", "row")} == expected
    assert got[1]["timestamps"][0].startswith("2021-01-01")


# ---------------------------------------------------------------- bad rows


def test_bad_rows_go_to_the_errors_file_with_the_api_detail(
    client: TestClient, score_env: None, tmp_path: Path
) -> None:
    rows: list[Any] = [
        {"id": "ok1", "text": "A great film."},
        {"id": "missing"},  # no text column
        {"id": "type", "text": 5},  # wrong type
        {"id": "long", "text": "a " * 200},  # over MAX_TEXT_CHARS
        {"id": "empty", "text": "<br /><br />"},  # no tokens
        "{not json",
        "[1, 2]",
        {"id": "ok2", "text": "awful movie"},
    ]
    src = write_jsonl(tmp_path / "mixed.jsonl", rows)
    summary = score("sentiment", src, tmp_path / "out.jsonl")
    assert (summary["ok"], summary["errors"]) == (2, 6)
    assert [g["id"] for g in read_jsonl(tmp_path / "out.jsonl")] == ["ok1", "ok2"]
    errors = read_jsonl(tmp_path / "out.errors.jsonl")
    assert [e["row"] for e in errors] == [2, 3, 4, 5, 6, 7]
    assert [e["id"] for e in errors] == ["missing", "type", "long", "empty", 6, 7]
    for error, row in zip(errors[:4], rows[1:5], strict=True):
        body = {"texts": [row["text"]]} if "text" in row else {}
        api = client.post("/sentiment", json=body)
        assert api.status_code == 422
        assert error["status"] == 422
        assert error["detail"] == api.json()["detail"]
    api = client.post("/sentiment", content=b"{not json", headers={"content-type": "application/json"})
    assert errors[4]["detail"] == api.json()["detail"]
    assert errors[5]["detail"] == client.post("/sentiment", json=[1, 2]).json()["detail"]
    assert "characters" in errors[2]["detail"][0]["msg"]  # the limit message, not a generic one


def test_bad_forecast_rows_carry_the_api_detail(client: TestClient, score_env: None, tmp_path: Path) -> None:
    rows = [{"id": 1, **series(20, 2)}, {"id": 2, "values": [1.0, 2.0], "horizon": 1},
            {"id": 3, **series(20, 0)}, {"id": 4, "horizon": 2}, {"id": 5, **series(80, 2)}]  # fmt: skip
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    summary = score("forecast", src, tmp_path / "fc.jsonl")
    assert (summary["ok"], summary["errors"]) == (1, 4)
    for error, row in zip(read_jsonl(tmp_path / "fc.errors.jsonl"), rows[1:], strict=True):
        item = {k: v for k, v in row.items() if k != "id"}
        assert error["detail"] == client.post("/forecast", json={"series": [item]}).json()["detail"]


def test_a_bad_option_stops_before_any_row(score_env: None, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "r.jsonl", [{"text": "A great film."}])
    with pytest.raises(SystemExit, match="return_attention"):
        main(["sentiment", str(src), str(tmp_path / "o.jsonl"), "--option", "return_attention=3"])
    with pytest.raises(SystemExit, match="texts"):
        main(["sentiment", str(src), str(tmp_path / "o.jsonl"), "--option", 'texts=["x"]'])


# ---------------------------------------------------------------- formats


def test_csv_and_parquet_round_trips_give_the_jsonl_answers(score_env: None, tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(REVIEWS)]
    score("sentiment", write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "ref.jsonl")
    reference = read_jsonl(tmp_path / "ref.jsonl")

    with (tmp_path / "in.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text"])
        writer.writeheader()
        writer.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    for source in ("in.csv", "in.parquet"):
        for sink in ("out.jsonl", "out.csv", "out.parquet"):
            score("sentiment", tmp_path / source, tmp_path / sink, "--restart")
            got = read_output(tmp_path / sink)
            assert len(got) == len(reference), (source, sink)
            for g, r in zip(got, reference, strict=True):
                assert g["id"] == r["id"]
                assert int(g["row"]) == r["row"]
                assert g["label"] == r["label"]
                assert {k: float(v) for k, v in g["probabilities"].items()} == r["probabilities"]
                assert int(g["tokens"]) == r["tokens"]
                assert str(g["truncated"]).lower() == str(r["truncated"]).lower()


def test_forecast_from_csv_reads_list_cells_as_json(
    client: TestClient, score_env: None, tmp_path: Path
) -> None:
    s = series(24, 3)
    with (tmp_path / "s.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "values", "horizon", "frequency"])
        writer.writerow(["x", json.dumps(s["values"]), "3", ""])  # empty cell: no frequency
        writer.writerow(["y", "1, 2, 3", "3", ""])  # not a JSON list: the API's list error
    summary = score("forecast", tmp_path / "s.csv", tmp_path / "fc.jsonl")
    assert (summary["ok"], summary["errors"]) == (1, 1)
    (got,) = read_jsonl(tmp_path / "fc.jsonl")
    expected = client.post("/forecast", json={"series": [s]}).json()["forecasts"][0]
    assert {k: v for k, v in got.items() if k not in ("id", "row")} == expected
    (error,) = read_jsonl(tmp_path / "fc.errors.jsonl")
    assert error["id"] == "y"
    assert error["detail"][0]["loc"] == ["body", "series", 0, "values"]


# ---------------------------------------------------------------- resume


def test_interrupted_run_resumes_without_rescoring_finished_parts(
    score_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"id": i, "text": REVIEWS[i % len(REVIEWS)]} for i in range(23)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    score("sentiment", src, tmp_path / "ref.jsonl", "--part-size", "5")

    scored_rows: list[int] = []
    real_write = job_module.Staging.write_part

    def crash_after_two(self: Any, manifest: Any, part: int, scored: list[Any]) -> None:
        if len(manifest.parts) == 2:
            raise KeyboardInterrupt  # as if killed while scoring the third part
        real_write(self, manifest, part, scored)

    monkeypatch.setattr(job_module.Staging, "write_part", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        score("sentiment", src, out, "--part-size", "5")
    assert not out.exists()
    manifest = json.loads((tmp_path / "out.jsonl.parts" / "manifest.json").read_text())
    assert sorted(manifest["parts"]) == ["0", "1"]

    def counting_write(self: Any, manifest: Any, part: int, scored: list[Any]) -> None:
        scored_rows.extend(s.row for s in scored)
        real_write(self, manifest, part, scored)

    monkeypatch.setattr(job_module.Staging, "write_part", counting_write)
    summary = score("sentiment", src, out, "--part-size", "5")
    assert scored_rows == list(range(11, 24))  # parts 0 and 1 (rows 1-10) were not scored again
    assert summary["scored_this_run"] == 13
    assert summary["rows"] == 23
    assert out.read_text() == (tmp_path / "ref.jsonl").read_text()


def test_resume_refuses_parts_of_a_different_job(score_env: None, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in REVIEWS])
    out = tmp_path / "out.jsonl"
    score("sentiment", src, out, "--keep-parts", "--part-size", "4")
    with pytest.raises(SystemExit, match="part_size"):
        score("sentiment", src, out, "--part-size", "3")
    assert score("sentiment", src, out, "--part-size", "3", "--restart")["scored_this_run"] == len(REVIEWS)


# ---------------------------------------------------------------- the command itself


def test_command_line_shows_progress_and_does_not_import_ray(score_env: None, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in REVIEWS])
    code = (
        "import sys, runpy; sys.argv = ['app.score', *sys.argv[1:]];"
        "\ntry: runpy.run_module('app.score', run_name='__main__')"
        "\nexcept SystemExit as e: assert not e.code, e.code"
        "\nassert 'ray' not in sys.modules, 'the local engine imported ray'"
        "\nassert not any(m == 'training' or m.startswith('training.') for m in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "sentiment", str(src), str(tmp_path / "o.jsonl")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "row/s" in proc.stderr
    assert f"{len(REVIEWS)}/{len(REVIEWS)}" in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["ok"] == len(REVIEWS)
    assert np.isfinite(json.loads(proc.stdout.strip().splitlines()[-1])["rows_per_s"])
