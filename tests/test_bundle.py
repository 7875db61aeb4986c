from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.core.bundle import (
    MANIFEST_NAME,
    BundleError,
    discover_tasks,
    load_bundle,
    read_manifest,
    resolve_bundle_dir,
    version_key,
)
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import ECHO_PACKAGES


@pytest.fixture
def bundle_copy(echo_model_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(echo_model_dir, tmp_path / "models")
    return tmp_path / "models" / "echo" / "1.0.0"


def test_written_bundle_loads_and_lists_checksums(echo_model_dir: Path) -> None:
    bundle = load_bundle(resolve_bundle_dir(echo_model_dir, "echo"))
    assert set(bundle.manifest.artifacts) == {"onnx", "torchscript", "vocab"}
    assert bundle.read_lines("vocab")[:2] == ["a", "b"]
    assert all(len(a.sha256) == 64 for a in bundle.manifest.artifacts.values())


@pytest.mark.parametrize("artifact", ["model.onnx", "model.pt", "vocab.txt"])
def test_checksum_mismatch_is_refused_naming_the_file(bundle_copy: Path, artifact: str) -> None:
    with (bundle_copy / artifact).open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match=rf"checksum mismatch for .*{artifact.replace('.', '[.]')}"):
        load_bundle(bundle_copy)


def test_missing_artifact_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "model.onnx").unlink()
    with pytest.raises(BundleError, match=r"artifact 'onnx' file .*model.onnx is missing"):
        load_bundle(bundle_copy)


def test_manifest_schema_is_enforced(bundle_copy: Path) -> None:
    raw = json.loads((bundle_copy / MANIFEST_NAME).read_text())
    del raw["headline"]
    (bundle_copy / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="does not match the bundle format"):
        read_manifest(bundle_copy)


def test_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"no bundle for model 'sentiment': folder .* does not exist"):
        resolve_bundle_dir(tmp_path, "sentiment")


def test_highest_version_is_picked(tmp_path: Path) -> None:
    for v in ("1.9.0", "1.10.0", "1.2.0"):
        (tmp_path / "m" / v).mkdir(parents=True)
        (tmp_path / "m" / v / MANIFEST_NAME).write_text("{}")
    assert resolve_bundle_dir(tmp_path, "m").name == "1.10.0"
    assert resolve_bundle_dir(tmp_path, "m", "1.2.0").name == "1.2.0"
    assert version_key("1.10.0") > version_key("1.9.0")
    assert discover_tasks(tmp_path) == ["m"]


def test_service_refuses_to_start_on_tampered_bundle(bundle_copy: Path) -> None:
    from fastapi.testclient import TestClient

    (bundle_copy / "model.pt").write_bytes(b"not a model")
    settings = Settings(_env_file=None, model_dir=bundle_copy.parents[1])  # type: ignore[call-arg]
    with (
        pytest.raises(BundleError, match=r"checksum mismatch for .*model[.]pt"),
        TestClient(create_app(settings, task_packages=ECHO_PACKAGES)),
    ):
        pass


def test_service_refuses_to_start_without_bundles(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    settings = Settings(_env_file=None, model_dir=tmp_path)  # type: ignore[call-arg]
    with (
        pytest.raises(BundleError, match="no model bundles under"),
        TestClient(create_app(settings, task_packages=ECHO_PACKAGES)),
    ):
        pass
    settings = Settings(_env_file=None, model_dir=tmp_path, models="echo")  # type: ignore[call-arg]
    with (
        pytest.raises(BundleError, match="no bundle for model 'echo'"),
        TestClient(create_app(settings, task_packages=ECHO_PACKAGES)),
    ):
        pass


def test_summary_drops_large_tables_but_keeps_artifacts(echo_model_dir: Path) -> None:
    manifest = read_manifest(resolve_bundle_dir(echo_model_dir, "echo"))
    manifest.metrics = {"test": {"accuracy": 0.9, "ablation": [{"row": 1}]}, "ablation": [1, 2]}
    summary = manifest.summary()
    assert summary["metrics"] == {"test": {"accuracy": 0.9}}
    assert set(summary["artifacts"]) == {"onnx", "torchscript", "vocab"}


def test_readme_is_only_rewritten_for_the_shipped_models(tmp_path: Path) -> None:
    from training.bundle import README, update_readme

    before = README.read_text()
    update_readme(("echo", "junk"), model_dir=tmp_path)
    assert README.read_text() == before


def test_an_export_that_disagrees_with_eager_leaves_the_shipped_bundle_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import training.bundle
    from tests.support.echo import EchoModel, write_echo_bundle
    from training.bundle import ExportMismatchError

    shipped = write_echo_bundle(tmp_path)
    before = {p.name: p.read_bytes() for p in shipped.iterdir()}
    real_export = training.bundle.export_onnx

    def mistranslating_export(module: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        other = EchoModel()
        with torch.no_grad():
            other.scale.fill_(2.0)
        real_export(other, *args, **kwargs)

    monkeypatch.setattr(training.bundle, "export_onnx", mistranslating_export)
    with pytest.raises(ExportMismatchError, match="onnx differs from the eager model"):
        write_echo_bundle(tmp_path, overwrite=True)
    assert {p.name: p.read_bytes() for p in shipped.iterdir()} == before
    assert sorted(p.name for p in shipped.parent.iterdir()) == ["1.0.0"]  # no partial left behind


def test_the_export_check_covers_sentiment_including_attention(tmp_path: Path) -> None:
    from tests.sentiment_support import VOCAB, tiny_net, write_tiny_bundle
    from training.bundle import ExportMismatchError, check_exported
    from training.sentiment.export import example_inputs
    from training.sentiment.model import export_module

    path, net = write_tiny_bundle(tmp_path, cell="gru", head="attention")
    bundle = load_bundle(path)
    inputs = example_inputs(len(VOCAB))
    deviations = check_exported(bundle, export_module(net), inputs, 1e-4)
    assert set(deviations) == {"onnx", "torchscript"}
    assert max(deviations.values()) <= 1e-4
    other = export_module(tiny_net("gru", "attention", seed=1))
    with pytest.raises(ExportMismatchError, match="differs from the eager model"):
        check_exported(bundle, other, inputs, 1e-4)
