from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.device import Capabilities, DeviceUnavailableError, select_device
from app.core.settings import Settings

NONE = Capabilities(torch_cuda=False, ort_cuda=False)
TORCH_ONLY = Capabilities(torch_cuda=True, ort_cuda=False)
ORT_ONLY = Capabilities(torch_cuda=False, ort_cuda=True)  # onnxruntime-gpu, no torch installed
BOTH = Capabilities(torch_cuda=True, ort_cuda=True)


@pytest.mark.parametrize(
    ("requested", "backend", "caps", "expected"),
    [
        ("auto", "onnx", NONE, "cpu"),
        ("auto", "onnx", TORCH_ONLY, "cpu"),  # GPU present but onnxruntime cannot use it
        ("auto", "onnx", ORT_ONLY, "cuda"),  # ONNX on a GPU needs no torch
        ("auto", "onnx", BOTH, "cuda"),
        ("auto", "torchscript", TORCH_ONLY, "cuda"),
        ("auto", "torchscript", ORT_ONLY, "cpu"),
        ("auto", "torchscript", NONE, "cpu"),
        ("cpu", "onnx", BOTH, "cpu"),
        ("cuda", "onnx", BOTH, "cuda"),
        ("cuda", "onnx", ORT_ONLY, "cuda"),
        ("cuda", "torchscript", TORCH_ONLY, "cuda"),
    ],
)
def test_device_selection(requested: str, backend: str, caps: Capabilities, expected: str) -> None:
    assert select_device(requested, backend, caps) == expected  # type: ignore[arg-type]


def test_cuda_without_gpu_fails_with_reason() -> None:
    with pytest.raises(DeviceUnavailableError, match=r"BACKEND=onnx.*onnxruntime-gpu"):
        select_device("cuda", "onnx", TORCH_ONLY)
    with pytest.raises(DeviceUnavailableError, match=r"BACKEND=torchscript.*torch sees no CUDA GPU"):
        select_device("cuda", "torchscript", ORT_ONLY)


def test_probe_on_this_machine_is_consistent() -> None:
    caps = Capabilities.probe()
    assert select_device("auto", "onnx", caps) == ("cuda" if caps.ort_cuda else "cpu")
    assert select_device("auto", "torchscript", caps) == ("cuda" if caps.torch_cuda else "cpu")


def test_onnx_device_choice_never_imports_torch() -> None:
    # The light install (no torch) must be able to pick a device for ONNX Runtime.
    code = (
        "import sys; from app.core.device import Capabilities, select_device; "
        "print(select_device('auto', 'onnx', Capabilities.probe())); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("cpu", "cuda")


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKEND", "torchscript")
    monkeypatch.setenv("DEVICE", "cpu")
    monkeypatch.setenv("MODELS", "sentiment, ner")
    monkeypatch.setenv("MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("API_KEY", "s3cret")
    monkeypatch.setenv("MODEL_DIR", "/srv/models")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.backend, s.device, s.max_batch_size) == ("torchscript", "cpu", 8)
    assert s.model_names == ["sentiment", "ner"]
    assert s.model_dir == Path("/srv/models")
    assert s.api_key is not None
    assert s.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)  # secrets never reach logs through the settings object


def test_settings_from_dotenv_and_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("BACKEND=torchscript\nAPI_KEY=\nPORT=9001\n")
    s = Settings(_env_file=env)  # type: ignore[call-arg]
    assert (s.backend, s.port, s.api_key) == ("torchscript", 9001, None)
    monkeypatch.setenv("BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="backend"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_per_model_batching_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("MODEL_BATCHING", '{"forecast": {"max_batch_size": 64, "max_batch_wait_ms": 0}}')
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.batching_for("forecast") == (64, 0.0, 1024, 0.002, 32)  # shared bound: half a batch
    assert s.batching_for("sentiment") == (16, 0.001, 1024, 0.002, 8)
    monkeypatch.setenv("BATCHING", "false")
    monkeypatch.setenv("INLINE_PREDICT_MS", "0")
    off = Settings(_env_file=None).batching_for("forecast")  # type: ignore[call-arg]
    assert off == (1, 0.0, 1024, 0.0, 32)
    monkeypatch.setenv("MODEL_BATCHING", '{"forecast": {"max_batch_size": 0}}')
    with pytest.raises(ValueError, match="max_batch_size"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(("drain", "grace"), [(20.0, 20), (0.5, 1), (0.01, 1), (1.2, 2), (0.0, 0)])
def test_shutdown_drain_is_always_a_deadline_for_uvicorn(drain: float, grace: int) -> None:
    # uvicorn reads None as "wait for ever": a drain under a second must still be a deadline.
    s = Settings(_env_file=None, shutdown_drain_s=drain)  # type: ignore[call-arg]
    assert s.graceful_shutdown_s == grace
    assert s.graceful_shutdown_s is not None
    assert s.graceful_shutdown_s >= drain
