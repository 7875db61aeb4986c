"""The model bundle contract: the one seam between `training/` (writer) and `app/` (reader).

A bundle is a folder `<model_dir>/<name>/<version>/` holding `manifest.json` plus the artifacts
it lists (at least `onnx` -> `model.onnx` and `torchscript` -> `model.pt`). The manifest carries
a SHA-256 per artifact; the loader recomputes them and refuses a bundle whose files do not match.
Its `preprocessing` section belongs to the task: each task package defines it as a pydantic model
(`app/<task>/bundle.py`), training's export builds that model, and the task reads it back with
`Bundle.section` at start-up. The folders name the model and its version; the manifest's `task`
says which endpoint serves it (the shipped models are named after their tasks). `models/README.md`
documents the format for humans; this module and those section models are its executable
definition.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# 2: `preprocessing` is each task's typed section (one naming across tasks: pad_id, unk_id...).
FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"
# Keys whose values can be large tables; /models leaves them out.
LARGE_KEYS = frozenset({"vocab", "char_vocab", "ablation", "confusion_matrix_full", "per_series"})


class BundleError(RuntimeError):
    """A bundle is missing, malformed or tampered with. The message names the file."""


class Section(BaseModel):
    """Base of the tasks' `preprocessing` section models: strict, so a misspelt or stale field in
    a manifest is an error at start-up rather than a silently ignored setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)


SectionT = TypeVar("SectionT", bound=Section)


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    dtype: Literal["int64", "int32", "float32", "bool"]
    # Symbolic dimensions are strings ("batch", "time"), fixed ones integers.
    shape: list[str | int]


class Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class Headline(BaseModel):
    """The one figure the README's model table shows for a bundle."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    value: float
    split: str


INT8_ARTIFACT = "onnx_int8"


class Quantization(BaseModel):
    """The bundle's int8 variant of its ONNX graph (artifact `onnx_int8`), scored on the same
    held-out test split as the float32 graph by `python -m training.quantize`. `default` says
    whether `PRECISION=auto` serves it: the headline metric dropped by at most `max_drop_points`
    and the graph ran faster model-only."""

    model_config = ConfigDict(extra="forbid")

    method: str
    metric: str
    split: str
    float32: float
    int8: float
    drop_points: float
    max_drop_points: float
    speedup_batch_1: float = Field(description="int8 / float32 items/s, one item per call, one thread.")
    speedup_batch_32: float = Field(description="The same with 32 items per call.")
    default: bool
    measured_at: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    task: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str = Field(pattern=r"^[0-9]+(\.[0-9]+)*([.-][0-9A-Za-z]+)*$")
    created_at: str
    code_revision: str
    architecture: dict[str, Any]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    artifacts: dict[str, Artifact]
    # Task-specific inference parameters: tokenizer, max length, label set, scaler, horizon...
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list)
    headline: Headline
    # metrics[split_name] -> {metric: value or table}; split names say what they were measured on.
    metrics: dict[str, Any]
    data: dict[str, Any]
    training: dict[str, Any] = Field(default_factory=dict)
    quantization: Quantization | None = None
    notes: str = ""

    @model_validator(mode="after")
    def _quantized_graph_listed(self) -> Manifest:
        if self.quantization is not None and INT8_ARTIFACT not in self.artifacts:
            raise ValueError(f"quantization is described but artifacts list no {INT8_ARTIFACT!r}")
        return self

    def summary(self) -> dict[str, Any]:
        """The manifest without large tables, as served by `GET /models`."""
        stripped: dict[str, Any] = _strip_large(self.model_dump())
        return stripped


def _strip_large(value: Any) -> Any:
    if isinstance(value, dict):
        # `artifacts` is keyed by file role ("vocab" among them): always shown whole.
        return {
            k: v if k == "artifacts" else _strip_large(v) for k, v in value.items() if k not in LARGE_KEYS
        }
    if isinstance(value, list):
        return [_strip_large(v) for v in value]
    return value


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key so that 1.10.0 > 1.9.0 and numeric parts beat alphanumeric ones."""
    parts = re.split(r"[.-]", version)
    return tuple((0, int(p)) if p.isdigit() else (-1, p) for p in parts)


class Bundle:
    """A verified bundle on disk."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest

    @property
    def name(self) -> str:
        """The model's name: its folder under MODEL_DIR (requests choose models by it)."""
        return self.path.parent.name

    @property
    def version(self) -> str:
        """The served version: its folder's name (a bundle copied to a new folder is a new version)."""
        return self.path.name

    def artifact(self, name: str) -> Path:
        try:
            return self.path / self.manifest.artifacts[name].path
        except KeyError:
            raise BundleError(
                f"bundle {self.path} has no artifact {name!r} (it lists {sorted(self.manifest.artifacts)})"
            ) from None

    def read_json(self, name: str) -> Any:
        return json.loads(self.artifact(name).read_text(encoding="utf-8"))

    def read_lines(self, name: str) -> list[str]:
        """The artifact's lines; a final newline does not make an empty last line."""
        return self.artifact(name).read_text(encoding="utf-8").removesuffix("\n").split("\n")

    def section(self, model: type[SectionT]) -> SectionT:
        """The manifest's `preprocessing` section as the task's typed model; a BundleError naming
        each offending field when it does not fit."""
        try:
            return model.model_validate(self.manifest.preprocessing)
        except ValidationError as exc:
            problems = "; ".join(
                f"preprocessing.{'.'.join(str(p) for p in e['loc']) or '(section)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise BundleError(
                f"{self.path / MANIFEST_NAME} does not fit {model.__name__}: {problems}"
            ) from None

    def field_error(self, field: str, message: str) -> BundleError:
        """A section field that is well-formed but does not match the bundle's artifacts or this
        service's code (e.g. a vocabulary size that differs from the vocabulary file)."""
        return BundleError(f"{self.path / MANIFEST_NAME}: preprocessing.{field}: {message}")


