"""The shipped forecaster through POST /forecast on series whose future is known: it follows a
season it is told or finds, beats seasonal naive on the airline series, forecasts 48 steps of an
hourly series and 7-value histories, with nested intervals. Uses models/forecast (in the
repository), never ../shared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.bundle import read_manifest, resolve_bundle_dir
from app.core.settings import Settings
from app.main import create_app
from tests.forecast_support import assert_nested_intervals
from tests.test_forecast_model import AIRLINE

SHIPPED = Path(__file__).resolve().parents[1] / "models"


def _shipped_is_seasonal() -> bool:
    try:
        return "theta_weights" in read_manifest(resolve_bundle_dir(SHIPPED, "forecast")).preprocessing
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _shipped_is_seasonal(), reason="models/forecast holds no seasonal bundle")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings(_env_file=None, model_dir=SHIPPED, models="forecast")  # type: ignore[call-arg]
    with TestClient(create_app(settings, task_packages={"forecast": "app.forecast"})) as c:
        yield c


def _forecast(client: TestClient, series: dict[str, Any], levels: list[int] | None = None) -> dict[str, Any]:
    r = client.post("/forecast", json={"series": [series], "levels": levels or [50, 80, 95]})
    assert r.status_code == 200, r.text
    return r.json()["forecasts"][0]  # type: ignore[no-any-return]


def _trend_season(n: int, m: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    shape = np.sin(2 * np.pi * t / m) + 0.5 * np.cos(4 * np.pi * t / m)
    return (200 + 1.5 * t) * (1 + 0.15 * shape) * (1 + 0.01 * rng.normal(size=n))


@pytest.mark.parametrize(
    ("extra", "source"),
    [({"seasonality": 12}, "seasonality"), ({"frequency": "MS"}, "frequency"), ({}, "estimated")],
)
def test_follows_a_trend_and_season_given_or_inferred(
    client: TestClient, extra: dict[str, Any], source: str
) -> None:
    y = _trend_season(96 + 24, 12)
    f = _forecast(client, {"values": y[:96].tolist(), "horizon": 24, **extra})
    assert (f["season_length"], f["season_source"], f["deseasonalised"]) == (12, source, True)
    assert np.corrcoef(f["point"], y[96:])[0, 1] > 0.9
    assert_nested_intervals(f)


def test_beats_seasonal_naive_on_the_airline_series(client: TestClient) -> None:
    y = np.asarray(AIRLINE, np.float64)
    f = _forecast(client, {"values": y[:-12].tolist(), "horizon": 12, "frequency": "MS"})
    err = np.mean(np.abs(np.array(f["point"]) - y[-12:]))
    snaive = np.mean(np.abs(y[-24:-12] - y[-12:]))
    assert err < snaive
    assert np.corrcoef(f["point"], y[-12:])[0, 1] > 0.9


def test_hourly_horizon_48(client: TestClient) -> None:
    y = _trend_season(24 * 20 + 48, 24, seed=1)
    f = _forecast(client, {"values": y[:-48].tolist(), "horizon": 48, "frequency": "h"})
    assert len(f["point"]) == 48
    assert f["season_length"] == 24
    assert np.corrcoef(f["point"], y[-48:])[0, 1] > 0.9
    assert_nested_intervals(f)


def test_short_history_and_flat_series(client: TestClient) -> None:
    f = _forecast(client, {"values": [102.0, 108.0, 111.0, 117.0, 121.0, 126.0, 133.0], "horizon": 4})
    assert len(f["point"]) == 4
    assert f["point"][0] > 121.0
    flat = _forecast(client, {"values": [4.2] * 30, "horizon": 6})
    np.testing.assert_allclose(flat["point"], 4.2, rtol=0.03)  # a flat history: a (near) flat forecast
