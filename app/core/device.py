"""The one place that decides where inference runs."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Literal

from app.core.backends import BackendName, Device

Requested = Literal["auto", "cpu", "cuda"]


class DeviceUnavailableError(RuntimeError):
    pass


def nvidia_gpu_count() -> int:
    """GPUs the NVIDIA driver reports, asked through libcuda itself (no torch needed); 0 where
    there is no driver."""
    name = ctypes.util.find_library("cuda") or "libcuda.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return 0
    count = ctypes.c_int(0)
    try:
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
    except AttributeError:
        return 0
    return count.value


def _torch_cuda() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch is not installed (pip install 'lstm-serve[torch]')"
    try:
        if torch.cuda.is_available():
            return True, ""
    except Exception:  # a broken CUDA install must not stop a CPU service
        pass
    return False, "torch sees no CUDA GPU"


def _onnxruntime_cuda() -> tuple[bool, str]:
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except Exception:
        providers = []
    if "CUDAExecutionProvider" not in providers:
        return False, "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    # The provider is compiled in whether or not the host has a GPU; ask the driver too.
    if nvidia_gpu_count() == 0:
        return False, "the NVIDIA driver reports no GPU"
    return True, ""


class Capabilities:
    """Whether each runtime can use a CUDA GPU. Each one is probed through that runtime only, and
    only when asked: serving with ONNX Runtime never imports torch (which it may not have)."""

    def __init__(self, torch_cuda: bool | None = None, ort_cuda: bool | None = None) -> None:
        # Given values (tests, callers that know) are used as they are; None means "probe".
        self._probed: dict[str, tuple[bool, str]] = {}
        if torch_cuda is not None:
            self._probed["torchscript"] = (torch_cuda, "" if torch_cuda else "torch sees no CUDA GPU")
        if ort_cuda is not None:
            reason = "" if ort_cuda else "onnxruntime cannot use a CUDA GPU (install onnxruntime-gpu)"
            self._probed["onnx"] = (ort_cuda, reason)

    @classmethod
    def probe(cls) -> Capabilities:
        return cls()

    def _get(self, backend: BackendName) -> tuple[bool, str]:
        if backend not in self._probed:
            self._probed[backend] = _torch_cuda() if backend == "torchscript" else _onnxruntime_cuda()
        return self._probed[backend]

    @property
    def torch_cuda(self) -> bool:
        return self._get("torchscript")[0]

    @property
    def ort_cuda(self) -> bool:
        return self._get("onnx")[0]

    def cuda(self, backend: BackendName) -> tuple[bool, str]:
        """(can `backend` run on a CUDA GPU here, and if not, why)."""
        return self._get(backend)


def select_device(requested: Requested, backend: BackendName, caps: Capabilities) -> Device:
    """`auto` takes CUDA only where the chosen backend's own runtime can use a GPU; `cuda` without
    that is a start-up error, not a silent fallback, because an operator who asked for a GPU wants
    to know they did not get one."""
    if requested == "cpu":
        return "cpu"
    if requested not in ("auto", "cuda"):
        raise ValueError(f"unknown device {requested!r}")
    cuda_ok, reason = caps.cuda(backend)
    if cuda_ok:
        return "cuda"
    if requested == "auto":
        return "cpu"
    raise DeviceUnavailableError(
        f"DEVICE=cuda was requested for BACKEND={backend}, but {reason}; use DEVICE=auto or DEVICE=cpu"
    )