def resolve_bundle_dir(model_dir: Path, task: str, version: str | None = None) -> Path:
    """`model_dir/task/version`, or the highest version there when none is pinned."""
    task_dir = model_dir / task
    if not task_dir.is_dir():
        raise BundleError(
            f"no bundle for model {task!r}: folder {task_dir} does not exist "
            f"(train it with `python -m training.{task}` or set MODELS to the ones you have)"
        )
    if version is not None:
        path = task_dir / version
        if not (path / MANIFEST_NAME).is_file():
            raise BundleError(f"no bundle {task!r} version {version!r}: {path / MANIFEST_NAME} missing")
        return path
    versions = [p for p in task_dir.iterdir() if (p / MANIFEST_NAME).is_file()]
    if not versions:
        raise BundleError(f"no bundle for model {task!r}: no {MANIFEST_NAME} under {task_dir}/*/")
    return max(versions, key=lambda p: version_key(p.name))


def discover_tasks(model_dir: Path) -> list[str]:
    """Task folders under `model_dir` that hold at least one manifest."""
    if not model_dir.is_dir():
        return []
    return sorted(p.name for p in model_dir.iterdir() if p.is_dir() and any(p.glob(f"*/{MANIFEST_NAME}")))


def model_key(name: str, version: str) -> str:
    """`name@version`: how a request's `model` field, /models and refusals name one version."""
    return f"{name}@{version}"


@dataclass(frozen=True)
class BundleRef:
    """A bundle found under MODEL_DIR whose manifest reads: which model, version and task."""

    name: str
    version: str
    task: str
    path: Path

    @property
    def key(self) -> str:
        return model_key(self.name, self.version)


def scan_bundles(model_dir: Path, names: Sequence[str] = ()) -> tuple[list[BundleRef], list[str]]:
    """Every `<name>/<version>/manifest.json` under `model_dir` (only `names`' folders when given),
    with the manifest read and checked against the format; and one problem line per bundle that
    could not be read (it is skipped: one bad bundle must not keep the others from being served).
    Checksums are verified later, by `load_bundle`, when a worker loads the bundle."""
    refs: list[BundleRef] = []
    problems: list[str] = []
    if not model_dir.is_dir():
        return refs, [f"MODEL_DIR {model_dir} is not a folder"]
    wanted = set(names)
    folders = sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    for missing in sorted(wanted - {p.name for p in folders}):
        problems.append(
            f"no bundle for model {missing!r}: folder {model_dir / missing} does not exist (MODELS)"
        )
    for folder in folders:
        if wanted and folder.name not in wanted:
            continue
        # `.1.0.0.partial` is a bundle being written (training.bundle.write_bundle): not yet one.
        versions = [
            v for v in folder.iterdir() if not v.name.startswith(".") and (v / MANIFEST_NAME).is_file()
        ]
        for path in sorted(versions, key=lambda v: version_key(v.name)):
            try:
                manifest = read_manifest(path)
            except BundleError as exc:
                problems.append(str(exc))
                continue
            refs.append(BundleRef(folder.name, path.name, manifest.task, path))
    return refs, problems


def read_manifest(path: Path) -> Manifest:
    manifest_path = path / MANIFEST_NAME
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{manifest_path} is missing") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from None
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise BundleError(f"{manifest_path} does not match the bundle format: {exc}") from None
    if manifest.format_version != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path} has format_version {manifest.format_version}; "
            f"this service reads {FORMAT_VERSION}"
        )
    return manifest


# The model graphs each backend reads. A bundle served by one backend may lack the other's files:
# the default image leaves out the TorchScript ones (~22 MB) it has no torch to run.
BACKEND_ARTIFACTS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", INT8_ARTIFACT),
    "torchscript": ("torchscript",),
}


def unused_by(backend: str) -> tuple[str, ...]:
    """The graph artifacts backend `backend` never reads (those a bundle may lack for it)."""
    return tuple(a for kind, names in BACKEND_ARTIFACTS.items() if kind != backend for a in names)


def load_bundle(
    path: Path, required: tuple[str, ...] = ("onnx", "torchscript"), may_lack: tuple[str, ...] = ()
) -> Bundle:
    """Read and verify a bundle: manifest schema, required artifacts, every checksum. The manifest
    must still list every required artifact; only the files named in `may_lack` (the graphs of a
    backend not in use, `unused_by`) may be absent, and when present they are verified like the
    rest: a wrong file is refused whichever backend serves."""
    manifest = read_manifest(path)
    for name in required:
        if name not in manifest.artifacts:
            raise BundleError(f"{path / MANIFEST_NAME} lists no {name!r} artifact")
    for name, art in manifest.artifacts.items():
        file = path / art.path
        if not file.is_file() and name in may_lack:
            continue
        if not file.is_file():
            raise BundleError(f"bundle {path}: artifact {name!r} file {file} is missing")
        actual = sha256_file(file)
        if actual != art.sha256:
            raise BundleError(
                f"bundle {path}: checksum mismatch for {file} "
                f"(manifest says sha256 {art.sha256[:12]}..., file has {actual[:12]}...); "
                "refusing a corrupt or tampered bundle"
            )
    return Bundle(path, manifest)
