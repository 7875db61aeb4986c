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
  (and from the probe port, app/core/probes.py) says 200 only when every worker is ready;
- `load/`: one 8-byte counter per worker, the requests it is serving, so a worker holding more than
  its share of keep-alive connections can hand one back (`WorkerLoad`).
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import signal
import struct
import time
from pathlib import Path

RUN_DIR_ENV = "LSTM_SERVE_RUN_DIR"
# prometheus-client reads this at import time: it must be set before a worker imports it.
PROMETHEUS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Each worker holds every model (~0.4 GiB): past this, more workers cost memory, not speed.
MAX_AUTO_WORKERS = 8
# What the supervisor sends a worker it is replacing (app/core/supervisor.py): stop accepting,
# and close each connection after its next response.
RETIRE_SIGNAL = signal.SIGUSR1
# Set in a worker being replaced. Process-wide on purpose: the process is going away as a whole.
_retiring = False


def retire(run_folder: Path | None) -> None:
    """This worker is being replaced: every response from now on closes its connection (the
    client reconnects, to a worker that accepts), and it no longer counts as ready."""
    global _retiring
    _retiring = True
    if run_folder is not None:
        (run_folder / "ready" / str(os.getpid())).unlink(missing_ok=True)


def retiring() -> bool:
    return _retiring


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
    without removing its file (the supervisor replaces dead workers) does not count."""

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
        return ready_workers(self.folder.parent) >= self.workers


def _live_pids(folder: Path) -> set[int]:
    """The live processes among the files of `folder` named by pid (a worker that died leaves
    its file behind; the supervisor replaces it)."""
    if not folder.is_dir():
        return set()
    return {pid for pid in (int(p.name) for p in folder.iterdir() if p.name.isdigit()) if _alive(pid)}


def ready_workers(run_folder: Path) -> int:
    """Live workers that have said they are ready (what /readyz and the probe port count)."""
    return len(_live_pids(run_folder / "ready"))


class WorkerLoad:
    """Requests in progress in this worker and in its siblings, to keep keep-alive connections
    spread evenly over the workers.

    The kernel gives each new connection to whichever worker accepts it first, and a keep-alive
    client then stays there: 16 connections opened at once can land 11 on one worker and 5 on
    the other, and the busy worker is then the bottleneck while the other idles. A worker serving
    at least `MARGIN` requests more than the least busy sibling therefore answers with
    `Connection: close`; the client reconnects, and the new connection goes to a worker that is
    free to accept it. With closed-loop clients the requests in progress are the connections in
    use, and counting them needs nothing from the ASGI server.

    Alone (no run folder) it counts and never asks for a reconnect."""

    MARGIN = 2
    # At most one hand-back per this many seconds per worker: counts fluctuate as requests come
    # and go, and a client sent away on noise only pays for a reconnect to land on a busy worker.
    INTERVAL_S = 0.1
    # How often the siblings' counter files are looked for again (workers are replaced when they die).
    REFRESH_S = 1.0
    _COUNT = struct.Struct("<q")

    def __init__(self, folder: Path | None, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.in_progress = 0
        self._own: mmap.mmap | None = None
        self._siblings: dict[int, mmap.mmap] = {}
        self._next_refresh = 0.0
        self._next_handback = 0.0
        self.folder = folder / "load" if folder else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._own = self._map(self.folder / str(self.pid), create=True)

    @classmethod
    def _map(cls, path: Path, create: bool = False) -> mmap.mmap:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        try:
            if create:
                os.ftruncate(fd, cls._COUNT.size)
            return mmap.mmap(fd, cls._COUNT.size)
        finally:
            os.close(fd)

    def started(self) -> None:
        self.in_progress += 1
        if self._own is not None:
            self._COUNT.pack_into(self._own, 0, self.in_progress)

    def finished(self) -> None:
        self.in_progress -= 1
        if self._own is not None:
            self._COUNT.pack_into(self._own, 0, self.in_progress)

    def over_share(self) -> bool:
        """Whether this worker should hand the current connection back to the kernel."""
        if _retiring:
            return True
        if self._own is None or self.in_progress < self.MARGIN:
            return False
        now = time.monotonic()
        if now < self._next_handback:
            return False
        if now >= self._next_refresh:
            self._next_refresh = now + self.REFRESH_S
            self._refresh()
        if not self._siblings:
            return False
        least: int = min(self._COUNT.unpack_from(m)[0] for m in self._siblings.values())
        if self.in_progress < least + self.MARGIN:
            return False
        self._next_handback = now + self.INTERVAL_S
        return True

    def _refresh(self) -> None:
        assert self.folder is not None
        live = _live_pids(self.folder) - {self.pid}
        for pid in set(self._siblings) - live:
            self._siblings.pop(pid).close()
        for pid in live - set(self._siblings):
            with contextlib.suppress(OSError, ValueError):
                self._siblings[pid] = self._map(self.folder / str(pid))

    def close(self) -> None:
        """This worker is exiting: its counter stops counting."""
        for m in self._siblings.values():
            m.close()
        self._siblings.clear()
        if self._own is not None and self.folder is not None:
            self._own.close()
            self._own = None
            (self.folder / str(self.pid)).unlink(missing_ok=True)
