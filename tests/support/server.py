"""Start a real uvicorn process on 127.0.0.1 for tests that need signals, sockets and timing."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    env: dict[str, str], factory: str = "app.main:create_app", ready_timeout: float = 120.0
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Yield (process, base_url) once /readyz answers 200; kill the process on exit."""
    port = free_port()
    # One worker unless a test asks for more: most real-process tests reason about one batcher.
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "warning",
        "WORKERS": "1",
        "PROBE_PORT": "0",  # off unless a test asks (a fixed port would collide between servers)
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from app.__main__ import main; main({factory!r})"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # Its own process group: with WORKERS > 1 the cleanup below must reach the workers too,
        # or they outlive the test as orphans still holding the port.
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"server exited with {proc.returncode}:\n{out[-4000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not ready within {ready_timeout}s")
            time.sleep(0.1)
        yield proc, url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the supervisor and every worker it started
        proc.wait(10)
