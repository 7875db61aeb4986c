"""The real service under test: `python -m app` in a subprocess on 127.0.0.1 and a free port,
configured only through environment variables, as an operator would run it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.core.settings import Settings

HOST = "127.0.0.1"  # loopback only: the benchmark never listens on or sends to anything else
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def shipped(setting: str) -> Any:
    """The service's own default for `setting`: the benchmark measures what ships."""
    return Settings.model_fields[setting].default


@dataclass(frozen=True)
class ServerConfig:
    backend: str = shipped("backend")
    batching: bool = shipped("batching")
    threads: int = shipped("threads")
    max_batch_size: int = shipped("max_batch_size")
    max_batch_wait_ms: float = shipped("max_batch_wait_ms")
    max_queue_size: int = shipped("max_queue_size")
    workers: int | str = shipped("workers")
    precision: str = shipped("precision")
    models: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.backend}-{'batched' if self.batching else 'unbatched'}"

    @property
    def settings_label(self) -> str:
        return (
            f"THREADS={self.threads} MAX_BATCH_SIZE={self.max_batch_size} "
            f"MAX_BATCH_WAIT_MS={self.max_batch_wait_ms:g}"
        )

    def env(self, model_dir: Path, port: int) -> dict[str, str]:
        return {
            "MODEL_DIR": str(model_dir),
            "MODELS": ",".join(self.models),
            "BACKEND": self.backend,
            "DEVICE": "cpu",
            "THREADS": str(self.threads),
            "BATCHING": "true" if self.batching else "false",
            "MAX_BATCH_SIZE": str(self.max_batch_size),
            "MAX_BATCH_WAIT_MS": str(self.max_batch_wait_ms),
            "MAX_QUEUE_SIZE": str(self.max_queue_size),
            "WORKERS": str(self.workers),
            "PRECISION": self.precision,
            "HOST": HOST,
            "PORT": str(port),
            "LOG_LEVEL": "info",  # as shipped: one JSON access-log line per request
            "API_KEY": "",
            "CORS_ORIGINS": "",
        }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak) / Threads of a process, in kB (Threads: a count)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of `pid` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15)


def machine_cpu_seconds() -> float:
    """CPU-seconds spent by the whole machine so far (every core, every process), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


@dataclass
class Server:
    """Context manager: start, wait for /readyz, and always stop (SIGTERM, then SIGKILL)."""

    config: ServerConfig
    model_dir: Path
    log_path: Path
    repo_root: Path
    ready_timeout_s: float = 240.0
    port: int = 0
    cold_start_s: float = 0.0
    rss_ready_kb: int = 0
    models: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Server:
        self.port = free_port()
        env = os.environ | self.config.env(self.model_dir, self.port)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=self.repo_root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, started: float) -> None:
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"server exited with {self.proc.returncode} before ready; "
                        f"log tail:\n{self.log_tail()}"
                    )
                if time.perf_counter() - started > self.ready_timeout_s:
                    raise RuntimeError(
                        f"server not ready after {self.ready_timeout_s:.0f}s:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    r = client.get("/readyz")
                    if r.status_code == 200:
                        self.cold_start_s = time.perf_counter() - started
                        self.models = list(r.json().get("models", []))
                        self.rss_ready_kb = proc_status(self.pid).get("VmRSS", 0)
                        return
                time.sleep(0.05)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Its own session (start_new_session): the group holds every worker it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------- metrics

# Histogram series whose _sum/_count deltas give the per-cell means.
_HISTOGRAMS = ("lstm_batch_size", "lstm_batch_padding_fraction", "lstm_inference_seconds")


def scrape(client: httpx.Client, base_url: str) -> dict[str, float]:
    """`{"<histogram>_sum|<model>": value, ...}` for the batching histograms of every model."""
    text = client.get(f"{base_url}/metrics").text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in _HISTOGRAMS:
            continue
        for sample in family.samples:
            if sample.name.endswith(("_sum", "_count")):
                out[f"{sample.name}|{sample.labels.get('model', '')}"] = sample.value
    return out


def batch_stats(before: dict[str, float], after: dict[str, float], model: str) -> dict[str, float | None]:
    """Mean batch size, mean padding fraction and mean model-call time over a cell."""

    def delta(key: str) -> float:
        return after.get(f"{key}|{model}", 0.0) - before.get(f"{key}|{model}", 0.0)

    def mean(name: str) -> float | None:
        n = delta(f"{name}_count")
        return delta(f"{name}_sum") / n if n > 0 else None

    return {
        "model_calls": delta("lstm_batch_size_count"),
        "mean_batch_size": mean("lstm_batch_size"),
        "mean_padding_fraction": mean("lstm_batch_padding_fraction"),
        "mean_call_ms": (m * 1000 if (m := mean("lstm_inference_seconds")) is not None else None),
    }
