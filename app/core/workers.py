"""Several worker processes sharing one port: how many, how many runtime threads each, and what
they share.

One Python process cannot use two cores for this work: tokenising and the HTTP stack hold the GIL,
and a small recurrent network gains nothing from a second intra-op thread (bench/results.md). So
`python -m app` starts `WORKERS` uvicorn processes on the same listening socket, each with its own
models and micro-batcher, and gives each `cores / workers` runtime threads.

What the workers share is a run folder the supervisor creates (its path in `RUN_DIR_ENV`):
- `metrics/`: prometheus-client's multiprocess files, so `/metrics` from any worker adds up all
  of them;
- `ready/`: one file per worker that has loaded and warmed its models, so `/readyz` from any worker
  says 200 only when every worker is ready.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

RUN_DIR_ENV = "LSTM_SERVE_RUN_DIR"
# prometheus-client reads this at import time: it must be set before a worker imports it.
PROMETHEUS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Each worker holds every model (~0.4 GiB): past this, more workers cost memory, not speed.
MAX_AUTO_WORKERS = 8


def usable_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a container's
    `--cpus`, a Kubernetes CPU limit), which affinity does not show."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    return max(1, cpus)


def resolve_workers(setting: int | str, cpus: int) -> int:
    """`WORKERS`: a number, or `auto` for one per usable core (at most MAX_AUTO_WORKERS)."""
    if setting == "auto":
        return max(1, min(cpus, MAX_AUTO_WORKERS))
    return int(setting)


def threads_per_worker(threads: int, workers: int, cpus: int) -> int:
    """`THREADS` when set; else the cores split evenly, so that workers x threads = cores."""
    return threads if threads > 0 else max(1, cpus // workers)


def run_dir() -> Path | None:
    """The shared run folder when this process is one of several workers, else None."""
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class Readiness:
    """Whether every worker is ready. Alone (no run folder) it is this process's own flag; with
    several workers each ready worker holds a file named by its pid, and a worker that died
    without removing its file (uvicorn replaces dead workers) does not count."""

    def __init__(self, folder: Path | None, workers: int) -> None:
        self.folder = folder / "ready" if folder else None
        self.workers = workers
        self._ready = False
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def set(self, ready: bool) -> None:
        self._ready = ready
        if self.folder is None:
            return
        mine = self.folder / str(os.getpid())
        if ready:
            mine.touch()
        else:
            mine.unlink(missing_ok=True)

    @property
    def local(self) -> bool:
        """This worker's own state (it may take requests)."""
        return self._ready

    def all_ready(self) -> bool:
        if not self._ready:
            return False
        if self.folder is None:
            return True
        pids = [int(p.name) for p in self.folder.iterdir() if p.name.isdigit()]
        return sum(_alive(pid) for pid in pids) >= self.workers
