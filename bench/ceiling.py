"""The all-core ceilings: what the machine can do for a workload with no HTTP at all, in-process,
one process per core with one runtime thread each (the arrangement that uses every core for a
small recurrent network; one process with N threads does not), started together and summed.

Per workload, items/s over all processes:
- `model`: prepared items straight through the Task's `predict_batch`, MAX_BATCH_SIZE per batch
  cut by the batcher's own length grouping, i.e. the model calls a server with full batches makes;
- `pipeline`: the same plus preparation, each raw input decoded as its own one-item request
  through the task's public `decode` (tokenising), as the server does per request;
- `model_torchscript`: `model` on TorchScript (where torch is installed), to pick the runtime per
  model (MODEL_BACKEND).

`python -m bench.ceiling SPEC OUT INDEX` is one such process; `measure_all` runs them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.core.backends import load_backend
from app.core.batching import MicroBatcher, length_groups
from app.core.bundle import load_bundle, resolve_bundle_dir
from app.core.settings import Settings
from app.main import TASK_PACKAGES
from bench.prepare import preparer

REPO = Path(__file__).resolve().parents[1]


def _barrier(folder: Path, name: str, index: int, parties: int) -> None:
    """Every process reaches `name` before any goes on, so all of them measure at once."""
    (folder / f"{name}.{index}").touch()
    while len(list(folder.glob(f"{name}.*"))) < parties:
        time.sleep(0.002)


def _grouped_calls(task: Any, items: list[Any], ratio: float) -> None:
    sizes = [task.item_size(it) for it in items]
    for group in length_groups(sizes, ratio):
        task.predict_batch([items[i] for i in group])


def _torchscript_task(tasks: dict[str, Any], model: str, model_dir: Path, threads: int) -> Any:
    key = f"{model}/torchscript"
    if key not in tasks:
        try:
            bundle = load_bundle(resolve_bundle_dir(model_dir, model))
            backend = load_backend("torchscript", bundle, "cpu", threads)
        except Exception:  # torch missing (light install) or no TorchScript artifact
            tasks[key] = None
        else:
            tasks[key] = importlib.import_module(TASK_PACKAGES[model]).Task(bundle, backend)
            tasks[key].predict_batch(tasks[key].warmup_items())
    return tasks[key]


def measure(spec: dict[str, Any], index: int) -> dict[str, Any]:
    settings = Settings(_env_file=None)  # shipped limits and precision, as the server
    model_dir = Path(spec["model_dir"])
    batch, seconds = int(spec["max_batch_size"]), float(spec["seconds"])
    ratio = float(inspect.signature(MicroBatcher).parameters["max_length_ratio"].default)
    folder, parties = Path(spec["barrier_dir"]), int(spec["processes"])
    tasks: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for wl in spec["workloads"]:
        model = wl["model"]
        if model not in tasks:
            bundle = load_bundle(resolve_bundle_dir(model_dir, model))
            backend = load_backend("onnx", bundle, "cpu", int(spec["threads"]), settings.precision_for(model))
            tasks[model] = importlib.import_module(TASK_PACKAGES[model]).Task(bundle, backend)
            tasks[model].predict_batch(tasks[model].warmup_items())
        task = tasks[model]
        prepare = preparer(model, task, settings)
        raw: list[Any] = wl["raw_items"]
        prepare(raw[:1])  # the first call loads the tokenizer; a running server has paid that
        items = [item for x in raw for item in prepare([x])]
        _grouped_calls(task, items[:batch], ratio)  # runtime warm-up at full batch size
        result: dict[str, Any] = {"precision": task.backend.precision}
        # The same model calls on TorchScript, float32: which runtime is faster for this model
        # (MODEL_BACKEND). Skipped where torch is not installed (it is an extra).
        other = _torchscript_task(tasks, model, model_dir, int(spec["threads"]))
        phases = [("model", task), ("pipeline", task)] + ([("model_torchscript", other)] if other else [])
        for phase, runner in phases:
            _barrier(folder, f"{wl['name']}-{phase}", index, parties)
            done, i = 0, 0
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                idx = [(i + k) % len(raw) for k in range(batch)]
                i += batch
                if phase == "pipeline":
                    chunk = [item for j in idx for item in prepare([raw[j]])]
                else:
                    chunk = [items[j % len(items)] for j in idx]
                _grouped_calls(runner, chunk, ratio)
                done += batch
            result[phase] = done / (time.perf_counter() - started)
        out[wl["name"]] = result
    return out


def measure_all(
    model_dir: Path, workloads: list[dict[str, Any]], processes: int, seconds: float, max_batch_size: int
) -> dict[str, Any]:
    """`processes` x 1-thread processes at once; items/s summed (and each process's share)."""
    with tempfile.TemporaryDirectory(prefix="ceiling-") as tmp:
        spec = {
            "model_dir": str(model_dir),
            "threads": 1,
            "max_batch_size": max_batch_size,
            "seconds": seconds,
            "workloads": workloads,
            "barrier_dir": tmp,
            "processes": processes,
        }
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.ceiling",
                    str(spec_path),
                    str(Path(tmp) / f"out{i}.json"),
                    str(i),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for i in range(processes)
        ]
        logs = [p.communicate(timeout=1800)[0].decode(errors="replace") for p in procs]
        failed = [log[-2000:] for p, log in zip(procs, logs, strict=True) if p.returncode != 0]
        if failed:
            raise RuntimeError(f"ceiling process failed:\n{failed[0]}")
        parts = [json.loads((Path(tmp) / f"out{i}.json").read_text()) for i in range(processes)]
    out: dict[str, Any] = {"processes": processes, "threads_per_process": 1, "workloads": {}}
    for name in parts[0]:
        out["workloads"][name] = {
            "precision": parts[0][name]["precision"],
            "model": sum(p[name]["model"] for p in parts),
            "pipeline": sum(p[name]["pipeline"] for p in parts),
            "model_torchscript": (
                sum(p[name]["model_torchscript"] for p in parts)
                if all("model_torchscript" in p[name] for p in parts)
                else None
            ),
            "model_per_process": [p[name]["model"] for p in parts],
            "pipeline_per_process": [p[name]["pipeline"] for p in parts],
        }
    return out


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(json.dumps(measure(spec, int(argv[2]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
