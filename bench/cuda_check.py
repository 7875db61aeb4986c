"""Check the CUDA path on a machine with an NVIDIA GPU: `python -m bench.cuda_check [--out FILE]`.

For every shipped bundle and every backend whose runtime can use the GPU, this loads the model on
CUDA through the service's own device chooser and backends, runs each task's real `predict_batch`
on realistic items, and compares (1) each item in a padded batch with the same item alone on the
GPU and (2) the GPU answers with the CPU answers of the same backend. It needs no tokeniser (items
are built from whitespace tokens), so it runs wherever torch with CUDA runs. CI has no GPU; the
last figures are committed in bench/cuda.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.core.backends import BackendName, load_backend
from app.core.bundle import discover_tasks, load_bundle, resolve_bundle_dir
from app.core.device import Capabilities, DeviceUnavailableError, select_device
from app.core.task import ModelTask
from app.core.text import Token
from app.main import TASK_PACKAGES

_REVIEWS = (
    "A wonderful film , with a moving story and superb acting .",
    "Dull and far too long . I would not watch it again , not even for free .",
    "The plot twists kept me guessing until the very end",
    "bad",
)


def _whitespace_tokens(text: str) -> list[Token]:
    tokens, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        tokens.append(Token(word, start, start + len(word)))
        pos = start + len(word)
    return tokens


def _items(task: ModelTask[Any, Any, Any, Any]) -> list[Any]:
    """Items of different lengths, so the batch really pads."""
    if task.name == "sentiment":
        prep = task.preprocessor  # type: ignore[attr-defined]
        return [prep.prepare(_whitespace_tokens(t)) for t in _REVIEWS]
    return task.warmup_items() * 2


def _arrays(result: Any) -> list[np.ndarray]:
    """Every numeric array or float inside a task result, in a fixed order."""
    if isinstance(result, np.ndarray):
        return [result.astype(np.float64)]
    if isinstance(result, int | float):
        return [np.asarray([result], np.float64)]
    if dataclasses.is_dataclass(result):
        out: list[np.ndarray] = []
        for f in dataclasses.fields(result):
            out.extend(_arrays(getattr(result, f.name)))
        return out
    if isinstance(result, list | tuple):
        out = []
        for r in result:
            out.extend(_arrays(r))
        return out
    return []


def _max_diff(a: Sequence[Any], b: Sequence[Any]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        for u, v in zip(_arrays(x), _arrays(y), strict=True):
            # Relative above 1: forecasts are in the series' own units, probabilities are not.
            rel = np.abs(u - v) / np.maximum(1.0, np.abs(v))
            worst = max(worst, float(np.max(rel)) if rel.size else 0.0)
    return worst


def _timed(task: ModelTask[Any, Any, Any, Any], items: list[Any], repeats: int = 20) -> float:
    task.predict_batch(items)
    start = time.perf_counter()
    for _ in range(repeats):
        task.predict_batch(items)
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=None)
    # `cpu` runs the same comparisons without a GPU: a dry run of this script itself.
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    args = parser.parse_args()

    caps = Capabilities.probe()
    lines = [
        "# CUDA path check (`python -m bench.cuda_check`)",
        "",
        f"Machine: {platform.node()} ({platform.machine()}), Python {platform.python_version()}; "
        f"torch can use CUDA: {caps.torch_cuda}; onnxruntime can use CUDA: {caps.ort_cuda}.",
    ]
    try:
        import torch

        if torch.cuda.is_available():
            lines.append(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}.")
    except ImportError:
        lines.append("torch is not installed.")
    lines += [
        "",
        "| model | backend | device | batch vs alone (max diff) | GPU vs CPU (max diff) "
        "| batch ms GPU | batch ms CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    failures = 0
    for name in discover_tasks(args.model_dir):
        if name not in TASK_PACKAGES:
            continue
        module = importlib.import_module(TASK_PACKAGES[name])
        bundle = load_bundle(resolve_bundle_dir(args.model_dir, name))
        for kind in ("torchscript", "onnx"):
            backend_name: BackendName = kind
            try:
                device = select_device(args.device, backend_name, caps)
            except DeviceUnavailableError as exc:
                lines.append(f"| {name} | {kind} | - | not run: {exc} | | | |")
                continue
            try:
                gpu = module.Task(bundle, load_backend(backend_name, bundle, device))
                cpu = module.Task(bundle, load_backend(backend_name, bundle, "cpu"))
            except ImportError as exc:  # e.g. a GPU image without the tokeniser's package
                lines.append(f"| {name} | {kind} | {device} | not run: {exc} | | | |")
                continue
            items = _items(gpu)
            batched = gpu.predict_batch(items)
            alone = [gpu.predict_batch([it])[0] for it in items]
            on_cpu = cpu.predict_batch(items)
            d_batch, d_cpu = _max_diff(batched, alone), _max_diff(batched, on_cpu)
            failures += int(d_batch > 1e-4 or d_cpu > 1e-3)
            lines.append(
                f"| {name} | {kind} | {device} | {d_batch:.2e} | {d_cpu:.2e} "
                f"| {_timed(gpu, items):.2f} | {_timed(cpu, items):.2f} |"
            )
    lines += [
        "",
        "Differences are absolute, relative to the value where it exceeds 1 (forecasts are in the "
        "series' units). Tolerances: batch vs alone 1e-4, GPU vs CPU 1e-3 (cuDNN and MKL sum in "
        "different orders). "
        + ("All within tolerance." if failures == 0 else f"{failures} row(s) OUT OF TOLERANCE."),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
