"""One small inference interface with two implementations: ONNX Runtime and TorchScript.

Both take and return numpy arrays keyed by the tensor names in the bundle manifest, so task code
never knows which runtime is underneath.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import numpy as np

from app.core.bundle import INT8_ARTIFACT, Bundle, BundleError

BackendName = Literal["onnx", "torchscript"]
Device = Literal["cpu", "cuda"]
Feeds = dict[str, np.ndarray]


class BackendUnavailableError(RuntimeError):
    """The runtime a backend needs is not installed."""


class Backend(ABC):
    name: BackendName
    precision: str = "float32"

    def __init__(self, bundle: Bundle, device: Device) -> None:
        self.bundle = bundle
        self.device = device
        self.input_names = [s.name for s in bundle.manifest.inputs]
        self.output_names = [s.name for s in bundle.manifest.outputs]

    @abstractmethod
    def run(self, feeds: Feeds) -> Feeds:
        """Run one batch. `feeds` must hold every manifest input; returns every output."""

    def _check(self, feeds: Feeds) -> None:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ValueError(f"missing model inputs {missing}")


class OnnxBackend(Backend):
    name: BackendName = "onnx"

    def __init__(self, bundle: Bundle, device: Device, threads: int = 0, artifact: str = "onnx") -> None:
        super().__init__(bundle, device)
        import onnxruntime as ort

        # `artifact` picks the graph: "onnx" (float32) or the int8 one (`onnx_artifact`).
        self.artifact = artifact
        self.precision = "int8" if artifact == INT8_ARTIFACT else "float32"

        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ORT's pool threads busy-wait between ops; on a small host that steals the cores the
        # event loop and tokenisation need (measured: bench/results.md, Findings).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        providers = (
            ["CUDAExecutionProvider", "CPUExecutionProvider"]
            if device == "cuda"
            else ["CPUExecutionProvider"]
        )
        path = bundle.artifact(artifact)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"onnxruntime cannot load {path}: {exc}") from exc

    def run(self, feeds: Feeds) -> Feeds:
        self._check(feeds)
        outs = self.session.run(self.output_names, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, (np.asarray(o) for o in outs), strict=True))


class TorchScriptBackend(Backend):
    name: BackendName = "torchscript"

    def __init__(self, bundle: Bundle, device: Device, threads: int = 0) -> None:
        super().__init__(bundle, device)
        try:
            import torch
        except ImportError as exc:
            # torch is an extra: the default install serves with ONNX Runtime and has none.
            raise BackendUnavailableError(
                "BACKEND=torchscript needs PyTorch, which is not installed; install the torch extra "
                "(`bash scripts/install.sh torch` installs the CPU build) or serve with BACKEND=onnx"
            ) from exc

        if threads > 0:
            torch.set_num_threads(threads)
        self._torch = torch
        try:
            self.module = torch.jit.load(  # type: ignore[no-untyped-call]
                str(bundle.artifact("torchscript")), map_location=device
            )
        except Exception as exc:
            raise BundleError(f"torch cannot load {bundle.artifact('torchscript')}: {exc}") from exc
        self.module.eval()

    def run(self, feeds: Feeds) -> Feeds:
        self._check(feeds)
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.device) for n in self.input_names]
        with torch.inference_mode():
            out = self.module(*args)
        outs = out if isinstance(out, tuple | list) else (out,)
        return dict(zip(self.output_names, (o.detach().cpu().numpy() for o in outs), strict=True))


Precision = Literal["auto", "float32", "int8"]


def onnx_artifact(bundle: Bundle, precision: Precision) -> str:
    """The ONNX artifact `precision` selects: `auto` takes the int8 graph only where the bundle's
    quantization section made it the default (accuracy within its gate, faster)."""
    q = bundle.manifest.quantization
    if precision == "int8":
        if q is None:
            raise BundleError(
                f"PRECISION=int8 but bundle {bundle.path} has no {INT8_ARTIFACT!r} artifact "
                f"(make one with `python -m training.quantize {bundle.manifest.task}`)"
            )
        return INT8_ARTIFACT
    if precision == "auto" and q is not None and q.default:
        return INT8_ARTIFACT
    return "onnx"


def load_backend(
    kind: BackendName, bundle: Bundle, device: Device, threads: int = 0, precision: Precision = "float32"
) -> Backend:
    if kind == "onnx":
        return OnnxBackend(bundle, device, threads, artifact=onnx_artifact(bundle, precision))
    if kind == "torchscript":
        if precision == "int8":
            raise BundleError("PRECISION=int8 needs BACKEND=onnx: the int8 graph is an ONNX artifact")
        return TorchScriptBackend(bundle, device, threads)
    raise ValueError(f"unknown backend {kind!r}: use 'onnx' or 'torchscript'")
