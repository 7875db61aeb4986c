"""`python -m bench`: lstm-serve side by side with the serving frameworks a user would pick instead.

One server at a time on 127.0.0.1: lstm-serve at its shipped settings (`python -m app`, nothing
overridden), then LitServe and BentoML with 1 and 2 workers and Ray Serve with 1 replica, each
serving the same bundles through the project's own pipeline (bench/peers/, run from `.venv-peers`,
made by `bench/peers/setup.sh`). Each workload (an IMDB review, a short text, a CoNLL sentence;
forecasts for lstm-serve alone) is driven by `wrk`, closed loop, one input per request, at 1, 16
and 64 connections. Beside them, measured in the same run: the all-core ceilings with no HTTP
(bench/ceiling.py), each server's memory (every process of its tree), and an overload phase
(512 connections against a small queue, with health and fresh-request probes).

The servers run in two passes, the second in reverse order, and each cell is the mean of its
passes: this machine's speed drifts by tens of per cent over minutes (a shared VM), and one pass
would hand that drift to whichever server ran in the faster minutes.

Writes bench/results.md, the README's Benchmark section and bench/runs/<stamp>/ (raw JSON and
every server's log). `--quick` is a short smoke run that writes only bench/runs/.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench import ceiling, machine, profile, report, targets, wrk
from bench.server import HOST, ServerConfig, machine_cpu_seconds
from bench.workloads import Workload, build_workloads

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PEER_WORKLOADS = ("sentiment-review", "sentiment-short", "ner")


@dataclass
class Options:
    seconds: float
    warmup: float
    passes: int
    concurrency: list[int]
    peers: bool
    ray: bool
    only: list[str] | None
    ceiling: bool
    ceiling_seconds: float
    overload: bool
    profile: bool
    pool: int
    models: list[str]
    model_dir: Path
    data_dir: Path
    write: bool
    quick: bool
    argv: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="smoke run: short cells, no peers; writes bench/runs/ only"
    )
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell and pass")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each cell")
    p.add_argument(
        "--passes", type=int, default=2, help="passes over the servers, every other one in reverse order"
    )
    p.add_argument("--concurrency", default="1,16,64", help="comma list of connection counts")
    p.add_argument("--no-peers", action="store_true", help="lstm-serve only")
    p.add_argument("--no-ray", action="store_true", help="leave Ray Serve out")
    p.add_argument("--only", default=None, help="comma list of target names (e.g. 'lstm-serve')")
    p.add_argument("--no-ceiling", action="store_true")
    p.add_argument("--ceiling-seconds", type=float, default=4.0)
    p.add_argument("--no-overload", action="store_true")
    p.add_argument("--profile", action="store_true", help="py-spy one lstm-serve worker at 64 connections")
    p.add_argument("--pool", type=int, default=1000, help="distinct inputs per workload")
    p.add_argument("--models", default="sentiment,ner,forecast", help="models lstm-serve loads (MODELS)")
    p.add_argument("--model-dir", type=Path, default=REPO / "models")
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--write", action=argparse.BooleanOptionalAction, default=None)
    a = p.parse_args(argv)
    quick = bool(a.quick)
    return Options(
        seconds=min(a.seconds, 2.0) if quick else a.seconds,
        warmup=min(a.warmup, 1.0) if quick else a.warmup,
        passes=1 if quick else max(1, a.passes),
        concurrency=[int(x) for x in a.concurrency.split(",") if x.strip()],
        peers=not a.no_peers and not quick,
        ray=not a.no_ray,
        only=[x.strip() for x in a.only.split(",")] if a.only else None,
        ceiling=not a.no_ceiling,
        ceiling_seconds=min(a.ceiling_seconds, 1.0) if quick else a.ceiling_seconds,
        overload=not a.no_overload and not quick,
        profile=bool(a.profile),
        pool=min(a.pool, 200) if quick else a.pool,
        models=[x.strip() for x in a.models.split(",") if x.strip()],
        model_dir=a.model_dir.resolve(),
        data_dir=a.data_dir.resolve(),
        write=(not quick) if a.write is None else a.write,
        quick=quick,
        argv=argv,
    )


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


# -------------------------------------------------------------------------------------------- cells


def run_cell(server: targets.Running, wl: Workload, connections: int, opts: Options) -> dict[str, Any]:
    url = server.url + wl.endpoint
    # Warm-up on other inputs: opens the connections, fills the batchers and the runtimes' caches.
    wrk.run(url, wl.bodies, connections, opts.warmup, offset=len(wl.bodies) // 2)
    cpu0, machine0 = targets.tree_cpu_seconds(server.proc.pid), machine_cpu_seconds()
    res = wrk.run(url, wl.bodies, connections, opts.seconds)
    cpu1, machine1 = targets.tree_cpu_seconds(server.proc.pid), machine_cpu_seconds()
    wall = max(res.seconds, 1e-9)
    server_cores = (cpu1 - cpu0) / wall
    client_cores = res.client_cpu_s / wall
    return {
        "target": server.target.name,
        "framework": server.target.framework,
        "workload": wl.name,
        "connections": connections,
        "rps": res.ok_rps,
        "answers": res.requests,
        "non_2xx": res.non_2xx,
        "socket_errors": res.socket_errors,
        "p50_ms": res.p50_ms,
        "p90_ms": res.p90_ms,
        "p99_ms": res.p99_ms,
        "max_ms": res.max_ms,
        "server_cores": server_cores,
        "client_cores": client_cores,
        # Everything else on the machine meanwhile (other jobs); ~0 on a quiet machine.
        "other_cores": max(0.0, (machine1 - machine0) / wall - server_cores - client_cores),
    }


def http_floor(server: targets.Running, connections: int, opts: Options) -> dict[str, Any]:
    """GET /healthz under the same load: the same workers, middleware, logging and metrics with no
    model work, i.e. the most req/s any one-input-per-request workload can reach on this stack."""
    url = server.url + "/healthz"
    wrk.run(url, [], connections, opts.warmup)
    res = wrk.run(url, [], connections, opts.seconds)
    return {"connections": connections, "rps": res.ok_rps, "p50_ms": res.p50_ms, "p99_ms": res.p99_ms}


def run_target(
    make: Any, workloads: list[Workload], opts: Options, run_dir: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cells: list[dict[str, Any]] = []
    name = make(0).name
    log(f"{name}: starting")
    with targets.started(make, run_dir / f"server-{name.replace(' ', '_').replace(',', '')}.log") as server:
        log(
            f"  ready in {server.cold_start_s:.1f} s; {server.memory_ready['processes']} processes, "
            f"RSS {server.memory_ready['rss_mib']:.0f} MiB, PSS {server.memory_ready['pss_mib']:.0f} MiB"
        )
        for wl in workloads:
            if wl.model not in server.target.models:
                continue
            if server.target.framework != "lstm-serve" and wl.name not in PEER_WORKLOADS:
                continue
            for conc in opts.concurrency:
                cell = run_cell(server, wl, conc, opts)
                cells.append(cell)
                log(
                    f"  {wl.name:<17} c={conc:<3} {cell['rps']:7.1f} req/s  p50 {cell['p50_ms']:7.1f}  "
                    f"p99 {cell['p99_ms']:7.1f} ms  non-2xx {cell['non_2xx']}  err {cell['socket_errors']}  "
                    f"server {cell['server_cores']:.2f}  client {cell['client_cores']:.2f}  "
                    f"other {cell['other_cores']:.2f} cores"
                )
        floor = None
        most = report.LOADED[-1]
        if server.target.framework == "lstm-serve" and most in opts.concurrency:
            floor = http_floor(server, most, opts)
            log(f"  GET /healthz      c={most:<3} {floor['rps']:7.1f} req/s (the HTTP stack alone)")
        memory_after = targets.tree_memory_mib(server.proc.pid)
        info = {
            "name": name,
            "framework": server.target.framework,
            "workers": server.target.workers,
            "cold_start_s": server.cold_start_s,
            "memory_ready": server.memory_ready,
            "memory_after_load": memory_after,
            "http_floor": floor,
            "env": {k: v for k, v in server.target.env if k not in ("MODEL_DIR", "PORT", "HOST")},
        }
        if server.target.framework == "lstm-serve":
            info["models"] = httpx.get(f"{server.url}/models", timeout=10).json()
    return info, cells


# ------------------------------------------------------------------------------------------ profile


def run_profile(workloads: list[Workload], opts: Options, run_dir: Path, seconds: int = 6) -> dict[str, Any]:
    """Where one lstm-serve worker's time goes at 64 connections: py-spy, all threads and the GIL
    holder, for reviews and short texts (bench/profile.py folds the stacks into categories)."""
    out: dict[str, Any] = {}
    make = partial(targets.lstm_serve, opts.model_dir, config=ServerConfig(models=tuple(opts.models)))
    with targets.started(make, run_dir / "server-profile.log") as server:
        worker = next(
            p
            for p in targets.tree(server.proc.pid)
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
        )
        for wl in workloads:
            if wl.name not in ("sentiment-review", "sentiment-short"):
                continue
            log(f"profile: {wl.name}, 64 connections, worker {worker}, py-spy {seconds} s x2")
            url = server.url + wl.endpoint
            wrk.run(url, wl.bodies, 64, opts.warmup)
            files = {k: run_dir / f"profile-{wl.name}-{k}.txt" for k in ("threads", "gil")}
            load = threading.Thread(target=wrk.run, args=(url, wl.bodies, 64, 2 * seconds + 3))
            load.start()
            time.sleep(1)
            profile.record(worker, files["threads"], seconds, 100, gil=False).wait(seconds + 30)
            profile.record(worker, files["gil"], seconds, 100, gil=True).wait(seconds + 30)
            load.join()
            if all(f.exists() for f in files.values()):
                out[wl.name] = profile.summarise(
                    profile.parse_raw(files["threads"]), profile.parse_raw(files["gil"]), seconds, 100
                )
                log(f"  GIL busy {out[wl.name]['gil_busy_fraction']:.0%}")
    return out


# ----------------------------------------------------------------------------------------- overload


def run_overload(wl: Workload, opts: Options, run_dir: Path, connections: int = 512) -> dict[str, Any]:
    """lstm-serve at shipped settings but a small queue, `connections` closed-loop clients of
    reviews, while a probe opens a fresh connection every 100 ms for /readyz or /healthz on the
    probe port, one new review, or /readyz on the service port, and checks the review's answer
    against the one it got on a quiet server."""
    config = ServerConfig(max_queue_size=64, models=tuple(opts.models))
    log(f"overload: {connections} connections of {wl.name}, MAX_QUEUE_SIZE={config.max_queue_size}")
    make = partial(targets.lstm_serve, opts.model_dir, config=config)
    with targets.started(make, run_dir / "server-overload.log") as server:
        body = wl.bodies[0]
        expected = httpx.post(
            server.url + wl.endpoint, content=body, headers={"content-type": "application/json"}
        ).json()
        # The orchestrator's probes go to the probe port; the service port's own /readyz is
        # measured too (a caller without the probe port), but it is one request among the load.
        probe_url = f"http://{HOST}:{server.target.probe_port}"
        kinds = {
            "readyz": (probe_url, "/readyz"),
            "healthz": (probe_url, "/healthz"),
            "fresh": (server.url, wl.endpoint),
            report.SERVICE_PORT_READYZ: (server.url, "/readyz"),
        }
        probes: dict[str, list[float]] = {k: [] for k in kinds}
        statuses: dict[str, dict[int, int]] = {k: {} for k in probes}
        wrong: list[str] = []
        stop = threading.Event()

        def probe() -> None:
            names = list(kinds)
            n = 0
            while not stop.is_set():
                kind = names[n % len(names)]
                base, path = kinds[kind]
                n += 1
                t0 = time.perf_counter()
                try:
                    with httpx.Client(base_url=base, timeout=30) as c:  # a fresh connection
                        if kind == "fresh":
                            r = c.post(path, content=body, headers={"content-type": "application/json"})
                            if r.status_code == 200 and r.json() != expected:
                                wrong.append(r.text[:200])
                        else:
                            r = c.get(path)
                    status = r.status_code
                except httpx.HTTPError as exc:
                    status = -1
                    wrong.append(f"{kind}: {type(exc).__name__}")
                probes[kind].append(time.perf_counter() - t0)
                statuses[kind][status] = statuses[kind].get(status, 0) + 1
                time.sleep(0.1)

        thread = threading.Thread(target=probe, daemon=True)
        memory0 = targets.tree_memory_mib(server.proc.pid)
        thread.start()
        res = wrk.run(server.url + wl.endpoint, wl.bodies, connections, max(opts.seconds, 10.0), timeout_s=10)
        stop.set()
        thread.join(timeout=35)
        memory1 = targets.tree_memory_mib(server.proc.pid)
        after = httpx.post(
            server.url + wl.endpoint, content=body, headers={"content-type": "application/json"}
        )
    out: dict[str, Any] = {
        "connections": connections,
        "max_queue_size": config.max_queue_size,
        "seconds": res.seconds,
        "answers": res.requests,
        "ok": res.ok,
        "non_2xx": res.non_2xx,
        "socket_errors": res.socket_errors,
        "ok_rps": res.ok_rps,
        "p50_ms": res.p50_ms,
        "p99_ms": res.p99_ms,
        "max_ms": res.max_ms,
        "probe_max_ms": {k: max(v) * 1000 if v else None for k, v in probes.items()},
        "probe_count": {k: len(v) for k, v in probes.items()},
        "probe_statuses": statuses,
        "wrong_answers": wrong,
        "recovered": after.status_code == 200 and after.json() == expected,
        "memory_before": memory0,
        "memory_after": memory1,
    }
    log(
        f"  {res.ok_rps:.0f} ok req/s, {res.non_2xx} refused, {res.socket_errors} socket errors, "
        f"p50 {res.p50_ms:.0f} p99 {res.p99_ms:.0f} max {res.max_ms:.0f} ms; probes max "
        + ", ".join(f"{k} {v:.0f} ms" for k, v in out["probe_max_ms"].items() if v is not None)
    )
    return out


# --------------------------------------------------------------------------------------------- main


def _guarded(failures: list[dict[str, str]], what: str, fn: Any, *args: Any) -> Any:
    """`fn(*args)`, or None with the failure recorded: one broken part must not cost the rest."""
    try:
        return fn(*args)
    except Exception as exc:
        log(f"  FAILED ({what}): {exc}")
        failures.append({"target": what, "error": str(exc)})
        return None


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else list(argv))
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = BENCH_DIR / "runs" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    wrk.wrk_path()  # fail early, with the install command, when wrk is missing
    if opts.peers and not targets.PEERS_PYTHON.exists():
        raise SystemExit("peers need .venv-peers: run `bash bench/peers/setup.sh` (or pass --no-peers)")
    mach = machine.describe(REPO)
    cores = int(mach["usable_cpus"])
    log(f"machine: {machine.one_line(mach)}")
    if mach["other_busy_processes_at_start"]:
        log(f"  other busy processes: {mach['other_busy_processes_at_start']}")
    models = opts.models
    workloads = build_workloads(opts.data_dir, opts.model_dir, models, opts.pool, multi=0)

    ceilings: dict[str, Any] | None = None
    failures: list[dict[str, str]] = []
    if opts.ceiling:
        log(f"ceilings: {cores} processes x 1 thread, {opts.ceiling_seconds:.0f} s per phase")
        ceilings = _guarded(
            failures,
            "ceilings",
            ceiling.measure_all,
            opts.model_dir,
            # 500 inputs each: enough variety for steady figures, quick to tokenise up front
            [{"name": w.name, "model": w.model, "raw_items": w.raw_items[:500]} for w in workloads],
            cores,
            opts.ceiling_seconds,
            ServerConfig().max_batch_size,
        )
        for name, w in (ceilings or {"workloads": {}})["workloads"].items():
            log(f"  {name:<17} model {w['model']:8.1f} items/s   pipeline {w['pipeline']:8.1f} items/s")

    shipped = ServerConfig(models=tuple(models))
    makers: list[Any] = [partial(targets.lstm_serve, opts.model_dir, config=shipped)]
    if opts.peers:
        makers += [
            partial(targets.peer, framework, workers, opts.model_dir, cores)
            for framework, workers in targets.PEER_CONFIGS
            if opts.ray or framework != "Ray Serve"
        ]
    if opts.only:
        makers = [m for m in makers if m(0).name in opts.only or m(0).framework in opts.only]
    servers: dict[str, dict[str, Any]] = {}
    cells: list[dict[str, Any]] = []
    for n in range(opts.passes):
        log(f"pass {n + 1} of {opts.passes}")
        for make in makers if n % 2 == 0 else makers[::-1]:
            try:
                info, got = run_target(make, workloads, opts, run_dir)
            except Exception as exc:  # one framework failing must not lose the others' figures
                log(f"  FAILED: {exc}")
                failures.append({"target": make(0).name, "error": str(exc)})
                continue
            # The first pass's start-up and memory figures stand; the HTTP floor is averaged.
            kept = servers.setdefault(info["name"], info)
            kept.setdefault("http_floors", []).extend([info["http_floor"]] if info["http_floor"] else [])
            cells.extend(got)
    for info in servers.values():
        floors = info.pop("http_floors")
        if floors:
            info["http_floor"] = report.mean_of_passes(floors)

    overload, profiles = None, None
    try:  # a failure here must not lose the side-by-side figures already measured
        if opts.overload:
            overload = run_overload(next(w for w in workloads if w.name == "sentiment-review"), opts, run_dir)
        if opts.profile:
            profiles = run_profile(workloads, opts, run_dir)
    except Exception as exc:
        log(f"  FAILED: {exc}")
        failures.append({"target": "overload/profile", "error": str(exc)})

    result: dict[str, Any] = {
        "command": "python -m bench " + " ".join(opts.argv),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "machine": mach | {"other_busy_processes_at_end": machine.other_busy_processes()},
        "bundles": report.bundle_summaries(opts.model_dir, models),
        "quantization": report.quantization(opts.model_dir, models),
        "workloads": [
            {
                "name": w.name,
                "endpoint": w.endpoint,
                "source": w.source,
                "stats": w.stats,
                "pool": len(w.bodies),
            }
            for w in workloads
        ],
        "ceilings": ceilings,
        "servers": list(servers.values()),
        "failures": failures,
        "cells": report.merge_passes(cells),
        "overload": overload,
        "profile": profiles,
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


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
