"""`python -m bench`: benchmark the real service end to end.

For each server configuration (ONNX Runtime / TorchScript x batching on / off) it starts
`python -m app` on 127.0.0.1, measures cold start and resident memory, then drives every endpoint
with a bounded closed-loop load (one item per request, concurrency 1 / 16 / 64) and reads the
batcher's own metrics per cell. Beside it: the model-only ceiling (the same prepared items straight
through the Task, no HTTP), a py-spy profile of the server under load and a small sweep of the
batching settings. Writes bench/results.md, bench/runs/<stamp>/ (raw JSON, server logs, profiles)
and the README's Benchmark section. See `--help`; `--quick` is a short smoke run that writes only
bench/runs/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen, machine, profile, report
from bench.server import (
    Server,
    ServerConfig,
    batch_stats,
    cpu_seconds,
    machine_cpu_seconds,
    proc_status,
    scrape,
    shipped,
)
from bench.workloads import Workload, build_workloads

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
ALL_MODELS = ("sentiment", "ner", "forecast")


@dataclass
class Options:
    models: list[str]
    workloads: list[str] | None
    backends: list[str]
    batching: list[bool]
    concurrency: list[int]
    requests: int
    time_cap_s: float
    warmup: int
    pool: int
    multi: int
    threads: int
    max_batch_size: int
    max_batch_wait_ms: float
    model_dir: Path
    data_dir: Path
    app_root: Path
    ceiling_s: float
    ceiling: bool
    profile: bool
    profile_s: int
    sweep: bool
    write: bool
    quick: bool
    argv: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="smoke run: ONNX only, concurrency 1,16, few requests"
    )
    p.add_argument("--endpoints", default=",".join(ALL_MODELS), help="comma list of sentiment,ner,forecast")
    p.add_argument("--workloads", default=None, help="comma list of workload names (default: all)")
    p.add_argument("--backends", default="onnx,torchscript", help="comma list of onnx,torchscript")
    p.add_argument("--batching", default="on,off", help="comma list of on,off")
    p.add_argument("--concurrency", default="1,16,64", help="comma list of client counts")
    p.add_argument("--requests", type=int, default=600, help="measured requests per cell (cap)")
    p.add_argument("--time-cap", type=float, default=15.0, help="seconds per cell (cap)")
    p.add_argument("--warmup", type=int, default=64, help="warm-up requests per cell, not measured")
    p.add_argument("--pool", type=int, default=1000, help="distinct inputs per workload")
    p.add_argument("--multi", type=int, default=16, help="texts per request in the multi-item row; 0: none")
    # Server settings default to what the service ships (Settings), so the table measures that.
    p.add_argument("--threads", type=int, default=shipped("threads"), help="THREADS (0: runtime default)")
    p.add_argument("--max-batch-size", type=int, default=shipped("max_batch_size"), help="MAX_BATCH_SIZE")
    p.add_argument(
        "--max-batch-wait-ms", type=float, default=shipped("max_batch_wait_ms"), help="MAX_BATCH_WAIT_MS"
    )
    p.add_argument("--model-dir", type=Path, default=REPO / "models")
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument(
        "--app-root",
        type=Path,
        default=REPO,
        help="checkout whose `app` package is served and measured (default: this one)",
    )
    p.add_argument(
        "--ceiling-seconds", type=float, default=3.0, help="seconds per model-only measurement (best of 2)"
    )
    p.add_argument("--no-ceiling", action="store_true")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--profile-seconds", type=int, default=8)
    p.add_argument("--no-sweep", action="store_true", help="skip the batching-settings sweep")
    p.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write bench/results.md and the README section (default: yes, except with --quick)",
    )
    a = p.parse_args(argv)
    quick = bool(a.quick)

    def csv(s: str) -> list[str]:
        return [x.strip() for x in s.split(",") if x.strip()]

    models = csv(a.endpoints)
    for m in models:
        if m not in ALL_MODELS:
            p.error(f"unknown endpoint {m!r}; choose from {', '.join(ALL_MODELS)}")
    return Options(
        models=models,
        workloads=csv(a.workloads) if a.workloads else None,
        backends=["onnx"] if quick and a.backends == "onnx,torchscript" else csv(a.backends),
        batching=[x == "on" for x in csv(a.batching)],
        concurrency=[1, 16] if quick and a.concurrency == "1,16,64" else [int(x) for x in csv(a.concurrency)],
        requests=min(a.requests, 80) if quick else a.requests,
        time_cap_s=min(a.time_cap, 4.0) if quick else a.time_cap,
        warmup=min(a.warmup, 16) if quick else a.warmup,
        pool=min(a.pool, 200) if quick else a.pool,
        multi=a.multi,
        threads=a.threads,
        max_batch_size=a.max_batch_size,
        max_batch_wait_ms=a.max_batch_wait_ms,
        model_dir=a.model_dir.resolve(),
        data_dir=a.data_dir.resolve(),
        app_root=a.app_root.resolve(),
        ceiling_s=min(a.ceiling_seconds, 1.0) if quick else a.ceiling_seconds,
        ceiling=not a.no_ceiling,
        profile=not a.no_profile and not quick,
        profile_s=a.profile_seconds,
        sweep=not a.no_sweep and not quick,
        write=(not quick) if a.write is None else a.write,
        quick=quick,
        argv=argv,
    )


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------- cells


def run_cell(
    server: Server,
    wl: Workload,
    concurrency: int,
    opts: Options,
    metrics_client: httpx.Client,
    requests: int | None = None,
) -> dict[str, Any]:
    marks: dict[str, Any] = {}

    def mark_start() -> None:
        marks["metrics"] = scrape(metrics_client, server.base_url)
        marks["cpu"] = cpu_seconds(server.pid)
        marks["machine_cpu"] = machine_cpu_seconds()

    res = loadgen.run_load(
        server.base_url,
        wl.endpoint,
        wl.bodies,
        concurrency,
        requests or opts.requests,
        opts.time_cap_s,
        max(opts.warmup, 2 * concurrency),
        on_measure_start=mark_start,
    )
    after = scrape(metrics_client, server.base_url)
    cpu1 = cpu_seconds(server.pid)
    machine1 = machine_cpu_seconds()
    lat = res.latencies_s
    wall = max(res.wall_s, 1e-9)
    stats = batch_stats(marks["metrics"], after, wl.model)
    return {
        "workload": wl.name,
        "endpoint": wl.endpoint,
        "model": wl.model,
        "concurrency": concurrency,
        "backend": server.config.backend,
        "batching": server.config.batching,
        "items_per_request": wl.items_per_request,
        "requests": res.requests,
        "errors": sum(res.errors.values()),
        "error_kinds": dict(res.errors),
        "capped_by_time": res.capped,
        "wall_s": res.wall_s,
        "rps": res.requests / wall,
        "items_per_s": res.requests * wl.items_per_request / wall,
        "p50_ms": loadgen.percentile(lat, 50) * 1000,
        "p95_ms": loadgen.percentile(lat, 95) * 1000,
        "p99_ms": loadgen.percentile(lat, 99) * 1000,
        "mean_ms": sum(lat) / len(lat) * 1000 if lat else None,
        "server_cpu_cores": (cpu1 - marks["cpu"]) / wall,
        "client_cpu_cores": res.client_cpu_s / wall,
        # Everything else on the machine meanwhile (other jobs); ~0 on a quiet machine.
        "other_cpu_cores": max(
            0.0,
            (machine1 - marks["machine_cpu"]) / wall - (cpu1 - marks["cpu"]) / wall - res.client_cpu_s / wall,
        ),
        **stats,
    }


def run_config(
    cfg: ServerConfig, workloads: list[Workload], opts: Options, run_dir: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    log(f"server {cfg.label} ({cfg.settings_label}): starting")
    cells: list[dict[str, Any]] = []
    with (
        Server(cfg, opts.model_dir, run_dir / f"server-{cfg.label}.log", opts.app_root) as server,
        httpx.Client(timeout=10) as mc,
    ):
        info = {
            "label": cfg.label,
            "config": asdict(cfg),
            "cold_start_s": server.cold_start_s,
            "rss_ready_mib": server.rss_ready_kb / 1024,
            "models": server.models,
        }
        log(
            f"  ready in {server.cold_start_s:.1f}s, RSS {info['rss_ready_mib']:.0f} MiB, "
            f"models {server.models}"
        )
        for wl in workloads:
            if wl.model not in server.models:
                continue
            for conc in wl.concurrencies or opts.concurrency:
                cell = run_cell(server, wl, conc, opts, mc)
                cells.append(cell)
                log(
                    f"  {wl.name:<22} c={conc:<3} {cell['rps']:7.1f} req/s {cell['items_per_s']:7.1f} it/s "
                    f"p50 {cell['p50_ms']:7.1f} p99 {cell['p99_ms']:7.1f} ms err {cell['errors']} "
                    f"batch {_f(cell['mean_batch_size'])} srvCPU {cell['server_cpu_cores']:.2f} "
                    f"other {cell['other_cpu_cores']:.2f}"
                )
        status = proc_status(server.pid)
        info["rss_after_load_mib"] = status.get("VmRSS", 0) / 1024
        info["rss_peak_mib"] = status.get("VmHWM", 0) / 1024
        info["threads"] = status.get("Threads", 0)
    return info, cells


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


# ----------------------------------------------------------------------------------------- ceiling


def run_ceiling(backend: str, workloads: list[Workload], opts: Options, run_dir: Path) -> dict[str, Any]:
    spec = {
        "model_dir": str(opts.model_dir),
        "backend": backend,
        "threads": opts.threads,
        "max_batch_size": opts.max_batch_size,
        "seconds": opts.ceiling_s,
        "max_items": 4000,
        "workloads": [
            {"name": wl.name, "model": wl.model, "raw_items": wl.raw_items}
            for wl in workloads
            if wl.items_per_request == 1
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        log(f"model-only ceiling, {backend}")
        proc = subprocess.run(
            [sys.executable, "-m", "bench.ceiling", str(spec_path), str(out_path)],
            cwd=opts.app_root,  # its `app` package is imported; `bench` comes from PYTHONPATH
            env=os.environ | {"PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=900,
        )
        (run_dir / f"ceiling-{backend}.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            log(f"  ceiling failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
            return {"backend": backend, "error": proc.stderr[-2000:], "workloads": {}}
        out: dict[str, Any] = json.loads(out_path.read_text())
    for name, w in out["workloads"].items():
        log(
            f"  {name:<22} b=1 {w['b1']['items_per_s']:7.1f} it/s  b={w['max_batch_size']} "
            f"{w['bN']['items_per_s']:7.1f}  grouped {w['bN_grouped']['items_per_s']:7.1f}  "
            f"prep {w['prep_ms_per_request']:.2f} ms/req  size {w['mean_item_size']:.0f}"
        )
    return out


# ----------------------------------------------------------------------------------------- profile


def run_profile(workloads: list[Workload], opts: Options, run_dir: Path) -> dict[str, Any] | None:
    wl = next((w for w in workloads if w.name == "sentiment-review"), None) or (
        workloads[0] if workloads else None
    )
    if wl is None or profile.py_spy() is None:
        log("profile skipped (no workload or no py-spy)")
        return None
    conc = max(opts.concurrency)
    cfg = ServerConfig(
        backend=opts.backends[0],
        batching=True,
        threads=opts.threads,
        max_batch_size=opts.max_batch_size,
        max_batch_wait_ms=opts.max_batch_wait_ms,
    )
    rate = 100
    raw_all, raw_gil = run_dir / "profile-threads.txt", run_dir / "profile-gil.txt"
    log(f"profile: {wl.name} c={conc} on {cfg.label}, py-spy {opts.profile_s}s x2")
    with Server(cfg, opts.model_dir, run_dir / "server-profile.log", opts.app_root) as server:
        results: dict[str, Any] = {}

        def start_recording() -> None:
            results["procs"] = [profile.record(server.pid, raw_all, opts.profile_s, rate, gil=False)]

        # Load for two recordings back to back; the load's own caps bound it.
        cap = 2 * opts.profile_s + 6
        res = loadgen.run_load(
            server.base_url,
            wl.endpoint,
            wl.bodies,
            conc,
            20 * opts.requests,
            cap,
            max(opts.warmup, 2 * conc),
            on_measure_start=start_recording,
            during_measure=lambda: _second_recording(results, server.pid, raw_gil, opts.profile_s, rate),
        )
        for proc in results.get("procs", []):
            proc.wait(timeout=60)
    if not (raw_all.exists() and raw_gil.exists()):
        log("profile: py-spy wrote nothing (ptrace not allowed?)")
        return None
    summary = profile.summarise(profile.parse_raw(raw_all), profile.parse_raw(raw_gil), opts.profile_s, rate)
    summary.update(
        {
            "workload": wl.name,
            "concurrency": conc,
            "config": cfg.label,
            "rps_during_profile": res.requests / max(res.wall_s, 1e-9),
        }
    )
    log(f"  GIL busy {summary['gil_busy_fraction']:.0%}")
    return summary


def _second_recording(results: dict[str, Any], pid: int, out: Path, seconds: int, rate: int) -> None:
    first = results["procs"][0]
    first.wait(timeout=seconds + 30)
    results["procs"].append(profile.record(pid, out, seconds, rate, gil=True))


# ------------------------------------------------------------------------------------------- sweep

SWEEP: list[dict[str, Any]] = [
    {},
    {"threads": 1},
    {"max_batch_size": 8},
    {"max_batch_size": 16},
    {"max_batch_size": 64},
    {"max_batch_wait_ms": 0.0},
    {"max_batch_wait_ms": 1.0},
    {"max_batch_wait_ms": 10.0},
]


SWEEP_CONCURRENCY = (1, 16, 64)


def _sweep_one(
    cfg: ServerConfig, change: dict[str, Any], wl: Workload, opts: Options, run_dir: Path
) -> list[dict[str, Any]]:
    log(f"sweep: {cfg.settings_label}")
    rows = []
    with (
        Server(cfg, opts.model_dir, run_dir / "server-sweep.log", opts.app_root) as server,
        httpx.Client(timeout=10) as mc,
    ):
        for conc in SWEEP_CONCURRENCY:
            # One client: latency is what is compared, and it is steady; fewer requests will do.
            cell = run_cell(server, wl, conc, opts, mc, requests=opts.requests // 3 if conc == 1 else None)
            cell["settings"] = cfg.settings_label
            cell["change"] = ", ".join(f"{k}={v:g}" for k, v in change.items()) or "defaults"
            rows.append(cell)
            log(
                f"  c={conc:<3} {cell['items_per_s']:7.1f} it/s p50 {cell['p50_ms']:7.1f} "
                f"p99 {cell['p99_ms']:7.1f} ms batch {_f(cell['mean_batch_size'])}"
            )
    return rows


def _score(rows: list[dict[str, Any]]) -> float:
    """Throughput at the highest concurrency: what a settings change is judged on first."""
    top = max(rows, key=lambda c: c["concurrency"])
    return float(top["items_per_s"])


def run_sweep(workloads: list[Workload], opts: Options, run_dir: Path) -> list[dict[str, Any]]:
    """One knob at a time from the defaults, then the best value of each knob together."""
    wl = next((w for w in workloads if w.name == "sentiment-review"), None)
    if wl is None:
        return []
    base = ServerConfig(
        backend="onnx",
        batching=True,
        threads=opts.threads,
        max_batch_size=opts.max_batch_size,
        max_batch_wait_ms=opts.max_batch_wait_ms,
        models=("sentiment",),
    )
    rows: list[dict[str, Any]] = []
    by_change: dict[str, tuple[dict[str, Any], float]] = {}
    for change in SWEEP:
        cfg = replace(base, **change)
        if change and cfg == base:
            continue
        got = _sweep_one(cfg, change, wl, opts, run_dir)
        rows.extend(got)
        by_change[got[0]["change"]] = (change, _score(got))
    # Best value per knob, kept only where it beats the defaults by more than 5 %.
    default_score = by_change.get("defaults", ({}, 0.0))[1]
    best: dict[str, Any] = {}
    for knob in ("threads", "max_batch_size", "max_batch_wait_ms"):
        candidates = [(sc, ch[knob]) for ch, sc in by_change.values() if knob in ch]
        if candidates:
            sc, value = max(candidates)
            if sc > 1.05 * default_score:
                best[knob] = value
    if len(best) > 1:
        rows.extend(_sweep_one(replace(base, **best), best, wl, opts, run_dir))
        for r in rows[-len(SWEEP_CONCURRENCY) :]:
            r["change"] = "combined: " + r["change"]
    return rows


# -------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = BENCH_DIR / "runs" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    mach = machine.describe(REPO)
    log(machine.one_line(mach))
    if mach["other_busy_processes_at_start"]:
        log(f"WARNING: other busy processes: {mach['other_busy_processes_at_start']}")

    from app.core.bundle import discover_tasks

    available = set(discover_tasks(opts.model_dir))
    models = [m for m in opts.models if m in available]
    missing = [m for m in opts.models if m not in available]
    if missing:
        log(f"no bundle under {opts.model_dir} for {missing}: those endpoints are skipped")
    if not models:
        log("nothing to benchmark")
        return 1
    workloads = build_workloads(opts.data_dir, opts.model_dir, models, opts.pool, opts.multi)
    if opts.workloads:
        workloads = [w for w in workloads if w.name in opts.workloads]
    for wl in workloads:
        log(f"workload {wl.name}: {len(wl.bodies)} bodies, {wl.source} {wl.stats}")

    ceilings = [run_ceiling(b, workloads, opts, run_dir) for b in opts.backends] if opts.ceiling else []

    configs: list[dict[str, Any]] = []
    cells: list[dict[str, Any]] = []
    for backend in opts.backends:
        for batching in opts.batching:
            cfg = ServerConfig(
                backend=backend,
                batching=batching,
                threads=opts.threads,
                max_batch_size=opts.max_batch_size,
                max_batch_wait_ms=opts.max_batch_wait_ms,
                models=tuple(models),
            )
            info, cfg_cells = run_config(cfg, workloads, opts, run_dir)
            configs.append(info)
            cells.extend(cfg_cells)

    prof = run_profile(workloads, opts, run_dir) if opts.profile else None
    sweep = run_sweep(workloads, opts, run_dir) if opts.sweep else []

    result: dict[str, Any] = {
        "command": "python -m bench " + " ".join(opts.argv),
        "bundles": report.bundle_summaries(opts.model_dir, models),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "machine": mach,
        "workloads": [
            {
                "name": w.name,
                "endpoint": w.endpoint,
                "source": w.source,
                "items_per_request": w.items_per_request,
            }
            | {"stats": w.stats, "pool": len(w.bodies)}
            for w in workloads
        ],
        "ceilings": ceilings,
        "servers": configs,
        "cells": cells,
        "profile": prof,
        "sweep": sweep,
        "missing_models": missing,
        "duration_s": time.perf_counter() - started,
    }
    result["targets"] = report.targets(result)
    (run_dir / "results.json").write_text(json.dumps(result, indent=1, default=str))
    markdown = report.results_markdown(result, BENCH_DIR / "results.md")
    (run_dir / "results.md").write_text(markdown)
    print(report.summary_text(result))
    if opts.write:
        (BENCH_DIR / "results.md").write_text(markdown)
        report.update_readme(REPO / "README.md", report.readme_section(result))
        log("wrote bench/results.md and the README Benchmark section")
    log(f"done in {result['duration_s'] / 60:.1f} min; raw results in {run_dir.relative_to(REPO)}")
    return 0
