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
  its share of keep-alive connections can hand one back (`WorkerLoad`);
- `draining`: present once the supervisor got SIGTERM (`mark_draining`), so both `/readyz` say 503
  from that moment rather than when each worker finally runs its lifespan shutdown, which uvicorn
  does only after the requests in flight have finished: a load balancer kept sending new
  requests for the whole drain.
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


CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> int:
    """Cores this process may use: its CPU affinity, capped by its cgroup's CPU quota (a
    container's `--cpus`, a Kubernetes CPU limit), which affinity does not show, and by its
    cgroup's cpuset. Both cgroup versions: v2 (`cpu.max`) and v1 (`cpu.cfs_quota_us`), which
    Docker still uses on hosts booted without the unified hierarchy (RHEL/CentOS 7-8, Amazon
    Linux 2, older Ubuntu). The roots are parameters so tests can hand in fake trees."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limits = [cpus]
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        # 1.5 cores of quota is two workers' worth: the second one does useful work half the time.
        limits.append(max(1, math.ceil(quota)))
    cpuset = cgroup_cpuset_size(cgroup_root, proc_cgroup)
    if cpuset:
        limits.append(cpuset)
    return max(1, min(limits))


def _cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """This process's cgroup per controller, from /proc/self/cgroup (`4:cpu,cpuacct:/docker/abc`
    on v1; `0::/path` on v2, under the key "")."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in proc_cgroup.read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller.removeprefix("name=")] = parts[2]
    return paths


def _cgroup_dirs(mount: Path, path: str) -> list[Path]:
    """The folders under `mount` whose limits apply to this process: its cgroup's and every
    ancestor's (a Kubernetes pod's limit sits above its container's), deepest first. Inside a
    container the mount is often the container's own cgroup while /proc/self/cgroup still names
    the host's path (v1 has no cgroup namespace): folders that are not there are skipped, and the
    mount itself is always read."""
    parts = [p for p in path.split("/") if p and p != ".."]
    dirs = [mount.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]
    return [d for d in dirs if d.is_dir()]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _is_v2(cgroup_root: Path) -> bool:
    return (cgroup_root / "cgroup.controllers").is_file()


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """The tightest CPU quota over this process's cgroup and its ancestors, in cores, or None when
    there is none."""
    paths = _cgroup_paths(proc_cgroup)
    quotas: list[float] = []
    if _is_v2(cgroup_root):
        for folder in _cgroup_dirs(cgroup_root, paths.get("", "/")):
            with contextlib.suppress(ValueError, IndexError, ZeroDivisionError):
                quota, period = (_read(folder / "cpu.max") or "").split()[:2]
                if quota != "max":
                    quotas.append(int(quota) / int(period))
    else:
        # v1: the cpu controller is mounted as `cpu`, `cpu,cpuacct` or `cpuacct,cpu` (often links).
        mounts = [cgroup_root / name for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu")]
        mount = next((m for m in mounts if m.is_dir()), None)
        if mount is not None:
            for folder in _cgroup_dirs(mount, paths.get("cpu", "/")):
                with contextlib.suppress(ValueError, TypeError, ZeroDivisionError):
                    quota_us = int(_read(folder / "cpu.cfs_quota_us"))  # type: ignore[arg-type]
                    period_us = int(_read(folder / "cpu.cfs_period_us"))  # type: ignore[arg-type]
                    if quota_us > 0:  # -1: no limit
                        quotas.append(quota_us / period_us)
    return min(quotas) if quotas else None


def cgroup_cpuset_size(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> int | None:
    """How many CPUs this process's cpuset holds (`--cpuset-cpus`), or None when unknown. The
    scheduler already applies it to the affinity; read as well because some sandboxes (gVisor,
    older kernels in containers) report the host's whole affinity."""
    paths = _cgroup_paths(proc_cgroup)
    if _is_v2(cgroup_root):
        folders = _cgroup_dirs(cgroup_root, paths.get("", "/"))
        names: tuple[str, ...] = ("cpuset.cpus.effective",)
    else:
        mount = cgroup_root / "cpuset"
        folders = _cgroup_dirs(mount, paths.get("cpuset", "/")) if mount.is_dir() else []
        names = ("cpuset.effective_cpus", "cpuset.cpus")
    for folder in folders:  # the deepest one that says, which its ancestors contain
        for name in names:
            text = _read(folder / name)
            if text:
                with contextlib.suppress(ValueError):
                    return len(parse_cpu_list(text))
    return None


def parse_cpu_list(text: str) -> set[int]:
    """The kernel's CPU list format: `0-3,8,10-11`."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


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


DRAINING_NAME = "draining"


def mark_draining(run_folder: Path) -> None:
    """The service is shutting down: from now on every /readyz answers 503 (idempotent)."""
    with contextlib.suppress(OSError):  # a folder already removed: nothing is served any more
        (run_folder / DRAINING_NAME).touch()


def is_draining(run_folder: Path) -> bool:
    return (run_folder / DRAINING_NAME).exists()


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
        if is_draining(self.folder.parent):
            return False
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
