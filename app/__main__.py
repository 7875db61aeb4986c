"""`python -m app`: serve with uvicorn using the host, port, workers and drain deadline from Settings.

With WORKERS > 1 uvicorn's supervisor starts that many worker processes on one listening socket
(the kernel hands each connection to one of them). Before it does, this process creates the run
folder the workers share (app/core/workers.py: merged metrics, readiness of every worker) and
removes it when they have all exited. SIGTERM reaches the supervisor, which passes it to every
worker; each stops accepting, drains its own batchers for up to SHUTDOWN_DRAIN_S and exits.
This process also answers /healthz and /readyz on PROBE_PORT (app/core/probes.py): it serves no
requests, so probes are answered at once however loaded the workers are.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import uvicorn

from app.core.probes import ProbeServer
from app.core.settings import Settings
from app.core.workers import PROMETHEUS_ENV, RUN_DIR_ENV, first_on_signals, mark_draining


def main(factory: str = "app.main:create_app") -> None:
    """Serve the app that `factory` builds (tests pass their own task set)."""
    settings = Settings()
    workers = settings.worker_count
    run_folder = tempfile.mkdtemp(prefix="lstm-serve-")
    # Inherited by the workers, which read them at start (prometheus-client at import).
    os.environ[RUN_DIR_ENV] = run_folder
    if workers > 1:
        os.makedirs(os.path.join(run_folder, "metrics"))
        os.environ[PROMETHEUS_ENV] = os.path.join(run_folder, "metrics")
        os.environ["WORKERS"] = str(workers)  # `auto` resolved once, here, for every worker
    probes = None
    if settings.probe_port:
        probes = ProbeServer(settings.host, settings.probe_port, Path(run_folder), workers)
        probes.start()
    # SIGTERM/SIGINT: readiness 503 at once on both ports, before uvicorn's handler starts the drain
    # (which keeps /readyz at 200 until the requests in flight have finished).
    unwrap = first_on_signals((signal.SIGTERM, signal.SIGINT), lambda: mark_draining(Path(run_folder)))
    try:
        uvicorn.run(
            factory,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_config=None,  # our JSON logging, configured by create_app
            access_log=False,
            # SIGTERM: stop accepting, let in-flight requests finish (batchers drain in the lifespan).
            timeout_graceful_shutdown=settings.graceful_shutdown_s,
            proxy_headers=True,
        )
    finally:
        unwrap()
        if probes is not None:
            probes.stop()
        shutil.rmtree(run_folder, ignore_errors=True)


if __name__ == "__main__":
    main()
