"""Writing bundles: export a trained module to TorchScript and ONNX and seal it with a manifest.

The format itself is defined by `app.core.bundle.Manifest` (training depends on the app's
contract, never the other way round), so a bundle that this module writes is one the service
can read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.backends import load_backend
from app.core.bundle import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    Artifact,
    Bundle,
    Manifest,
    Section,
    TensorSpec,
    discover_tasks,
    load_bundle,
    read_manifest,
    resolve_bundle_dir,
    sha256_file,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = ROOT / "models"
README = ROOT / "README.md"
# Largest deviation of an exported runtime from the eager model, relative to max(1, |eager|).
EXPORT_TOLERANCE = 1e-4

log = logging.getLogger(__name__)


class ExportMismatchError(RuntimeError):
    """An exported artifact does not compute what the trained module computes."""


def code_revision() -> str:
    """The commit the training code ran at, marked dirty when the tree had local changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "training", "app"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def export_torchscript(module: torch.nn.Module, path: Path) -> None:
    """Script the module (keeps data-dependent control flow such as packing exact)."""
    module.eval()
    scripted = torch.jit.script(module)
    scripted.save(str(path))  # type: ignore[no-untyped-call]


def export_onnx(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: Path,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    opset: int = 17,
) -> None:
    """Export with the TorchScript-based exporter: it maps packed LSTMs to ONNX LSTM nodes with
    `sequence_lens`, so padded batches match single items (the dynamo exporter cannot)."""
    module.eval()
    dynamic_axes: dict[str, dict[int, str]] = {}
    for spec in [*inputs, *outputs]:
        axes = {i: d for i, d in enumerate(spec.shape) if isinstance(d, str)}
        if axes:
            dynamic_axes[spec.name] = axes
    with torch.no_grad():
        torch.onnx.export(
            module,
            example_inputs,
            str(path),
            input_names=[s.name for s in inputs],
            output_names=[s.name for s in outputs],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
        )


