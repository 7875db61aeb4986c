"""POST /forecast over HTTP: round trips, dated forecasts, and every 422 the endpoint promises."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.main import create_app
from tests.forecast_support import (
    HORIZON_MAX,
    MAX_WINDOW,
    MIN_WINDOW,
    assert_nested_intervals,
    write_tiny_bundle,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models"
# Other task packages may be mid-edit in this repository; serve only this one.
FORECAST_ONLY = {"forecast": "app.forecast"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("models")
    write_tiny_bundle(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def client(tiny_dir: Path) -> Iterator[TestClient]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, model_dir=tiny_dir, models="forecast", max_series_values=500, max_items_per_request=4
    )
    with TestClient(create_app(settings, task_packages=FORECAST_ONLY)) as c:
        yield c


def _series(n: int = 20, horizon: int = 3, **extra: Any) -> dict[str, Any]:
    return {"values": [10.0 + np.sin(i / 2.0) for i in range(n)], "horizon": horizon, **extra}


def _post(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/forecast", json=body)


def _assert_422(response: Any, loc_tail: list[Any], words: str) -> None:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(d["loc"][-len(loc_tail) :] == loc_tail and words in d["msg"] for d in detail), detail


def test_round_trip_shape_ordering_and_nesting(client: TestClient) -> None:
    body = {"series": [_series(20, 3), _series(MIN_WINDOW, HORIZON_MAX)], "levels": [50, 80, 95]}
    r = _post(client, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == "forecast"
    assert out["interval_levels"] == [50.0, 80.0, 95.0]
    assert [len(f["point"]) for f in out["forecasts"]] == [3, HORIZON_MAX]
    for f in out["forecasts"]:
        assert [i["level"] for i in f["intervals"]] == [50, 80, 95]
        assert_nested_intervals(f)
        hi95, lo95 = np.array(f["intervals"][2]["upper"]), np.array(f["intervals"][2]["lower"])
        assert np.all(hi95 - lo95 > 0)
        assert f["timestamps"] is None
        assert f["history_truncated"] is False


def test_batched_request_matches_single_requests(client: TestClient) -> None:
    a, b = _series(25, 2), _series(9, 2)
    both = _post(client, {"series": [a, b]}).json()["forecasts"]
    alone = [_post(client, {"series": [s]}).json()["forecasts"][0] for s in (a, b)]
    for x, y in zip(both, alone, strict=True):
        np.testing.assert_allclose(x["point"], y["point"], rtol=1e-5, atol=1e-5)


def test_constant_series(client: TestClient) -> None:
    r = _post(client, {"series": [{"values": [4.2] * 30, "horizon": 4}]})
    assert r.status_code == 200, r.text
    f = r.json()["forecasts"][0]
    # random weights: only finiteness; the shipped model's flat answer is tested in test_forecast_quality
    assert all(np.isfinite(v) for v in f["point"])
    assert all(np.isfinite(v) for i in f["intervals"] for v in i["lower"] + i["upper"])
    zeros = _post(client, {"series": [{"values": [0.0] * 12 + [-1.0, 1.0], "horizon": 2}]})
    assert zeros.status_code == 200, zeros.text


def test_long_history_is_all_used(client: TestClient) -> None:
    f = _post(client, {"series": [_series(MAX_WINDOW + 50, 2)]}).json()["forecasts"][0]
    assert f["history_used"] == MAX_WINDOW + 50
    assert f["history_truncated"] is False


def test_short_history_gets_a_forecast(client: TestClient) -> None:
    r = _post(client, {"series": [{"values": [5.0, 6.0, 5.5, 6.5, 7.0, 6.8, 7.4], "horizon": HORIZON_MAX}]})
    assert r.status_code == 200, r.text
    f = r.json()["forecasts"][0]
    assert len(f["point"]) == HORIZON_MAX
    assert all(np.isfinite(f["point"]))


@pytest.mark.parametrize(
    ("extra", "length", "source"),
    [
        ({"seasonality": 4}, 4, "seasonality"),
        ({"seasonality": 4, "frequency": "MS"}, 4, "seasonality"),  # the explicit field wins
        ({"frequency": "MS"}, 12, "frequency"),
        ({"frequency": "h"}, 24, "frequency"),
        (
            {"timestamps": [f"2024-03-{1 + i // 24:02d}T{i % 24:02d}:00:00" for i in range(40)]},
            24,
            "timestamps",
        ),
        ({}, 1, "estimated"),  # a slow sine is no season
    ],
)
def test_answer_names_the_season_length_and_its_source(
    client: TestClient, extra: dict[str, Any], length: int, source: str
) -> None:
    f = _post(client, {"series": [_series(40, 2, **extra)]}).json()["forecasts"][0]
    assert (f["season_length"], f["season_source"]) == (length, source)
    assert isinstance(f["deseasonalised"], bool)


def test_estimated_season_of_a_seasonal_series(client: TestClient) -> None:
    values = [50 + 10 * np.sin(2 * np.pi * i / 7) + 0.1 * i for i in range(70)]
    f = _post(client, {"series": [{"values": values, "horizon": 3}]}).json()["forecasts"][0]
    assert (f["season_length"], f["season_source"], f["deseasonalised"]) == (7, "estimated", True)


@pytest.mark.parametrize("bad", [0, -3, 1.5, "12", 10**6, True])
def test_bad_seasonality_is_422_naming_the_field(client: TestClient, bad: Any) -> None:
    _assert_422(
        _post(client, {"series": [_series(20, 2, seasonality=bad)]}), ["series", 0, "seasonality"], ""
    )
    assert _post(client, {"series": [_series()]}).status_code == 200


def test_timestamps_with_frequency_and_inferred(client: TestClient) -> None:
    stamps = [f"{2000 + i // 12}-{i % 12 + 1:02d}-01" for i in range(14)]
    r = _post(client, {"series": [_series(14, 3, timestamps=stamps, frequency="MS")]})
    assert r.status_code == 200, r.text
    assert r.json()["forecasts"][0]["timestamps"] == [
        "2001-03-01T00:00:00",
        "2001-04-01T00:00:00",
        "2001-05-01T00:00:00",
    ]
    hourly = [f"2024-03-01T{h:02d}:00:00" for h in range(12)]
    f = _post(client, {"series": [_series(12, 2, timestamps=hourly)]}).json()["forecasts"][0]
    assert f["timestamps"] == ["2024-03-01T12:00:00", "2024-03-01T13:00:00"]
    assert f["frequency"] == "h"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_rejected(client: TestClient, literal: str) -> None:
    values = ", ".join(["1.0"] * 10 + [literal] + ["2.0"] * 5)
    # the horizon is also wrong: the NaN check must still answer (a schema error would echo NaN)
    for horizon in ("3", "0"):
        raw = '{"series": [{"values": [' + values + '], "horizon": ' + horizon + "}]}"
        r = client.post("/forecast", content=raw, headers={"content-type": "application/json"})
        _assert_422(r, ["values", 10], "finite")


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ('{"series": [{"values": [1, 2, 3, 4, 5], "horizon": NaN}]}', ["body", "series", 0, "horizon"]),
        (
            '{"series": [{"values": [1, 2, 3, 4, 5], "horizon": 2}], "levels": [Infinity]}',
            ["body", "levels", 0],
        ),
        ('{"series": [{"values": [1, 2, 3, 4, 5], "extra": -Infinity}]}', ["body", "series", 0, "extra"]),
    ],
)
def test_non_finite_anywhere_is_422_not_500(client: TestClient, raw: str, loc: list[Any]) -> None:
    r = client.post("/forecast", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc


@pytest.mark.parametrize(
    ("series", "loc_tail", "words"),
    [
        ({"values": [1.0, 2.0], "horizon": 1}, ["values"], f"at least {MIN_WINDOW} values"),
        (_series(20, HORIZON_MAX + 1), ["horizon"], f"between 1 and {HORIZON_MAX}"),
        (_series(20, 0), ["horizon"], "greater than or equal to 1"),
        (_series(501, 2), ["values"], "at most 500"),
        (_series(20, 2, timestamps=["2020-01-01"] * 3), ["timestamps"], "one timestamp per value"),
        (_series(5, 2, timestamps=[f"2020-01-0{i}" for i in (1, 2, 4, 3, 5)]), ["timestamps"], "increasing"),
        (_series(5, 2, timestamps=["yesterday"] * 5), ["timestamps"], "ISO 8601"),
        (_series(20, 2, frequency="fortnightly"), ["frequency"], "unknown frequency"),
        ({"values": [1.0] * 10 + [1e300], "horizon": 2}, ["values", 10], "finite"),
    ],
)
def test_invalid_series_422_then_still_serves(
    client: TestClient, series: dict[str, Any], loc_tail: list[Any], words: str
) -> None:
    _assert_422(_post(client, {"series": [series]}), loc_tail, words)
    assert _post(client, {"series": [_series()]}).status_code == 200


def test_unsupported_level_and_too_many_series(client: TestClient) -> None:
    _assert_422(_post(client, {"series": [_series()], "levels": [80, 99]}), ["levels", 1], "unsupported")
    _assert_422(_post(client, {"series": [_series()], "levels": [90]}), ["levels", 0], "[50.0, 80.0, 95.0]")
    _assert_422(_post(client, {"series": [_series()] * 5}), ["series"], "at most 4")
    assert _post(client, {"series": [_series()], "levels": [50]}).status_code == 200


def test_models_listing_hides_per_series(client: TestClient) -> None:
    info = next(m for m in client.get("/models").json()["models"] if m["name"] == "forecast")["manifest"]
    assert "per_series" not in json.dumps(info)
    assert info["preprocessing"]["min_window"] == MIN_WINDOW


def test_torchscript_backend_serves_the_same_forecast(client: TestClient, tiny_dir: Path) -> None:
    body = {"series": [_series(30, 4), _series(7, 4, seasonality=12)], "levels": [95]}
    via_onnx = client.post("/forecast", json=body).json()["forecasts"]
    settings = Settings(_env_file=None, model_dir=tiny_dir, models="forecast", backend="torchscript")  # type: ignore[call-arg]
    with TestClient(create_app(settings, task_packages=FORECAST_ONLY)) as ts_client:
        via_ts = ts_client.post("/forecast", json=body).json()["forecasts"]
    for a, b in zip(via_onnx, via_ts, strict=True):
        np.testing.assert_allclose(a["point"], b["point"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            a["intervals"][0]["upper"], b["intervals"][0]["upper"], rtol=1e-5, atol=1e-5
        )
