"""`python -m app.score TASK INPUT OUTPUT` (also installed as `lstm-score`): score a JSON Lines,
CSV or Parquet file with the service's models, through the same task pipeline as POST /<task>.

    python -m app.score sentiment reviews.jsonl scored.parquet
    python -m app.score ner docs.csv entities.jsonl --option return_tags=true
    python -m app.score forecast series.parquet forecasts.jsonl --option 'levels=[50, 95]'
    python -m app.score sentiment reviews.jsonl scored.jsonl --model sst5@1.0.0
    python -m app.score sentiment /shared/reviews.jsonl /shared/out.jsonl --engine ray --address auto

Settings (MODEL_DIR, BACKEND, DEVICE, THREADS, the input limits) come from the environment, as
for the service. Rows the API would refuse go to the errors file (default `<OUTPUT
stem>.errors.jsonl`) with their row number and the API's 422 detail; the job goes on. Parts are
staged in `<OUTPUT>.parts/`: run the same command again after an interruption to resume.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.core.bundle import BundleError
from app.core.settings import Settings
from app.score.files import errors_path
from app.score.job import ScoreJob, run, summary_line
from app.score.pipeline import ROW_FORMATS


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"{key}: value is not JSON: {value!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app.score",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", choices=sorted(ROW_FORMATS))
    p.add_argument("input", type=Path, help=".jsonl/.ndjson, .csv or .parquet")
    p.add_argument("output", type=Path, help="format from the suffix: .jsonl, .csv or .parquet")
    p.add_argument("--errors", type=Path, help="errors file (default: <OUTPUT stem>.errors.jsonl)")
    p.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="request-wide field for every row, e.g. return_attention=true, 'levels=[80,95]'",
    )
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--workers", type=int, help="Ray actors, one bundle each (default: the cluster's CPUs)")
    p.add_argument("--batch-size", type=int, help="items per model call (default: MAX_BATCH_SIZE)")
    p.add_argument("--part-size", type=int, default=2048, help="rows per resumable part (default 2048)")
    p.add_argument("--model-dir", type=Path, help="overrides MODEL_DIR")
    p.add_argument(
        "--model",
        metavar="NAME[@VERSION]",
        help="the model to score with, as a request's `model` field (default: the task's default, "
        "DEFAULT_MODELS)",
    )
    p.add_argument("--restart", action="store_true", help="discard finished parts of an earlier run")
    p.add_argument("--keep-parts", action="store_true", help="keep <OUTPUT>.parts/ after success")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.model_dir is not None:
        overrides["model_dir"] = args.model_dir
    if args.model is not None:
        # The one place both engines (and Ray's actors, which get the settings) read the choice from.
        overrides["default_models"] = f"{args.task}={args.model}"
    if args.engine == "ray":
        # One runtime thread per actor unless THREADS says otherwise: Ray runs one actor per CPU.
        overrides["threads"] = Settings().threads or 1
    else:
        # One process: THREADS, or every core (WORKERS splits cores between server processes).
        overrides["workers"] = 1
    settings = Settings(**overrides)
    if not args.input.is_file():
        raise SystemExit(f"{args.input}: no such file")
    if args.part_size < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise SystemExit("--part-size and --batch-size must be at least 1")
    job = ScoreJob(
        task=args.task,
        input=args.input,
        output=args.output,
        errors=args.errors or errors_path(args.output),
        settings=settings,
        options=dict(args.option),
        engine=args.engine,
        batch_size=args.batch_size or settings.max_batch_size,
        part_size=args.part_size,
        restart=args.restart,
        keep_parts=args.keep_parts,
        progress=not args.no_progress,
        address=args.address,
        workers=args.workers,
    )
    try:
        summary = run(job)
    except BundleError as exc:  # e.g. --model naming no bundle, or one of another task
        raise SystemExit(f"--model / MODEL_DIR: {exc}") from None
    print(summary_line(job, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
