"""`python -m bench.bulk`: items/s for scoring one file of IMDB reviews three ways, on this machine:
the bulk command's local engine, the same command on a local Ray (`--engine ray`), and the HTTP
service (`python -m app`) driven at several concurrencies and texts per request, best one kept.
The bulk runs are the real command in a subprocess, progress bar included; the HTTP runs reuse
the service benchmark's server and load generator. Writes bench/bulk.md.

The review file is built from ../shared/data/sentiment/imdb (never committed): a fixed shuffle of
the 100,000 train, test and unlabelled reviews, cut to --rows. `--big N` also scores an N-review
file end to end with both engines and checks they give the same answers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.loadgen import run_load
from bench.machine import describe, one_line, other_busy_processes
from bench.server import Server, ServerConfig

ROOT = Path(__file__).resolve().parents[1]
IMDB = ROOT.parent / "shared" / "data" / "sentiment" / "imdb"
SPLITS = ("train_pos", "train_neg", "test_pos", "test_neg", "unsup")
# (concurrent clients, reviews per request): one review per call as most callers send, and
# batches of 16 per call, which the service batches further.
HTTP_GRID = ((16, 1), (64, 1), (4, 16), (16, 16))


def build_reviews(path: Path, rows: int) -> Path:
    if path.is_file() and sum(1 for _ in path.open("rb")) == rows:
        return path
    reviews: list[dict[str, str]] = []
    for split in SPLITS:
        with gzip.open(IMDB / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
            reviews.extend(
                {"id": f"{split}/{json.loads(line)['id']}", "text": json.loads(line)["text"]} for line in f
            )
    if rows > len(reviews):
        raise SystemExit(f"--rows {rows}: only {len(reviews)} reviews in {IMDB}")
    random.Random(0).shuffle(reviews)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in reviews[:rows])
    return path


def score_file(src: Path, out: Path, engine: str, log: Path) -> dict[str, Any]:
    """The bulk command, as a user runs it; wall time includes loading the model (and Ray)."""
    cmd = [sys.executable, "-m", "app.score", "sentiment", str(src), str(out), "--restart"]
    if engine == "ray":
        cmd += ["--engine", "ray"]
    started = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    summary: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    progress = log.read_text(errors="replace").replace("\r", "\n")
    summary["wall_s"] = wall
    summary["items_per_s"] = summary["rows"] / wall
    summary["progress_shown"] = "row/s" in progress and f"{summary['rows']}/{summary['rows']}" in progress
    return summary


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Whether two output files are byte for byte the same (both engines score a part in the same
    batches), and else how far apart: rows whose id or label differ, largest probability gap."""
    rows_a = [json.loads(line) for line in a.open()]
    rows_b = [json.loads(line) for line in b.open()]
    assert len(rows_a) == len(rows_b), (len(rows_a), len(rows_b))
    labels = sum(x["label"] != y["label"] or x["id"] != y["id"] for x, y in zip(rows_a, rows_b, strict=True))
    diff = max(
        abs(x["probabilities"][k] - y["probabilities"][k])
        for x, y in zip(rows_a, rows_b, strict=True)
        for k in x["probabilities"]
    )
    return {
        "rows": len(rows_a),
        "identical": a.read_bytes() == b.read_bytes(),
        "label_or_id_mismatches": labels,
        "max_probability_diff": diff,
    }


def training_running() -> list[str]:
    """Training jobs on this machine: the benchmark never runs beside one (it would slow the
    training down and measure the contention)."""
    out = subprocess.run(["pgrep", "-af", "training"], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if "pgrep" not in line and "bench.bulk" not in line]


def http_grid(src: Path, model_dir: Path, workdir: Path) -> list[dict[str, Any]]:
    texts = [json.loads(line)["text"] for line in src.open()]
    cells = []
    with Server(ServerConfig(models=("sentiment",)), model_dir, workdir / "server.log", ROOT) as server:
        for concurrency, per_request in HTTP_GRID:
            bodies = [
                json.dumps({"texts": texts[i : i + per_request]}).encode()
                for i in range(0, len(texts) - per_request + 1, per_request)
            ]
            measured = run_load(
                server.base_url,
                "/sentiment",
                bodies,
                concurrency,
                max_requests=len(bodies),
                time_cap_s=600.0,
                warmup_requests=min(len(bodies), 4 * concurrency),
            )
            cells.append(
                {
                    "concurrency": concurrency,
                    "per_request": per_request,
                    "items": measured.requests * per_request,
                    "wall_s": measured.wall_s,
                    "items_per_s": measured.requests * per_request / measured.wall_s,
                    "errors": sum(measured.errors.values()),
                }
            )
            print(
                f"  http c={concurrency} x{per_request}: {cells[-1]['items_per_s']:.1f} items/s",
                file=sys.stderr,
            )
    return cells


