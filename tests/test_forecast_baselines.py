"""Competition error measures and the numpy baselines on examples small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from app.forecast import seasonal
from training.forecast import metrics
from training.forecast.competitions import CompSeries


def test_smape_and_mape_by_hand() -> None:
    a, f = np.array([100.0, 200.0]), np.array([110.0, 180.0])
    assert metrics.smape(a, f) == pytest.approx(100 * (10 / 210 + 20 / 380))
    assert metrics.mape(a, f) == pytest.approx(100 * (0.1 + 0.1) / 2)
    assert metrics.smape(np.zeros(3), np.zeros(3)) == 0.0  # 0/0 steps count as no error
    assert metrics.mape(np.array([0.0, 10.0]), np.array([5.0, 11.0])) == pytest.approx(10.0)  # y == 0 skipped


def test_mase_scale_is_seasonal_and_never_zero() -> None:
    h = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0])
    assert metrics.mase_scale(h, 2) == pytest.approx(1.0)  # |2-1|, |6-5|, |3-2|, |7-6|
    assert metrics.mase_scale(h, 1) == pytest.approx(np.mean(np.abs(np.diff(h))))
    assert metrics.mase_scale(np.full(5, 3.0), 1) == 1.0
    assert metrics.mase(np.array([8.0, 4.0]), np.array([7.0, 6.0]), h, 2) == pytest.approx(1.5)


def test_msis_penalises_misses_by_two_over_alpha() -> None:
    h = np.array([0.0, 1.0, 2.0, 3.0])  # scale 1
    inside = metrics.msis(np.array([5.0]), np.array([4.0]), np.array([6.0]), h, 1, 0.05)
    assert inside == pytest.approx(2.0)
    miss = metrics.msis(np.array([7.0]), np.array([4.0]), np.array([6.0]), h, 1, 0.05)
    assert miss == pytest.approx(2.0 + 40.0)
    assert metrics.coverage(np.array([5.0, 7.0]), np.array([4.0, 4.0]), np.array([6.0, 6.0])) == 0.5


def test_owa_of_naive2_itself_is_one() -> None:
    assert metrics.owa(12.0, 1.5, 12.0, 1.5) == pytest.approx(1.0)
    assert metrics.owa(6.0, 1.5, 12.0, 1.5) == pytest.approx(0.75)
    # Naive2 exact (a constant series): as exact is as good, anything else infinitely worse.
    assert metrics.owa(0.0, 0.0, 0.0, 0.0) == 1.0
    assert metrics.owa(0.5, 0.1, 0.0, 0.0) == float("inf")


def test_naive2_is_naive_without_a_season_and_reseasonalised_with_one() -> None:
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    np.testing.assert_array_equal(seasonal.naive2(x, 3, 1), [5.0, 5.0, 5.0])
    t = np.arange(48)
    factors = np.array([0.8, 1.0, 1.2, 1.0])
    y = 100.0 * factors[t % 4]
    np.testing.assert_allclose(seasonal.naive2(y, 4, 4), 100.0 * factors[np.arange(48, 52) % 4], rtol=1e-6)


def test_theta_of_a_constant_is_the_constant_and_follows_a_trend() -> None:
    np.testing.assert_allclose(seasonal.theta(np.full(20, 7.0), 5), 7.0)
    line = 10.0 + 2.0 * np.arange(40)
    fc = seasonal.theta(line, 4)
    assert np.all(np.diff(fc) > 0.5)  # half the slope as drift, on top of a level near the end
    assert fc[0] > line[-10]


def test_validation_split_is_the_last_h_of_train() -> None:
    s = CompSeries("x", "M3", "yearly", 1, 2, np.arange(10.0), np.array([10.0, 11.0]))
    np.testing.assert_array_equal(s.fit_part, np.arange(8.0))
    np.testing.assert_array_equal(s.val_target, [8.0, 9.0])
    assert s.group == "M3 yearly"
