"""The forecaster module and its exported forms: normalisation, padding, ordering, export parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.forecast_support import HORIZON_MAX, MIN_WINDOW, tiny_model, write_tiny_bundle
from training.forecast.model import pad_batch


def _run(model: torch.nn.Module, histories: list[np.ndarray]) -> np.ndarray:
    values, lengths = pad_batch(histories)
    with torch.no_grad():
        return model(values, lengths).numpy()


def test_normalisation_round_trip_ignores_padding() -> None:
    model = tiny_model()
    rng = np.random.default_rng(0)
    a, b = rng.normal(50, 7, 20), rng.normal(-3, 0.1, 9)
    values, lengths = pad_batch([a, b])
    values[1, 9:] = 1e6  # garbage in the padding must not leak into the statistics
    z, mean, scale = model.normalize(values, lengths)
    for i, x in enumerate([a, b]):
        n = len(x)
        assert mean[i, 0].item() == pytest.approx(x.mean(), rel=1e-5)
        assert scale[i, 0].item() == pytest.approx(x.std(), rel=1e-4)
        back = z[i, :n] * scale[i] + mean[i]
        np.testing.assert_allclose(back.numpy(), x, rtol=1e-5, atol=1e-4)
        assert torch.all(z[i, n:] == 0)


def test_forecast_is_scale_and_shift_equivariant() -> None:
    model = tiny_model()
    x = np.sin(np.arange(30) / 3.0) + 2.0
    base = _run(model, [x])
    scaled = _run(model, [1000.0 * x - 5000.0])
    np.testing.assert_allclose(scaled, 1000.0 * base - 5000.0, rtol=1e-4, atol=1e-2)


def test_constant_and_very_short_series_are_finite() -> None:
    model = tiny_model()
    out = _run(model, [np.full(MIN_WINDOW, 7.0), np.zeros(1), np.full(40, -3.5e6)])
    assert np.all(np.isfinite(out))
    # a constant history has zero spread: the floored scale keeps every quantile at that constant
    np.testing.assert_allclose(out[0], 7.0, rtol=1e-3)
    np.testing.assert_allclose(out[1], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[2], -3.5e6, rtol=1e-3)


def test_quantiles_ordered_on_random_series() -> None:
    rng = np.random.default_rng(1)
    for seed in range(3):
        model = tiny_model(seed)
        histories = [rng.normal(0, 10 ** rng.uniform(-3, 4), rng.integers(1, 60)).cumsum() for _ in range(64)]
        q = _run(model, histories)
        assert np.all(np.diff(q, axis=2) >= 0), "quantiles must be non-decreasing along the level axis"


def test_alone_equals_inside_padded_batch() -> None:
    model = tiny_model()
    rng = np.random.default_rng(2)
    histories = [rng.normal(size=n).cumsum() for n in (5, 31, 12, 1)]
    batch = _run(model, histories)
    for i, h in enumerate(histories):
        np.testing.assert_allclose(_run(model, [h])[0], batch[i], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    return write_tiny_bundle(tmp_path_factory.mktemp("models"))


def test_exported_equals_eager_both_backends(bundle: tuple[torch.nn.Module, Path]) -> None:
    model, path = bundle
    scripted = torch.jit.load(str(path / "model.pt"))
    session = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    histories = [rng.normal(100, 5, n) for n in (40, 4, 17, 9, 40)]
    # alone (batch of one, exact length) and together (padded batch), in both runtimes
    for group in [[h] for h in histories] + [histories]:
        values, lengths = pad_batch(group)
        with torch.no_grad():
            eager = model(values, lengths).numpy()
            ts = scripted(values, lengths).numpy()
        (onnx_out,) = session.run(["quantiles"], {"values": values.numpy(), "lengths": lengths.numpy()})
        assert onnx_out.shape == (len(group), HORIZON_MAX, 7)
        np.testing.assert_allclose(ts, eager, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(onnx_out, eager, rtol=1e-5, atol=1e-5)
    values, lengths = pad_batch(histories)
    (batched,) = session.run(["quantiles"], {"values": values.numpy(), "lengths": lengths.numpy()})
    for i, h in enumerate(histories):
        v, n = pad_batch([h])
        (alone,) = session.run(["quantiles"], {"values": v.numpy(), "lengths": n.numpy()})
        np.testing.assert_allclose(alone[0], batched[i], rtol=1e-5, atol=1e-5)
