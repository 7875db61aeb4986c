"""`python -m app`: serve with uvicorn worker processes using the host, port, workers and drain
deadline from Settings, under this process as their supervisor (app/core/supervisor.py).

It starts WORKERS worker processes on one listening socket (the kernel hands each connection to
one of them), WORKERS=1 included, so that a worker can always be replaced by a ready one. Before
it does, it creates the run folder the workers share (app/core/workers.py: merged metrics,
readiness of every worker) and removes it when they have all exited. SIGHUP re-reads MODEL_DIR
(RELOAD_POLL_S: also on its own when it changes): the workers are replaced one at a time, each
new one ready before an old one stops. SIGTERM is passed to every worker; each stops accepting,
drains its own batchers for up to SHUTDOWN_DRAIN_S and exits. This process also answers
/healthz and /readyz on PROBE_PORT (app/core/probes.py): it serves no requests, so probes are
answered at once however loaded the workers are.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path

import uvicorn

from app.core.logs import configure_logging
from app.core.probes import ProbeServer
from app.core.settings import Settings
from app.core.supervisor import Supervisor
from app.core.workers import PROMETHEUS_ENV, RUN_DIR_ENV, mark_draining


def start_probes(settings: Settings, run_folder: Path, workers: int) -> ProbeServer | None:
    """The probe server, or None with PROBE_PORT=0; a port already taken is a one-line exit
    naming the port and the setting (two instances on one host both default to 8001)."""
    if not settings.probe_port:
        return None
    try:
        probes = ProbeServer(settings.host, settings.probe_port, run_folder, workers)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise SystemExit(
            f"PROBE_PORT {settings.probe_port} on {settings.host} is already in use (another instance "
            "on this host?): set PROBE_PORT to a free port, or PROBE_PORT=0 to turn the probe port off"
        ) from None
    probes.start()
    return probes


def main(factory: str = "app.main:create_app") -> None:
    """Serve the app that `factory` builds (tests pass their own task set)."""
    settings = Settings()
    configure_logging(settings.log_level)
    workers = settings.worker_count
    run_folder = Path(tempfile.mkdtemp(prefix="lstm-serve-"))
    # Inherited by the workers, which read them at start (prometheus-client at import). Metrics
    # are always merged over processes: during a reload two workers serve side by side.
    os.environ[RUN_DIR_ENV] = str(run_folder)
    os.makedirs(run_folder / "metrics")
    os.environ[PROMETHEUS_ENV] = str(run_folder / "metrics")
    os.environ["WORKERS"] = str(workers)  # `auto` resolved once, here, for every worker
    status = 0
    try:
        probes = start_probes(settings, run_folder, workers)
        try:
            config = uvicorn.Config(
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
            status = Supervisor(
                config,
                run_folder,
                workers,
                model_dir=settings.model_dir,
                drain_s=settings.shutdown_drain_s,
                handover_s=settings.reload_handover_s,
                poll_s=settings.reload_poll_s,
                # SIGTERM's first moment: readiness 503 on both ports at once, while the requests
                # in flight are still answered (load balancers stop sending new ones).
                on_terminate=lambda: mark_draining(run_folder),
            ).run()
        finally:
            if probes is not None:
                probes.stop()
    finally:
        shutil.rmtree(run_folder, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
