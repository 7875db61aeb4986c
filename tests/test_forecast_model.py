"""The forecaster's numpy pipeline (season rule, decomposition, normalisation, intervals) and the
network's exported forms (TorchScript and ONNX equal eager; a row never depends on its batch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.forecast import preprocess, seasonal
from app.forecast.calendar import parse_frequency, season_of_offset
from app.forecast.conformal import calibrate
from tests.forecast_support import MAX_WINDOW, tiny_intervals, tiny_model, write_tiny_bundle

# Box & Jenkins monthly airline passengers, 1949-1960.
AIRLINE = [
    112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118, 115, 126, 141, 135, 125, 149, 170, 170,
    158, 133, 114, 140, 145, 150, 178, 163, 172, 178, 199, 199, 184, 162, 146, 166, 171, 180, 193, 181,
    183, 218, 230, 242, 209, 191, 172, 194, 196, 196, 236, 235, 229, 243, 264, 272, 237, 211, 180, 201,
    204, 188, 235, 227, 234, 264, 302, 293, 259, 229, 203, 229, 242, 233, 267, 269, 270, 315, 364, 347,
    312, 274, 237, 278, 284, 277, 317, 313, 318, 374, 413, 405, 355, 306, 271, 306, 315, 301, 356, 348,
    355, 422, 465, 467, 404, 347, 305, 336, 340, 318, 362, 348, 363, 435, 491, 505, 404, 359, 310, 337,
    360, 342, 406, 396, 420, 472, 548, 559, 463, 407, 362, 405, 417, 391, 419, 461, 472, 535, 622, 606,
    508, 461, 390, 432,
]  # fmt: skip


def _seasonal(n: int, m: int, seed: int = 0, noise: float = 0.02) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (100 + 0.5 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / m)) * (1 + noise * rng.normal(size=n))


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (_seasonal(96, 12), 12),
        (_seasonal(70, 7, seed=1), 7),
        (_seasonal(24 * 14, 24, seed=2), 24),
        (np.asarray(AIRLINE, np.float64), 12),
        (np.random.default_rng(3).normal(size=200), 1),  # white noise
        (np.cumsum(np.random.default_rng(4).normal(size=200)), 1),  # random walk
        (_seasonal(10, 4), 1),  # too short for three seasons of anything but 2-3
    ],
)
def test_season_length_rule_on_known_series(series: np.ndarray, expected: int) -> None:
    assert seasonal.estimate_season_length(series) == expected


@pytest.mark.parametrize(
    ("alias", "m"),
    [
        ("h", 24),
        ("30min", 48),
        ("D", 7),
        ("B", 5),
        ("W-SUN", 52),
        ("MS", 12),
        ("QS", 4),
        ("YS", 1),
        ("7h", 1),
    ],
)
def test_frequency_gives_the_season_length(alias: str, m: int) -> None:
    assert season_of_offset(parse_frequency(alias)) == m


def test_m4_seasonality_test_and_decomposition() -> None:
    t = np.arange(60)
    factors = np.array([0.7, 0.9, 1.0, 1.1, 1.3] + [1.0] * 7)
    factors = factors / factors.mean()
    y = (200 + 2 * t) * factors[t % 12]
    season = seasonal.decompose(y, 12)
    assert season.used
    assert season.multiplicative
    np.testing.assert_allclose(season.indices, factors, atol=0.02)
    np.testing.assert_allclose(season.restore(season.remove(y)[-12:], 48), y[-12:], rtol=1e-9)
    # values <= 0: additive; pure noise or fewer than three seasons: no season
    assert not seasonal.decompose(y - 400, 12).multiplicative
    assert not seasonal.decompose(np.random.default_rng(0).normal(10, 1, 60), 12).used
    assert not seasonal.decompose(y[:30], 12).used


def test_prepare_and_finish_invert_each_other() -> None:
    y = _seasonal(84, 12, noise=0.0)
    p = preprocess.prepare(y[:72], 12, 48)
    assert p.season.used
    assert p.log_path
    assert len(p.z) == 48
    assert p.z[-1] == 0.0
    # the network's ideal output: the log ratio of the deseasonalised future to the level
    future_d = y[72:] / p.season.at(72, 12)
    out = np.log(future_d / p.level)
    np.testing.assert_allclose(preprocess.finish(out, p, 12), y[72:], rtol=1e-9)
    # non-positive series take the linear path and come back the same way
    q = preprocess.prepare(y[:72] - 150.0, 12, 48)
    assert not q.log_path
    np.testing.assert_allclose(
        preprocess.finish(np.zeros(12), q, 12)[:1], q.season.restore(np.full(1, q.level), 72)
    )


def test_conformal_intervals_cover_nested_and_grow() -> None:
    rng = np.random.default_rng(0)
    errors = rng.normal(0, 1, (4000, 6)) * np.sqrt(np.arange(1, 7))
    table = calibrate(list(errors), [np.zeros(6)] * 4000, [1.0] * 4000, [12] * 4000)
    fresh = rng.normal(0, 1, (4000, 6)) * np.sqrt(np.arange(1, 7))
    for level, (lo, hi) in table.bands(np.zeros(6), 12, 1.0).items():
        inside = np.mean((fresh >= lo) & (fresh <= hi))
        assert abs(inside - level / 100) < 0.03
    # A class with fewer validation series than min_series has no table: it uses the pooled one.
    mixed = calibrate(list(errors[:30]), [np.zeros(6)] * 30, [1.0] * 30, [12] * 20 + [4] * 10, min_series=15)
    assert set(mixed.table) == {"12", "all"}
    np.testing.assert_array_equal(mixed.quantiles(4, 95, 6)[1], mixed.quantiles(7, 95, 6)[1])
    # Few series: the steps are pooled, as multiples of sqrt(step); smooth rows that still cover.
    few = calibrate(list(errors[:30]), [np.zeros(6)] * 30, [1.0] * 30, [12] * 30, pool_steps_below=40)
    for level, (lo, hi) in few.bands(np.zeros(6), 12, 1.0).items():
        np.testing.assert_allclose(hi / np.sqrt(np.arange(1, 7)), hi[0])
        np.testing.assert_allclose(lo / np.sqrt(np.arange(1, 7)), lo[0])
        assert abs(np.mean((fresh >= lo) & (fresh <= hi)) - level / 100) < 0.05
    bands = tiny_intervals().bands(np.full(8, 5.0), 7, 2.0)  # m = 7: the pooled table, 8 > 3 steps
    (lo50, hi50), (lo80, hi80), (lo95, hi95) = bands[50], bands[80], bands[95]
    assert np.all(lo95 <= lo80)
    assert np.all(lo80 <= lo50)
    assert np.all(lo50 <= 5.0)
    assert np.all(hi50 >= 5.0)
    assert np.all(hi80 >= hi50)
    assert np.all(hi95 >= hi80)
    assert np.all(np.diff(hi95) > 0)  # wider with every step, past the calibrated three too


def _batch(rows: list[np.ndarray], ms: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    prepared = [preprocess.prepare(r, m, MAX_WINDOW) for r, m in zip(rows, ms, strict=True)]
    return preprocess.pad([p.z for p in prepared], [p.static for p in prepared], MAX_WINDOW)


def test_exported_forms_equal_eager(tmp_path: Path) -> None:
    model, path = write_tiny_bundle(tmp_path)
    rows = [_seasonal(60, 12), _seasonal(7, 1), -_seasonal(30, 4), np.full(5, 3.0)]
    values, lengths, static = _batch(rows, [12, 1, 4, 1])
    args = (torch.from_numpy(values), torch.from_numpy(lengths), torch.from_numpy(static))
    with torch.no_grad():
        eager = model(*args).numpy()
        scripted = torch.jit.load(str(path / "model.pt"))(*args).numpy()
    sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = sess.run(["forecast"], {"values": values, "lengths": lengths, "static": static})
    np.testing.assert_allclose(scripted, eager, atol=1e-6)
    np.testing.assert_allclose(onnx_out, eager, atol=1e-5)
    # a row's answer does not depend on what it is batched with
    (alone,) = sess.run(["forecast"], {"values": values[1:2], "lengths": lengths[1:2], "static": static[1:2]})
    np.testing.assert_allclose(alone[0], onnx_out[1], atol=1e-6)


def test_padding_is_ignored_by_the_network() -> None:
    model = tiny_model()
    values, lengths, static = _batch([_seasonal(9, 1)], [1])
    garbage = values.copy()
    garbage[0, : MAX_WINDOW - 9] = 1e3
    with torch.no_grad():
        a = model(torch.from_numpy(values), torch.from_numpy(lengths), torch.from_numpy(static))
        b = model(torch.from_numpy(garbage), torch.from_numpy(lengths), torch.from_numpy(static))
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