def write_bundle(
    *,
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    task: str,
    version: str,
    inputs: Sequence[TensorSpec],
    name: str | None = None,
    outputs: Sequence[TensorSpec],
    architecture: dict[str, Any],
    headline: dict[str, Any],
    metrics: dict[str, Any],
    data: dict[str, Any],
    preprocessing: Section | None = None,
    labels: Sequence[str] = (),
    training: dict[str, Any] | None = None,
    extra_files: dict[str, tuple[str, bytes]] | None = None,
    notes: str = "",
    model_dir: Path = DEFAULT_MODEL_DIR,
    overwrite: bool = False,
    check_inputs: tuple[torch.Tensor, ...] | None = None,
    tolerance: float = EXPORT_TOLERANCE,
    revision: str | None = None,
) -> Path:
    """Export `module` and write a complete, verified bundle to `model_dir/name/version/` (`name`
    defaults to the task: the shipped models are named after their tasks; a user's model is served
    by the endpoint its manifest's `task` names, under its own name).

        `extra_files` maps artifact name -> (file name, bytes), e.g. {"vocab": ("vocab.txt", ...)}.
        `preprocessing` is the task's typed section (`app/<task>/bundle.py`).
        The bundle is assembled in a temporary folder and moved into place only once it loads back
        (its section included) and both runtimes reproduce the eager module on `check_inputs`
        (default: `example_inputs`; see `check_exported`). Otherwise the shipped bundle is left
        exactly as it was and nothing half-written stays behind. `revision`: the training code's
        commit when the run started (default: now), so a long run records the code it ran.
    """
    folder = model_dir / (name or task)
    final = folder / version
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; pick a new version or pass overwrite=True")
    staging = folder / f".{version}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        export_torchscript(module, staging / "model.pt")
        export_onnx(module, example_inputs, staging / "model.onnx", inputs, outputs)
        files = {"torchscript": "model.pt", "onnx": "model.onnx"}
        for name, (filename, content) in (extra_files or {}).items():
            (staging / filename).write_bytes(content)
            files[name] = filename
        artifacts = {
            name: Artifact(
                path=filename,
                sha256=sha256_file(staging / filename),
                bytes=(staging / filename).stat().st_size,
            )
            for name, filename in files.items()
        }
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            task=task,
            version=version,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            code_revision=revision or code_revision(),
            architecture=architecture,
            inputs=list(inputs),
            outputs=list(outputs),
            artifacts=artifacts,
            preprocessing={} if preprocessing is None else preprocessing.model_dump(mode="json"),
            labels=list(labels),
            headline=headline,
            metrics=metrics,
            data=data,
            training=training or {},
            notes=notes,
        )
        (staging / MANIFEST_NAME).write_text(
            json.dumps(manifest.model_dump(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        written = load_bundle(staging)  # must round-trip through the service's own loader
        if preprocessing is not None:
            written.section(type(preprocessing))
        check_exported(written, module, check_inputs or example_inputs, tolerance)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def check_exported(
    bundle: Bundle, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], tolerance: float
) -> dict[str, float]:
    """Run `inputs` through the eager module and through the bundle's ONNX and TorchScript
    artifacts, on the service's own backends; raise ExportMismatchError when any output differs
    by more than `tolerance` (relative to max(1, |eager|)). Time steps past a row's `lengths` are
    padding, which the service never reads, so they are left out. Returns the deviations."""
    specs = bundle.manifest
    feeds = {spec.name: t.detach().cpu().numpy() for spec, t in zip(specs.inputs, inputs, strict=True)}
    module.eval()
    with torch.inference_mode():
        out = module(*inputs)
    eager_outs = out if isinstance(out, tuple | list) else (out,)
    eager = {spec.name: t.detach().cpu().numpy() for spec, t in zip(specs.outputs, eager_outs, strict=True)}
    deviations = {}
    for kind in ("onnx", "torchscript"):
        got = load_backend(kind, bundle, "cpu").run(feeds)
        worst = 0.0
        for spec in specs.outputs:
            want, have = eager[spec.name], got[spec.name]
            if want.shape != have.shape:
                raise ExportMismatchError(
                    f"{kind} output {spec.name!r} has shape {have.shape}, the eager module {want.shape}"
                )
            keep = _valid_steps(spec.shape, want.shape, feeds.get("lengths"))
            diff = np.abs(have - want) / np.maximum(1.0, np.abs(want))
            worst = max(worst, float(diff[keep].max(initial=0.0)))
        deviations[kind] = worst
        log.info("export check %s: max deviation from eager %.2e (tolerance %.0e)", kind, worst, tolerance)
        if not worst <= tolerance:  # NaN fails too
            raise ExportMismatchError(
                f"{bundle.path}: {kind} differs from the eager model by {worst:.2e} "
                f"(tolerance {tolerance:.0e}); the bundle was not shipped"
            )
    return deviations


def _valid_steps(dims: Sequence[str | int], shape: tuple[int, ...], lengths: np.ndarray | None) -> np.ndarray:
    """Boolean mask over an output: False at time steps at or past the row's length."""
    keep = np.ones(shape, dtype=bool)
    if lengths is None or "time" not in dims or dims[0] != "batch":
        return keep
    axis = list(dims).index("time")
    steps = np.arange(shape[axis])
    for row, n in enumerate(lengths):
        index: list[Any] = [row] + [slice(None)] * (len(shape) - 1)
        index[axis] = steps >= n
        keep[tuple(index)] = False
    return keep


def shipped_metric(task: str, *path: str, model_dir: Path = DEFAULT_MODEL_DIR) -> float | None:
    """A figure from the shipped bundle's `metrics` (e.g. "validation", "accuracy"), or None when
    there is no readable bundle or no such figure. Re-runs compare on a selection split with it:
    a bundle is replaced only when that figure improves (git keeps every committed copy)."""
    try:
        value: Any = read_manifest(resolve_bundle_dir(model_dir, task)).metrics
        for key in path:
            value = value[key]
        return float(value)
    except Exception:
        return None


def replace_readme_section(name: str, markdown: str, readme: Path = README) -> None:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in the README.

    Training scripts call this with tables computed from their own evaluation, so the README's
    figures are never typed by hand.
    """
    text = readme.read_text(encoding="utf-8")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {start} ... {end} markers")
    block = f"{start}\n{markdown.strip()}\n{end}"
    readme.write_text(pattern.sub(lambda _: block, text), encoding="utf-8")


def models_table(model_dir: Path = DEFAULT_MODEL_DIR) -> str:
    """The README's overview table: one row per shipped bundle, read from the manifests."""
    rows = [
        "| model | version | architecture | headline metric | split | size (ONNX) | trained |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in discover_tasks(model_dir):
        m = read_manifest(resolve_bundle_dir(model_dir, task))
        value = m.headline.value
        shown = f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
        size_mb = m.artifacts["onnx"].bytes / 1e6
        rows.append(
            f"| {task} | {m.version} | {m.architecture.get('summary', m.architecture.get('name', ''))} "
            f"| {m.headline.metric} = {shown} | {m.headline.split} | {size_mb:.1f} MB "
            f"| {m.created_at[:10]} |"
        )
    return "\n".join(rows)


def update_readme(task_section: tuple[str, str] | None = None, model_dir: Path = DEFAULT_MODEL_DIR) -> None:
    """Refresh the overview table and, if given, one task's own section (name, markdown).

    Only for bundles written to the repository's own `models/`: a smoke run into a scratch
    folder must not rewrite the README's figures."""
    if model_dir.resolve() != DEFAULT_MODEL_DIR.resolve():
        log.info("README not updated: %s is not the shipped models/ folder", model_dir)
        return
    replace_readme_section("models", models_table(model_dir))
    if task_section is not None:
        replace_readme_section(*task_section)
