"""A bundle may lack the model graph of a backend not in use (the default image ships no
model.pt: it has no torch to run it), but every file present is still verified."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.bundle import BundleError, load_bundle, unused_by
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import ECHO_PACKAGES


@pytest.fixture
def bundle_copy(echo_model_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(echo_model_dir, tmp_path / "models")
    return tmp_path / "models" / "echo" / "1.0.0"


def _settings(bundle: Path, backend: str) -> Settings:
    return Settings(_env_file=None, model_dir=bundle.parents[1], backend=backend)  # type: ignore[call-arg]


def test_unused_graphs_per_backend() -> None:
    assert unused_by("onnx") == ("torchscript",)
    assert set(unused_by("torchscript")) == {"onnx", "onnx_int8"}


def test_onnx_serves_a_bundle_without_model_pt(bundle_copy: Path) -> None:
    (bundle_copy / "model.pt").unlink()
    with pytest.raises(BundleError, match=r"artifact 'torchscript' file .*model[.]pt is missing"):
        load_bundle(bundle_copy)  # by default (training's round trip) every file must be there
    assert load_bundle(bundle_copy, may_lack=unused_by("onnx")).path == bundle_copy
    with TestClient(create_app(_settings(bundle_copy, "onnx"), task_packages=ECHO_PACKAGES)) as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/echo", json={"values": [[1.0, 2.0]]}).json() == {"sums": [3.0]}
        # The manifest still lists the artifact; /models says what the bundle is, not what is on disk.
        (info,) = client.get("/models").json()["models"]
        assert "torchscript" in info["manifest"]["artifacts"]


def test_the_backend_in_use_still_needs_its_graph(bundle_copy: Path) -> None:
    (bundle_copy / "model.onnx").unlink()
    with (
        pytest.raises(BundleError, match=r"artifact 'onnx' file .*model[.]onnx is missing"),
        TestClient(create_app(_settings(bundle_copy, "onnx"), task_packages=ECHO_PACKAGES)),
    ):
        pass


def test_vocabularies_and_tables_are_never_optional(bundle_copy: Path) -> None:
    (bundle_copy / "vocab.txt").unlink()
    with pytest.raises(BundleError, match=r"artifact 'vocab' file .*vocab[.]txt is missing"):
        load_bundle(bundle_copy, may_lack=unused_by("onnx"))


def test_a_present_but_wrong_unused_graph_is_still_refused(bundle_copy: Path) -> None:
    """Absent is a packaging choice; present and different is corruption or tampering."""
    (bundle_copy / "model.pt").write_bytes(b"not the exported model")
    with (
        pytest.raises(BundleError, match=r"checksum mismatch for .*model[.]pt"),
        TestClient(create_app(_settings(bundle_copy, "onnx"), task_packages=ECHO_PACKAGES)),
    ):
        pass
