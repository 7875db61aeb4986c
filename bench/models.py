"""`python -m bench.models` (also `python -m bench --only models`): several models in one service.

Three cells, each against `python -m app` at its shipped settings on 127.0.0.1, over a temporary
MODEL_DIR holding the shipped sentiment bundle under three names (`sentiment`, `sentiment-b`,
`sentiment-c`: the same graph, so the cells measure serving, not model differences):

- **spread**: IMDB reviews at 16 and 64 connections against one model alone, then spread evenly
  over the three (each request's `model` in turn); req/s, p50/p99, and the server's memory with
  one and with three models (what each extra model costs, and so how many fit per GiB).
- **isolation**: a flood of 512 connections on `sentiment` (MAX_QUEUE_SIZE=64, so it is refused
  in part) while another client sends `sentiment-b` 4 requests/s; that client's p99 against its
  p99 with no flood (target: under 3x). Each phase lasts 3x `--seconds` (120 requests at the
  default 10 s: with 40, the p99 is the single slowest request).
- **reload**: 16 connections of steady load while a new version is copied in and the supervisor
  gets SIGHUP: non-2xx answers and connection errors over the whole run (target: none), and the
  seconds until the new version answers.

Load comes from `wrk` (as in `python -m bench`) where installed, else from bench.loadgen. Writes
bench/runs/<stamp>/models.json and prints a Markdown summary; `--seconds 1` is a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen, machine, targets, wrk
from bench.server import HOST, ServerConfig
from bench.workloads import sentiment_workloads

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
NAMES = ("sentiment", "sentiment-b", "sentiment-c")
ISOLATION_TARGET = 3.0


def isolation_phase_s(seconds: float) -> float:
    """Each isolation phase: 3x a load cell, so that its p99 is not the single slowest request."""
    return max(3 * seconds, 2.0)


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def model_dir_with_three(shipped: Path, into: Path) -> Path:
    """`into` holding the shipped sentiment bundle under each of NAMES (hard links where the file
    system allows: the same bytes, no copy)."""
    (source,) = sorted((shipped / "sentiment").iterdir())[-1:]
    for name in NAMES:
        add_version(source, into, name, source.name)
    return into


def add_version(source: Path, model_dir: Path, name: str, version: str) -> Path:
    """A bundle copied in under a dotted name and renamed into place, as a deployment should."""
    staging = model_dir / name / f".{version}.partial"
    staging.parent.mkdir(parents=True, exist_ok=True)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, staging, copy_function=link)
    return staging.rename(model_dir / name / version)


def with_model(bodies: list[bytes], models: tuple[str, ...]) -> list[bytes]:
    """The bodies, each naming the next of `models` in turn."""
    return [
        json.dumps(json.loads(b) | {"model": models[i % len(models)]}).encode() for i, b in enumerate(bodies)
    ]


def drive(url: str, bodies: list[bytes], connections: int, seconds: float) -> dict[str, Any]:
    """Closed-loop load: req/s, latency percentiles, non-2xx answers and connection errors."""
    try:
        res = wrk.run(url, bodies, connections, seconds)
        return {
            "rps": res.ok_rps,
            "p50_ms": res.p50_ms,
            "p99_ms": res.p99_ms,
            "non_2xx": res.non_2xx,
            "connection_errors": res.socket_errors,
            "load": "wrk",
        }
    except wrk.WrkMissingError:
        port, _, path = url.partition(f"{HOST}:")[2].partition("/")
        phase = loadgen.run_load(
            f"http://{HOST}:{port}", "/" + path, bodies, connections, 10**9, seconds, connections
        )
        non_2xx = sum(n for k, n in phase.errors.items() if k.startswith("HTTP"))
        return {
            "rps": phase.requests / phase.wall_s if phase.wall_s else 0.0,
            "p50_ms": loadgen.percentile(phase.latencies_s, 50) * 1000,
            "p99_ms": loadgen.percentile(phase.latencies_s, 99) * 1000,
            "non_2xx": non_2xx,
            "connection_errors": sum(phase.errors.values()) - non_2xx,
            "load": "bench.loadgen (no wrk)",
        }


class Paced:
    """One client sending a request every `interval_s` on a fresh-enough keep-alive connection,
    recording each latency and status, until stopped."""

    def __init__(self, url: str, body: bytes, interval_s: float) -> None:
        self.url, self.body, self.interval_s = url, body, interval_s
        self.latencies_ms: list[float] = []
        self.statuses: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    status = str(client.post(self.url, content=self.body, headers=_JSON).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.latencies_ms.append((time.perf_counter() - t0) * 1000)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self._stop.wait(max(0.0, self.interval_s - (time.perf_counter() - t0)))

    def __enter__(self) -> Paced:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(35)

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {
            "requests": len(lat),
            "p50_ms": statistics.median(lat) if lat else None,
            "p99_ms": loadgen.percentile(lat, 99) if lat else None,
            "statuses": self.statuses,
        }


_JSON = {"content-type": "application/json"}


def server(model_dir: Path, models: tuple[str, ...], run_dir: Path, label: str, **config: Any) -> Any:
    make = partial(targets.lstm_serve, model_dir, config=ServerConfig(models=models, **config))
    return targets.started(make, run_dir / f"server-models-{label}.log")


def memory(running: targets.Running) -> dict[str, Any]:
    listing = httpx.get(f"{running.url}/models", timeout=10).json()
    return {
        "tree": targets.tree_memory_mib(running.proc.pid),
        "worker_rss_mib": listing["worker_rss_mib"],
        "rss_mib_per_model": {m["key"]: m["rss_mib"] for m in listing["models"]},
    }


# ---------------------------------------------------------------------------------------- cells


def cell_spread(
    model_dir: Path, bodies: list[bytes], opts: argparse.Namespace, run_dir: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, models in (("one", NAMES[:1]), ("three", NAMES)):
        log(f"spread: {label} model(s)")
        with server(model_dir, models, run_dir, f"spread-{label}") as running:
            out[label] = {"memory_ready": memory(running), "load": {}}
            spread = with_model(bodies, models)
            for connections in opts.concurrency:
                cell = drive(running.url + "/sentiment", spread, connections, opts.seconds)
                out[label]["load"][str(connections)] = cell
                log(
                    f"  c={connections:<3} {cell['rps']:7.1f} req/s  "
                    f"p50 {cell['p50_ms']:6.1f}  p99 {cell['p99_ms']:6.1f} ms"
                )
            out[label]["memory_after_load"] = targets.tree_memory_mib(running.proc.pid)
    one, three = out["one"]["memory_after_load"], out["three"]["memory_after_load"]
    workers = max(1, one["processes"] - 1)  # the supervisor serves no model
    per_model = (three["pss_mib"] - one["pss_mib"]) / (len(NAMES) - 1)
    out["per_extra_model_pss_mib"] = per_model
    out["per_extra_model_per_worker_mib"] = per_model / workers
    out["models_per_gib_per_worker"] = 1024 / (per_model / workers) if per_model > 0 else None
    return out


def cell_isolation(
    model_dir: Path, bodies: list[bytes], opts: argparse.Namespace, run_dir: Path
) -> dict[str, Any]:
    quiet_body = with_model(bodies[:1], ("sentiment-b",))[0]
    flood = with_model(bodies, ("sentiment",))
    log("isolation: 4 req/s on sentiment-b, alone, then beside a flood of 512 on sentiment")
    with server(model_dir, NAMES[:2], run_dir, "isolation", max_queue_size=64) as running:
        url = running.url + "/sentiment"
        phase_s = isolation_phase_s(opts.seconds)
        with Paced(url, quiet_body, 0.25) as alone:
            time.sleep(phase_s)
        with Paced(url, quiet_body, 0.25) as beside:
            flood_cell = drive(url, flood, 512, phase_s)
    quiet, loaded = alone.summary(), beside.summary()
    ratio = loaded["p99_ms"] / quiet["p99_ms"] if quiet["p99_ms"] and loaded["p99_ms"] else None
    log(f"  p99 alone {quiet['p99_ms']:.1f} ms, beside the flood {loaded['p99_ms']:.1f} ms: x{ratio:.2f}")
    return {
        "alone": quiet,
        "beside_flood": loaded,
        "p99_ratio": ratio,
        "target": ISOLATION_TARGET,
        "pass": ratio is not None and ratio < ISOLATION_TARGET,
        "flood": flood_cell,
    }


def cell_reload(
    model_dir: Path, bodies: list[bytes], opts: argparse.Namespace, run_dir: Path
) -> dict[str, Any]:
    log("reload: 16 connections while a version is added and SIGHUP sent")
    seconds = max(opts.seconds * 2, 6.0)
    (current,) = sorted((model_dir / "sentiment").iterdir())[-1:]
    new_version = current.name + "-reload"
    with server(model_dir, NAMES[:1], run_dir, "reload") as running:
        result: dict[str, Any] = {}
        load = threading.Thread(
            target=lambda: result.update(drive(running.url + "/sentiment", bodies, 16, seconds)), daemon=True
        )
        load.start()
        time.sleep(seconds / 4)
        add_version(current, model_dir, "sentiment", new_version)
        sent = time.perf_counter()
        os.kill(running.proc.pid, signal.SIGHUP)
        pinned = with_model(bodies[:1], (f"sentiment@{new_version}",))[0]
        answered_after = None
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() - sent < 300:
                r = client.post(running.url + "/sentiment", content=pinned, headers=_JSON)
                if r.status_code == 200:
                    answered_after = time.perf_counter() - sent
                    break
                time.sleep(0.05)
        load.join(seconds + 60)
    shutil.rmtree(model_dir / "sentiment" / new_version, ignore_errors=True)
    after = None if answered_after is None else round(answered_after, 1)
    log(
        f"  non-2xx {result.get('non_2xx')}  connection errors {result.get('connection_errors')}  "
        f"new version answered after {after} s"
    )
    return {
        "steady_load": result,
        "new_version_answered_after_s": answered_after,
        "pass": result.get("non_2xx") == 0
        and result.get("connection_errors") == 0
        and answered_after is not None,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = ["| cell | figure | value |", "|---|---|---|"]
    spread = results.get("spread")
    if spread:
        for label in ("one", "three"):
            for conc, cell in spread[label]["load"].items():
                lines.append(
                    f"| spread, {label} model(s) | c={conc} req/s, p50 / p99 ms | "
                    f"{cell['rps']:.1f}, {cell['p50_ms']:.1f} / {cell['p99_ms']:.1f} |"
                )
        lines.append(
            "| spread | PSS per extra model, per worker | "
            f"{spread['per_extra_model_per_worker_mib']:.0f} MiB |"
        )
        if spread["models_per_gib_per_worker"]:
            lines.append(
                f"| spread | models per GiB per worker | {spread['models_per_gib_per_worker']:.1f} |"
            )
    iso = results.get("isolation")
    if iso:
        alone, beside, flood = iso["alone"], iso["beside_flood"], iso["flood"]
        lines.append(
            f"| isolation | p99 alone / beside a 512 flood | {alone['p99_ms']:.1f} / "
            f"{beside['p99_ms']:.1f} ms (x{iso['p99_ratio']:.2f}, "
            f"target < {ISOLATION_TARGET:g}x: {'PASS' if iso['pass'] else 'FAIL'}) |"
        )
        lines.append(
            f"| isolation | p50 alone / beside the flood; requests each | {alone['p50_ms']:.1f} / "
            f"{beside['p50_ms']:.1f} ms; {alone['requests']} / {beside['requests']} |"
        )
        lines.append(
            f"| isolation | the flooded model: 200 req/s, 503s, connection errors | {flood['rps']:.1f}, "
            f"{flood['non_2xx']}, {flood['connection_errors']} |"
        )
    rel = results.get("reload")
    if rel:
        load = rel["steady_load"]
        lines.append(
            f"| reload | non-2xx, connection errors, new version after | {load.get('non_2xx')}, "
            f"{load.get('connection_errors')}, {_seconds(rel['new_version_answered_after_s'])} "
            f"({'PASS' if rel['pass'] else 'FAIL'}) |"
        )
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


CELLS = {"spread": cell_spread, "isolation": cell_isolation, "reload": cell_reload}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.models", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per load cell")
    p.add_argument("--concurrency", default="16,64")
    p.add_argument("--cells", default=",".join(CELLS), help=f"comma list of {', '.join(CELLS)}")
    p.add_argument("--pool", type=int, default=500)
    p.add_argument("--model-dir", type=Path, default=REPO / "models", help="where the shipped bundles are")
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument(
        "--write", action=argparse.BooleanOptionalAction, default=True, help="write bench/models.md"
    )
    opts = p.parse_args(argv)
    opts.concurrency = [int(c) for c in opts.concurrency.split(",") if c.strip()]
    cells = [c.strip() for c in opts.cells.split(",") if c.strip()]
    unknown = set(cells) - set(CELLS)
    if unknown:
        p.error(f"unknown cells {sorted(unknown)}; choose from {', '.join(CELLS)}")
    run_dir = BENCH_DIR / "runs" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    reviews = next(
        w for w in sentiment_workloads(opts.data_dir, opts.pool, 1) if w.name == "sentiment-review"
    )
    mach = machine.describe(REPO)
    log(f"machine: {machine.one_line(mach)}")
    results: dict[str, Any] = {"seconds": opts.seconds, "source": reviews.source}
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        model_dir = model_dir_with_three(opts.model_dir, Path(tmp))
        for name in cells:
            results[name] = CELLS[name](model_dir, reviews.bodies, opts, run_dir)
    results["machine"] = mach | {"other_busy_processes_at_end": machine.other_busy_processes()}
    (run_dir / "models.json").write_text(json.dumps(results, indent=1))
    table = markdown(results)
    print(table)
    log(f"wrote {run_dir / 'models.json'}")
    if opts.write:
        end = results["machine"]["other_busy_processes_at_end"]
        others = sorted(set(mach["other_busy_processes_at_start"] + end))
        report = (
            f"# Many models in one service: `python -m bench --only models`\n\n"
            f"Command: `python -m bench --only models {' '.join(argv or [])}`. "
            f"Machine: {machine.one_line(mach)}. "
            f"Other processes using CPU at start or end: {', '.join(others) or 'none'}. Shipped settings "
            f"(`python -m app`), three names of the shipped sentiment bundle (same graph); IMDB reviews; "
            f"{opts.seconds:g} s per load cell (isolation: {isolation_phase_s(opts.seconds):g} s per "
            "phase); load from wrk. Raw figures: bench/runs/<stamp>/models.json.\n\n" + table + "\n"
        )
        (BENCH_DIR / "models.md").write_text(report)
        log(f"wrote {BENCH_DIR / 'models.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
