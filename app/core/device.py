"""The one place that decides where inference runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.core.backends import BackendName, Device

Requested = Literal["auto", "cpu", "cuda"]


class DeviceUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class Capabilities:
    torch_cuda: bool  # torch sees a CUDA GPU
    ort_cuda: bool  # onnxruntime was built with CUDAExecutionProvider

    @classmethod
    def probe(cls) -> Capabilities:
        try:
            import torch

            torch_cuda = bool(torch.cuda.is_available())
        except Exception:  # a broken CUDA install must not stop a CPU service
            torch_cuda = False
        try:
            import onnxruntime as ort

            ort_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        except Exception:
            ort_cuda = False
        return cls(torch_cuda=torch_cuda, ort_cuda=ort_cuda)


def select_device(requested: Requested, backend: BackendName, caps: Capabilities) -> Device:
    """`auto` takes CUDA only where the chosen backend can use it: a GPU torch can see, and for
    ONNX Runtime also its CUDA provider; `cuda` without that is a start-up error, not a silent
    fallback, because an operator who asked for a GPU wants to know they did not get one."""
    cuda_ok = caps.torch_cuda and (backend == "torchscript" or caps.ort_cuda)
    if requested == "cpu":
        return "cpu"
    if requested == "auto":
        return "cuda" if cuda_ok else "cpu"
    if requested == "cuda":
        if cuda_ok:
            return "cuda"
        reasons = []
        if not caps.torch_cuda:
            reasons.append("torch sees no CUDA GPU")
        if backend == "onnx" and not caps.ort_cuda:
            reasons.append("onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
        raise DeviceUnavailableError(
            f"DEVICE=cuda was requested for BACKEND={backend}, but "
            + " and ".join(reasons)
            + "; use DEVICE=auto or DEVICE=cpu"
        )
    raise ValueError(f"unknown device {requested!r}")
