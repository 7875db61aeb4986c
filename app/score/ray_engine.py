"""`--engine ray`: the same per-chunk scoring (`BatchScorer.score`) on a Ray cluster with Ray Data:
read (one read task per unfinished part, rows numbered) -> map_batches on an actor pool (each actor
loads the bundle once) -> write_parquet, partitioned by part. Finished parts are then moved into
the run's staging folder in the local engine's layout, so resuming and assembling the output are
shared with it.

Rows are read by a small Ray Data datasource over `files.read_part`, the local engine's reader:
Ray's own read_json/read_csv infer one type per column (a row with a number where text belongs
fails the whole read instead of being one bad row), and number rows only by position, which Ray
Data does not promise to keep.

The input path and MODEL_DIR must be readable from every node (a shared filesystem for the input;
the image's /srv/models for the bundles), and the workers need lstm-serve installed (the same
image, or a runtime_env).
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import ray.data
from ray.data.block import BlockMetadata
from ray.data.context import DataContext
from ray.data.datasource import Datasource, ReadTask

from app.core.settings import Settings
from app.score.files import InputIndex, JobManifest, Staging, part_rows, read_part
from app.score.job import ScoreJob, progress_bar
from app.score.pipeline import BatchScorer, Scored, SourceFormat

ROW = "__score_row"  # row number column (unlikely to clash with a user's)
RAW = "__score_raw"  # JSON Lines: the line; CSV: the row's cells as a JSON object
PART = "_part"
STAGED = pa.schema([(PART, pa.int64()), ("row", pa.int64()), ("ok", pa.bool_()), ("record", pa.string())])


class PartsDatasource(Datasource):
    """The input's unfinished parts, one read task each, every row with its number."""

    def __init__(self, path: Path, source: SourceFormat, index: InputIndex, part_size: int, parts: list[int]):
        super().__init__()  # type: ignore[no-untyped-call]
        self.path, self.source, self.index = path, source, index
        self.part_size, self.parts = part_size, parts

    def estimate_inmemory_data_size(self) -> int | None:
        share = sum(part_rows(p, self.part_size, self.index.total) for p in self.parts)
        return int(self.path.stat().st_size * share / max(1, self.index.total))

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: DataContext | None = None
    ) -> list[ReadTask]:
        # One task per part whatever `parallelism` asks: a part is the unit of resumption.
        return [
            ReadTask(
                functools.partial(self.blocks, part),
                BlockMetadata(
                    num_rows=part_rows(part, self.part_size, self.index.total),
                    size_bytes=None,
                    input_files=(str(self.path),),
                    exec_stats=None,
                ),
                per_task_row_limit=per_task_row_limit,
            )
            for part in self.parts
        ]

    def blocks(self, part: int) -> list[pa.Table]:
        return [self.block(part)]

    def block(self, part: int) -> pa.Table:
        rows = read_part(self.path, self.source, self.index, part, self.part_size)
        numbers = [n for n, _ in rows]
        if self.source == "parquet":
            table = pa.Table.from_pylist([raw for _, raw in rows])
            return table.append_column(ROW, pa.array(numbers, pa.int64()))
        raws = [raw if self.source == "jsonl" else json.dumps(raw) for _, raw in rows]
        return pa.table({ROW: pa.array(numbers, pa.int64()), RAW: pa.array(raws, pa.string())})