def _same(same: dict[str, Any]) -> str:
    return (
        f"{same['rows']:,} rows, output files identical: {same['identical']} "
        f"({same['label_or_id_mismatches']} label/id mismatches, largest probability difference "
        f"{same['max_probability_diff']:.2e})"
    )


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Bulk scoring benchmark",
        "",
        "`python -m bench.bulk` scores one file of IMDB reviews (a fixed shuffle of train, test and",
        "unlabelled reviews, average about 1,300 characters) with the sentiment model three ways. The",
        "bulk rows are the real command (`python -m app.score`) in a subprocess, wall clock from start",
        "to exit, so model loading (and Ray start-up and actor loading) is included; the HTTP rows",
        "drive a real `python -m app` server (shipped settings) over loopback and time the measured",
        "phase only.",
        "",
        f"Machine: {one_line(m)}.",
        f"Other busy processes at start: {', '.join(m['other_busy_processes_at_start']) or 'none'}.",
    ]
    if "stopped" in result:
        lines += ["", f"**Stopped early**: {result['stopped']}"]
    if "big" in result:
        big = result["big"]
        lines += [
            "",
            f"## End to end: {result['big_rows']:,} reviews, both engines",
            "",
            "| engine | wall s | items/s | ok | errors | progress bar shown |",
            "|---|--:|--:|--:|--:|---|",
        ]
        for s in (big[e] for e in ("local", "ray") if e in big):
            lines.append(
                f"| {s['engine']} | {s['wall_s']:.1f} | {s['items_per_s']:.1f} | {s['ok']:,} "
                f"| {s['errors']} | {s['progress_shown']} |"
            )
        if "same_answers" in big:
            lines += ["", f"Local vs Ray: {_same(big['same_answers'])}."]
    if "local" in result:
        lines += [
            "",
            f"## {result['rows']:,} reviews, three ways",
            "",
            "| path | settings | items/s | wall s | notes |",
            "|---|---|--:|--:|---|",
        ]
        for name, s in (("bulk, local engine", result.get("local")), ("bulk, Ray engine", result.get("ray"))):
            if s is not None:
                lines.append(
                    f"| {name} | {s['engine']}, batch 32, parts of 2048 | {s['items_per_s']:.1f} "
                    f"| {s['wall_s']:.1f} | {s['ok']:,} ok, {s['errors']} errors; "
                    f"progress bar shown: {s['progress_shown']} |"
                )
        cells = result.get("http", [])
        best = max(cells, key=lambda c: c["items_per_s"]) if cells else None
        for c in cells:
            mark = " **(best)**" if c is best else ""
            lines.append(
                f"| HTTP service{mark} | {c['concurrency']} clients x {c['per_request']} review(s) per "
                f"request | {c['items_per_s']:.1f} | {c['wall_s']:.1f} | {c['items']:,} items, "
                f"{c['errors']} errors |"
            )
        if "same_answers" in result:
            lines += ["", f"Local vs Ray engine: {_same(result['same_answers'])}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10_000, help="reviews in the file all three paths score")
    p.add_argument("--big", type=int, default=0, help="first, score a file this large with both engines")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/lstm-serve-bulk"))
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "bulk.md")
    p.add_argument(
        "--force", action="store_true", help="run even while other (non-training) processes use the CPU"
    )
    args = p.parse_args(argv)
    if training := training_running():
        raise SystemExit("a training job is running; run the benchmark after it:\n  " + "\n  ".join(training))
    busy = other_busy_processes()
    if busy and not args.force:
        raise SystemExit(
            "other processes are using the CPU (figures would be wrong):\n  " + "\n  ".join(busy)
        )
    os.environ["MODEL_DIR"] = str(args.model_dir)
    w = args.workdir
    w.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"machine": describe(ROOT), "rows": args.rows, "big_rows": args.big}

    def save() -> None:
        (w / "bulk.json").write_text(json.dumps(result, indent=1, default=str))
        args.out.write_text(markdown(result))

    def stop_for_training() -> bool:
        """Between stages: a training job that started meanwhile ends the benchmark (saved so far)."""
        if training := training_running():
            result["stopped"] = f"a training job started ({training[0][:80]}); later stages not run."
        save()
        return bool(training)

    stages: list[tuple[str, Path, str, Path]] = []
    if args.big:
        big_src = build_reviews(w / f"reviews-{args.big}.jsonl", args.big)
        stages += [("big", big_src, e, w / f"big-{e}.jsonl") for e in ("local", "ray")]
    src = build_reviews(w / f"reviews-{args.rows}.jsonl", args.rows)
    stages += [("grid", src, e, w / f"{e}.jsonl") for e in ("local", "ray")]
    for stage, path, engine, out in stages:
        summary = score_file(path, out, engine, out.with_suffix(".log"))
        print(f"  {stage} {engine}: {summary['items_per_s']:.1f} items/s", file=sys.stderr)
        target = result.setdefault("big", {}) if stage == "big" else result
        target[engine] = summary
        if engine == "ray":
            target["same_answers"] = compare(out.with_name(out.name.replace("ray", "local")), out)
        if stop_for_training():
            return 1
    result["http"] = http_grid(src, args.model_dir, w)
    save()
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
