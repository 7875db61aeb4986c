"""The servers the benchmark compares, one at a time, each a process tree on 127.0.0.1:

- lstm-serve: `python -m app` at its shipped settings (bench.server.ServerConfig);
- LitServe, BentoML (1 and 2 workers) and Ray Serve (1 replica) from `.venv-peers`
  (bench/peers/setup.sh), serving the same bundles through the project's own pipeline.

A target runs in its own session; its memory and CPU are those of every process in its tree
(supervisors, workers, a peer's proxies and schedulers), and stopping it reaches all of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server import HOST, ServerConfig, free_port

REPO = Path(__file__).resolve().parents[1]
PEERS_PYTHON = REPO / ".venv-peers" / "bin" / "python"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PROBE = json.dumps({"texts": ["A fine film."]}).encode()


@dataclass(frozen=True)
class Target:
    name: str  # e.g. "LitServe, 2 workers"
    framework: str  # "lstm-serve", "LitServe", ...
    workers: int | None  # None: the target's own default (lstm-serve: WORKERS=auto)
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    ready_path: str  # GET 200 (or POST the probe body when ready_post)
    ready_post: bool = False
    models: tuple[str, ...] = ("sentiment", "ner")
    probe_port: int | None = None  # lstm-serve's PROBE_PORT (/healthz, /readyz off the request path)


def lstm_serve(model_dir: Path, port: int, config: ServerConfig | None = None) -> Target:
    config = config or ServerConfig()
    probe_port = free_port()
    env = config.env(model_dir, port) | {"PROBE_PORT": str(probe_port)}
    return Target(
        "lstm-serve",
        "lstm-serve",
        None,
        (sys.executable, "-m", "app"),
        tuple(env.items()),
        "/readyz",
        models=config.models or ("sentiment", "ner", "forecast"),
        probe_port=probe_port,
    )


# (framework, workers): each peer with 1 and 2 workers; Ray Serve with 1 replica (its proxy and
# controller already cost a core's worth on this machine).
PEER_CONFIGS: tuple[tuple[str, int], ...] = (
    ("LitServe", 1),
    ("LitServe", 2),
    ("BentoML", 1),
    ("BentoML", 2),
    ("Ray Serve", 1),
)


def peer(framework: str, workers: int, model_dir: Path, cores: int, port: int) -> Target:
    """A peer serving the bundles in `model_dir`, ONNX Runtime threads split so that
    workers x threads = cores, as lstm-serve does."""
    py = str(PEERS_PYTHON)
    env = (("MODEL_DIR", str(model_dir)), ("PEER_THREADS", str(max(1, cores // workers))))
    unit = "replica" if framework == "Ray Serve" else "worker"
    name = f"{framework}, {workers} {unit}{'s' * (workers > 1)}"
    if framework == "LitServe":
        lit = (py, "-m", "bench.peers.litserve_server", str(port), str(workers))
        return Target(name, framework, workers, lit, env, "/sentiment", ready_post=True)
    if framework == "BentoML":
        bento = (py, "-m", "bentoml", "serve", "bench.peers.bentoml_service:Peer", "--host", HOST)
        bento_env = (*env, ("PEER_WORKERS", str(workers)), ("BENTOML_PORT", str(port)))
        return Target(name, framework, workers, bento, bento_env, "/readyz")
    if framework == "Ray Serve":
        ray = (py, "-m", "bench.peers.ray_server", str(port), str(workers))
        return Target(name, framework, workers, ray, env, "/sentiment", ready_post=True)
    raise ValueError(f"unknown peer framework {framework!r}")


# ------------------------------------------------------------------------------------ process tree


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree(root: int) -> list[int]:
    """`root`'s processes alive now: its descendants, and whatever else runs in its session (it
    was started as a session leader; daemons a framework double-forks keep the session)."""
    children: dict[int, list[int]] = {}
    in_session: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(int(st[1]), []).append(int(entry.name))
            if int(st[3]) == root:
                in_session.append(int(entry.name))
    out, todo = set(), [root, *in_session]
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo.extend(children.get(pid, []))
    return sorted(out)


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def tree_cpu_seconds(root: int) -> float:
    total = 0.0
    for pid in tree(root):
        if (st := _stat(pid)) is not None:
            total += (int(st[11]) + int(st[12])) / _CLK_TCK
    return total


def tree_memory_mib(root: int) -> dict[str, float]:
    """RSS summed over the tree (counts pages shared between workers once per process) and PSS
    (shares them out: the tree's real footprint), in MiB; and how many processes."""
    rss = pss = 0
    pids = tree(root)
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key == "Rss":
                    rss += int(value.split()[0])
                elif key == "Pss":
                    pss += int(value.split()[0])
    return {"rss_mib": rss / 1024, "pss_mib": pss / 1024, "processes": len(pids)}


@dataclass
class Running:
    target: Target
    port: int
    proc: subprocess.Popen[bytes]
    cold_start_s: float
    memory_ready: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def _ready(client: httpx.Client, target: Target) -> bool:
    try:
        if target.ready_post:
            r = client.post(target.ready_path, content=_PROBE, headers={"content-type": "application/json"})
        else:
            r = client.get(target.ready_path)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


@contextlib.contextmanager
def started(
    make: object, log_path: Path, ready_timeout_s: float = 300.0, cwd: Path = REPO
) -> Iterator[Running]:
    """Start the target `make(port)` builds, wait until it answers, yield, then stop the whole tree
    (SIGTERM to every process, SIGKILL to what is left after 30 s)."""
    port = free_port()
    target: Target = make(port)  # type: ignore[operator]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(target.argv),
        cwd=cwd,
        env=os.environ | dict(target.env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5.0) as client:
            while not _ready(client, target):
                if proc.poll() is not None:
                    raise RuntimeError(f"{target.name} exited ({proc.returncode}) early: see {log_path}")
                if time.perf_counter() - t0 > ready_timeout_s:
                    raise RuntimeError(f"{target.name} not ready in {ready_timeout_s:.0f} s: see {log_path}")
                time.sleep(0.1)
        running = Running(target, port, proc, time.perf_counter() - t0)
        time.sleep(1.0)  # let every worker finish starting (the first answer may come from one)
        running.memory_ready = tree_memory_mib(proc.pid)
        yield running
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """SIGTERM to every process of the tree (lstm-serve drains), SIGKILL to any left after grace."""
    pids = tree(proc.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        proc.poll()  # reap the leader, or it stays a zombie
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
