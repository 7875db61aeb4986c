"""The int8 graph as a bundle artifact: `training.quantize` seals it into the bundle through the
service's own loader, and PRECISION picks it (auto: only where the bundle's gate passed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.core.backends import load_backend
from app.core.bundle import INT8_ARTIFACT, MANIFEST_NAME, BundleError, load_bundle
from app.core.settings import Settings
from tests.support.echo import write_echo_bundle
from training.quantize import INT8_FILE, quantize, seal

FIGURES = {
    "method": "test",
    "metric": "accuracy",
    "split": "test split",
    "float32": 91.2,
    "int8": 91.1,
    "drop_points": 0.1,
    "max_drop_points": 0.2,
    "speedup_batch_1": 1.2,
    "speedup_batch_32": 1.5,
    "measured_at": "2026-11-23T00:00:00+00:00",
}


def _sealed(tmp_path: Path, default: bool) -> Path:
    bundle_dir = write_echo_bundle(tmp_path / "models")
    bundle = load_bundle(bundle_dir)
    int8 = tmp_path / INT8_FILE
    quantize(bundle.artifact("onnx"), int8)
    seal(bundle, int8, FIGURES | {"default": default})
    return bundle_dir


def test_seal_adds_a_verified_artifact_and_its_figures(tmp_path: Path) -> None:
    bundle = load_bundle(_sealed(tmp_path, default=True))
    assert bundle.artifact(INT8_ARTIFACT).name == INT8_FILE
    q = bundle.manifest.quantization
    assert q is not None
    assert q.default
    assert q.drop_points == 0.1
    assert "quantization" in bundle.manifest.summary()  # GET /models shows it


@pytest.mark.parametrize(("default", "auto_precision"), [(True, "int8"), (False, "float32")])
def test_precision_auto_follows_the_bundle_gate(tmp_path: Path, default: bool, auto_precision: str) -> None:
    bundle = load_bundle(_sealed(tmp_path, default=default))
    auto = load_backend("onnx", bundle, "cpu", 1, "auto")
    assert auto.precision == auto_precision
    assert load_backend("onnx", bundle, "cpu", 1, "float32").precision == "float32"
    forced = load_backend("onnx", bundle, "cpu", 1, "int8")
    assert forced.precision == "int8"
    feeds = {"values": np.array([[1.0, 2.0, 3.0]], dtype=np.float32), "lengths": np.array([2])}
    np.testing.assert_allclose(forced.run(feeds)["sums"], [3.0], rtol=1e-2)


def test_int8_without_the_artifact_stops_start_up(tmp_path: Path) -> None:
    bundle = load_bundle(write_echo_bundle(tmp_path / "models"))
    assert load_backend("onnx", bundle, "cpu", 1, "auto").precision == "float32"
    with pytest.raises(BundleError, match=r"python -m training\.quantize"):
        load_backend("onnx", bundle, "cpu", 1, "int8")
    with pytest.raises(BundleError, match="BACKEND=onnx"):
        load_backend("torchscript", bundle, "cpu", 1, "int8")


def test_tampered_int8_graph_is_refused(tmp_path: Path) -> None:
    bundle_dir = _sealed(tmp_path, default=True)
    (bundle_dir / INT8_FILE).write_bytes(b"not a graph")
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(bundle_dir)


def test_quantization_without_its_artifact_is_a_malformed_manifest(tmp_path: Path) -> None:
    bundle_dir = _sealed(tmp_path, default=True)
    raw = json.loads((bundle_dir / MANIFEST_NAME).read_text())
    del raw["artifacts"][INT8_ARTIFACT]
    (bundle_dir / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="onnx_int8"):
        load_bundle(bundle_dir)


def test_per_model_precision_setting() -> None:
    settings = Settings(_env_file=None, precision="int8", model_precision={"ner": "float32"})  # type: ignore[call-arg]
    assert settings.precision_for("ner") == "float32"
    assert settings.precision_for("sentiment") == "int8"


def test_per_model_backend_setting() -> None:
    settings = Settings(_env_file=None, model_backend={"sentiment": "torchscript"})  # type: ignore[call-arg]
    assert settings.backend_for("sentiment") == "torchscript"
    assert settings.backend_for("ner") == "onnx"  # the global BACKEND
