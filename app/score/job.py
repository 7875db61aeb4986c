"""A bulk-scoring job: what to score and how, the local engine, and the assembly both engines end
with. The Ray engine (`ray_engine.py`) is imported only when asked for."""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.core.bundle import model_key
from app.core.settings import Settings
from app.main import default_bundle_dir
from app.score.files import (
    InputIndex,
    JobManifest,
    Staging,
    file_format,
    index_input,
    part_rows,
    read_part,
    write_outputs,
)
from app.score.pipeline import BatchScorer, Prepared, check_options

Engine = Literal["local", "ray"]


@dataclass(frozen=True)
class ScoreJob:
    task: str
    input: Path
    output: Path
    errors: Path
    settings: Settings
    options: dict[str, Any] = field(default_factory=dict)
    engine: Engine = "local"
    batch_size: int = 32
    part_size: int = 2048
    restart: bool = False
    keep_parts: bool = False
    progress: bool = True
    # Ray only
    address: str | None = None
    workers: int | None = None

    def identity(self) -> dict[str, Any]:
        """What staged parts depend on: a resumed run must agree on all of it. Not the engine: both
        give the same answers, so a run started locally can be finished on Ray and back."""
        stat = self.input.stat()
        bundle = default_bundle_dir(self.settings, self.task)
        return {
            "task": self.task,
            "input": str(self.input.resolve()),
            "input_size": stat.st_size,
            "input_mtime_ns": stat.st_mtime_ns,
            "options": self.options,
            "part_size": self.part_size,
            "model": bundle.parent.name,
            "model_version": bundle.name,
            "backend": self.settings.backend,
            "precision": self.settings.precision_for(bundle.parent.name, self.task),
            "limits": asdict(self.settings.input_limits),
        }


@dataclass(frozen=True)
class JobSummary:
    rows: int
    ok: int
    errors: int
    rescored_rows: int  # rows scored by this run (the rest came from finished parts)
    seconds: float
    model: str = ""  # name@version that scored them

    @property
    def rows_per_s(self) -> float:
        return self.rescored_rows / self.seconds if self.seconds > 0 else 0.0


def progress_bar(job: ScoreJob, total: int, initial: int) -> Any:
    """Rows done, rate and ETA on stderr (tqdm)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="row",
        desc=f"{job.task} ({job.engine})",
        disable=not job.progress,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )


def run(job: ScoreJob) -> JobSummary:
    check_options(job.task, job.options)
    source = file_format(job.input)
    file_format(job.output)  # refuse an unknown output type before any work
    staging = Staging(job.output)
    identity = job.identity()
    manifest = staging.open(identity, job.restart)
    index = index_input(job.input, source, job.part_size)
    n_parts = index.parts(job.part_size)
    started = time.perf_counter()
    done_before = sum(part_rows(int(p), job.part_size, index.total) for p in manifest.parts)
    todo = [p for p in range(n_parts) if str(p) not in manifest.parts]
    if job.engine == "ray":
        from app.score.ray_engine import run_ray

        run_ray(job, source, index, todo, manifest, staging)
    else:
        _run_local(job, source, index, todo, manifest, staging)
    seconds = time.perf_counter() - started
    missing = [p for p in range(n_parts) if str(p) not in manifest.parts]
    if missing:
        raise RuntimeError(f"parts {missing[:5]} were not finished; run again to resume")
    ok, errors = write_outputs(job.output, job.errors, (staging.read_part(p) for p in range(n_parts)))
    if not job.keep_parts:
        staging.remove()
    model = model_key(identity["model"], identity["model_version"])
    return JobSummary(index.total, ok, errors, index.total - done_before, seconds, model)


def _run_local(
    job: ScoreJob, source: Any, index: InputIndex, todo: list[int], manifest: JobManifest, staging: Staging
) -> None:
    if not todo:
        return
    scorer = BatchScorer.load(job.task, job.settings, job.options, job.batch_size)

    def prepare(part: int) -> Prepared:
        return scorer.prepare(read_part(job.input, source, index, part, job.part_size), source)

    done = index.total - sum(part_rows(p, job.part_size, index.total) for p in todo)
    # Decoding the next part (tokenising, which holds the GIL) overlaps the model run on this one
    # (the runtimes release the GIL), so one process keeps two cores busy.
    with progress_bar(job, index.total, done) as bar, ThreadPoolExecutor(1, "decode") as pool:
        upcoming = pool.submit(prepare, todo[0])
        for i, part in enumerate(todo):
            prepared = upcoming.result()
            if i + 1 < len(todo):
                upcoming = pool.submit(prepare, todo[i + 1])
            staging.write_part(manifest, part, scorer.finish(prepared))
            bar.update(len(prepared.rows))
            bar.set_postfix(errors=sum(p["errors"] for p in manifest.parts.values()), refresh=False)


def summary_line(job: ScoreJob, summary: JobSummary) -> str:
    return json.dumps(
        {
            "task": job.task,
            "model": summary.model,
            "engine": job.engine,
            "rows": summary.rows,
            "ok": summary.ok,
            "errors": summary.errors,
            "scored_this_run": summary.rescored_rows,
            "seconds": round(summary.seconds, 2),
            "rows_per_s": round(summary.rows_per_s, 1),
            "output": str(job.output),
            "errors_file": str(job.errors),
        }
    )
