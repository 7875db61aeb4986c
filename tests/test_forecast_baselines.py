"""Baselines and error measures on examples small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.forecast import baselines
from training.forecast.data import Series, Split


def test_naive_repeats_last_value() -> None:
    np.testing.assert_array_equal(baselines.naive(np.array([1.0, 2.0, 5.0]), 3), [5.0, 5.0, 5.0])


def test_seasonal_naive_repeats_last_season() -> None:
    history = np.array([9.0, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(baselines.seasonal_naive(history, 5, 2), [3.0, 4.0, 3.0, 4.0, 3.0])
    # m = 1, or a history shorter than a season, falls back to naive
    np.testing.assert_array_equal(baselines.seasonal_naive(history, 2, 1), [4.0, 4.0])
    np.testing.assert_array_equal(baselines.seasonal_naive(history[:1], 2, 4), [9.0, 9.0])


def test_mase_by_hand() -> None:
    history = np.array([1.0, 3.0, 2.0, 4.0])  # |diffs| = 2, 1, 2 -> naive in-sample MAE 5/3
    actual = np.array([5.0, 6.0])
    forecast = np.array([4.0, 4.0])  # errors 1, 2 -> MAE 1.5
    assert baselines.mase(actual, forecast, history, 1) == pytest.approx(1.5 / (5 / 3))
    # seasonal scale, m = 2: |2-1|, |4-3| -> 1
    assert baselines.mase(actual, forecast, history, 2) == pytest.approx(1.5)


def test_mase_scale_never_zero() -> None:
    assert baselines.mase_scale(np.array([2.0, 2.0, 2.0, 2.0]), 1) == 1.0
    # constant within seasons but not across: falls back to the naive differences
    assert baselines.mase_scale(np.array([1.0, 5.0, 1.0, 5.0]), 2) == pytest.approx(4.0)


def test_smape_by_hand() -> None:
    # 2*|1-3|/(1+3) = 1 and 2*|2-2|/4 = 0 -> mean 0.5 -> 50 %
    assert baselines.smape(np.array([1.0, 2.0]), np.array([3.0, 2.0])) == pytest.approx(50.0)
    assert baselines.smape(np.array([0.0]), np.array([0.0])) == 0.0
    assert baselines.smape(np.array([0.0]), np.array([1.0])) == pytest.approx(200.0)


def test_ets_tracks_a_linear_trend() -> None:
    history = np.arange(40, dtype=np.float64)
    forecast = baselines.ets(history, 3, 1)
    np.testing.assert_allclose(forecast, [40.0, 41.0, 42.0], atol=0.5)


def test_split_holds_out_the_tail() -> None:
    s = Series("x", np.arange(100, dtype=np.float64), "D", 1, 5, "x.csv")
    sp = Split(s, 2)
    assert sp.test_origins == [90, 95]
    assert sp.val_origins == [80, 85]
    assert sp.train_end == 80  # training never reaches validation or test values
