"""Serving with ONNX Runtime needs no torch: the runtime set leaves it out, and the service runs
the shipped bundles in a process where `import torch` fails."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Makes `import torch` fail in the child process, as it does where torch is not installed.
NO_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def run_without_torch(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH + body], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_runtime_dependencies_leave_torch_to_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = project["dependencies"]
    assert not [d for d in runtime if d.split("=")[0].split(">")[0].strip() == "torch"], runtime
    extras = project["optional-dependencies"]
    assert extras["torch"] == ["torch==2.13.0"]
    assert "lstm-serve[torch]" in extras["training"]  # training exports TorchScript and ONNX


def test_the_shipped_bundles_serve_with_onnx_and_no_torch() -> None:
    out = run_without_torch(
        """
from fastapi.testclient import TestClient
from app.core.settings import Settings
from app.main import create_app
settings = Settings(_env_file=None, model_dir="models", backend="onnx", log_level="warning")
with TestClient(create_app(settings)) as client:
    assert client.get("/readyz").status_code == 200
    s = client.post("/sentiment", json={"texts": ["A fine film."], "return_attention": True})
    n = client.post("/ner", json={"texts": ["Hewlett-Packard met Rolls-Royce in London."]})
    f = client.post("/forecast", json={"series": [{"values": list(range(1, 40)), "horizon": 3}]})
    print(s.status_code, n.status_code, f.status_code)
assert "torch" not in sys.modules
"""
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-3:] == ["200", "200", "200"]


def test_torchscript_without_torch_says_what_to_install() -> None:
    out = run_without_torch(
        """
from fastapi.testclient import TestClient
from app.core.settings import Settings
from app.main import create_app
settings = Settings(_env_file=None, model_dir="models", backend="torchscript", log_level="warning")
try:
    with TestClient(create_app(settings)):
        pass
except Exception as exc:
    print(type(exc).__name__, exc)
"""
    )
    assert "BackendUnavailableError" in out.stdout, out.stdout + out.stderr[-3000:]
    assert "scripts/install.sh torch" in out.stdout
    assert "BACKEND=onnx" in out.stdout
