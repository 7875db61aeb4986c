"""Liveness and readiness on a port of their own (`PROBE_PORT`), answered outside the request path.

On the service port a probe is one more request in the workers' event loops: under overload
(512 connections, a flood of 503s) it waited behind hundreds of others for up to 2.8 s, and a
Kubernetes probe (1 s timeout by default) would restart a pod that is only busy. Here a thread of
`python -m app`'s supervisor answers them instead, a process that serves no requests: slowest
probe 77-170 ms at 512 connections on 2 cores, bench client included (WORKERS=1 too: the
supervisor always runs the workers as processes of their own, app/core/supervisor.py). What it
knows it reads from the run folder the workers share (app/core/workers.py):

- `GET /healthz`: 200 while the supervisor runs (it restarts a worker that dies);
- `GET /readyz`: 200 when every worker has loaded and warmed its models (`ready/`), else 503 —
  during start-up, and from the moment the supervisor gets SIGTERM (`draining`) to the end.

The service port keeps its own `/healthz` and `/readyz` for callers without access to this port
(the same statuses; its `/readyz` lists the models, this one counts the workers).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from app.core.workers import is_draining, ready_workers

log = logging.getLogger("app.probes")


def probe_answer(path: str, run_folder: Path, workers: int) -> tuple[int, dict[str, Any]]:
    """Status and JSON body for GET `path` on the probe port."""
    path = path.split("?", 1)[0]
    if path == "/healthz":
        return 200, {"status": "ok"}
    if path == "/readyz":
        if is_draining(run_folder):
            return 503, {"status": "draining", "workers": workers}
        ready = ready_workers(run_folder)
        if ready >= workers:
            return 200, {"status": "ready", "workers": workers}
        return 503, {"status": "not ready", "ready_workers": ready, "workers": workers}
    return 404, {"detail": "probes: GET /healthz or /readyz"}


class ProbeServer:
    """A small threaded HTTP server for the two probes; `start()` returns once it listens."""

    def __init__(self, host: str, port: int, run_folder: Path, workers: int) -> None:
        self.run_folder = run_folder
        self.workers = workers
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = probe_answer(self.path, owner.run_folder, owner.workers)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the access log

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="probes", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("probes listening", extra={"port": self.port})

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