class RayScorer:
    """The actor body: loads the task once, then scores each Ray Data batch."""

    def __init__(
        self, task: str, settings: dict[str, Any], options: dict[str, Any], batch_size: int,
        source: SourceFormat, part_size: int,
    ) -> None:  # fmt: skip
        self.scorer = BatchScorer.load(task, Settings(**settings), options, batch_size)
        self.source = source
        self.part_size = part_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        numbers = batch.column(ROW).to_pylist()
        if self.source == "parquet":
            raws: list[Any] = batch.drop_columns([ROW]).to_pylist()
        else:
            raws = batch.column(RAW).to_pylist()
            if self.source == "csv":
                raws = [json.loads(r) for r in raws]
        scored = self.scorer.score(list(zip(numbers, raws, strict=True)), self.source)
        return pa.Table.from_pydict(
            {
                PART: [(s.row - 1) // self.part_size for s in scored],
                "row": [s.row for s in scored],
                "ok": [s.ok for s in scored],
                "record": [s.record for s in scored],
            },
            schema=STAGED,
        )


def run_ray(
    job: ScoreJob, source: SourceFormat, index: InputIndex, todo: list[int], manifest: JobManifest,
    staging: Staging,
) -> None:  # fmt: skip
    written = staging.dir / "ray"
    # Parts a killed run finished are kept; its half-written ones are scored again.
    harvest(written, staging, manifest, job.part_size, index.total)
    todo = [p for p in todo if str(p) not in manifest.parts]
    if not todo:
        return
    if not ray.is_initialized():
        ray.init(address=job.address, log_to_driver=False, include_dashboard=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours below counts finished rows across the whole job
    cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
    workers = job.workers or max(1, int(cpus))

    # One actor per CPU does the work; reading a part and writing its answers are light, so their
    # tasks take no CPU slot (with one, they would wait for ever behind the actors).
    # One block per part, and (batch_size=None) one batch per block: each actor call scores one
    # whole part, the same rows in the same batches as the local engine, so the same numbers.
    ds = ray.data.read_datasource(
        PartsDatasource(job.input, source, index, job.part_size, todo),
        num_cpus=0,
        override_num_blocks=len(todo),
    )
    settings = job.settings.model_dump(mode="json", exclude={"api_key"})
    scored = ds.map_batches(
        RayScorer,
        fn_constructor_kwargs={
            "task": job.task,
            "settings": settings,
            "options": job.options,
            "batch_size": job.batch_size,
            "source": source,
            "part_size": job.part_size,
        },
        batch_size=None,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    done_before = index.total - sum(part_rows(p, job.part_size, index.total) for p in todo)
    with progress_bar(job, index.total, done_before) as bar:
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(written, bar, done_before, stop), daemon=True)
        watcher.start()
        try:
            scored.write_parquet(str(written), partition_cols=[PART], ray_remote_args={"num_cpus": 0})
        finally:
            stop.set()
            watcher.join()
        bar.n = done_before + _rows_written(written)
        bar.refresh()
    harvest(written, staging, manifest, job.part_size, index.total)


def harvest(written: Path, staging: Staging, manifest: JobManifest, part_size: int, total: int) -> None:
    """Move each complete `_part=k` folder Ray wrote into the staging layout (and the manifest);
    drop incomplete ones, so their parts are scored again."""
    if not written.is_dir():
        return
    for folder in sorted(written.glob(f"{PART}=*")):
        part = int(folder.name.split("=", 1)[1])
        try:
            table = pq.read_table(folder, schema=STAGED.remove(0))
        except (OSError, pa.ArrowInvalid):
            table = None
        if table is None:
            continue
        rows = table.sort_by("row").to_pylist()
        first = part * part_size + 1
        # complete: every row of the part exactly once (a retried write task may have left a copy)
        if [r["row"] for r in rows] == list(range(first, first + part_rows(part, part_size, total))):
            staging.write_part(manifest, part, [Scored(r["row"], r["ok"], r["record"]) for r in rows])
    shutil.rmtree(written)


def _rows_written(written: Path) -> int:
    total = 0
    for file in written.glob(f"{PART}=*/*.parquet"):
        with contextlib.suppress(OSError, pa.ArrowInvalid):  # still being written
            total += pq.ParquetFile(file).metadata.num_rows
    return total


def _watch(written: Path, bar: Any, base: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        bar.n = base + _rows_written(written)
        bar.refresh()
