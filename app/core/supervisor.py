"""`python -m app`'s supervisor: starts WORKERS uvicorn worker processes on one listening socket,
replaces a worker that dies, and reloads MODEL_DIR without downtime.

uvicorn's own supervisor does not fit: with WORKERS=1 it runs no supervisor at all (nothing could
start a replacement), and when it replaces a worker it SIGTERMs the old one, whose idle keep-alive
connections are then closed under clients that may be sending on them that very moment (a reset
connection). Here a reload (SIGHUP, or RELOAD_POLL_S noticing a change) replaces the workers one
at a time:

1. a new worker starts; it reads MODEL_DIR, loads and warms every bundle (a bad one is skipped
   with a log line naming it, app/main.py), and starts accepting on the shared socket;
2. only once it is serving is the old worker *retired* (SIGUSR1, `RETIRE_SIGNAL`): it stops
   accepting, leaves the ready count, and answers every request still coming on its connections
   with `Connection: close`, so each client reconnects, to a worker that accepts;
3. after RELOAD_HANDOVER_S the old worker gets SIGTERM and drains what it still holds.

A new worker that does not get ready (a crash, every bundle refused) is stopped, the reload is
abandoned with an error log, and the running workers keep serving. So at every moment there are
at least WORKERS ready workers, WORKERS=1 included.

SIGTERM (or SIGINT) to the supervisor is passed to every worker, each of which drains its own
batchers for up to SHUTDOWN_DRAIN_S; `Supervisor.terminating` is the one place that learns of it
first (readiness turned off there reaches both /readyz at once).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from pathlib import Path

import uvicorn
from uvicorn._subprocess import get_subprocess
from uvicorn.config import STARTUP_FAILURE

from app.core.workers import RETIRE_SIGNAL, retire

log = logging.getLogger("app.supervisor")

# How often the supervisor looks at its workers (and at MODEL_DIR with RELOAD_POLL_S).
TICK_S = 0.2
# How long a new worker may take to load and warm its models before a reload is abandoned.
START_TIMEOUT_S = 300.0
# A replacement for a dead worker that fails to start is tried again after this long.
RESTART_DELAY_S = 5.0


class RetiringServer(uvicorn.Server):
    """uvicorn's server, plus retirement (`RETIRE_SIGNAL`): stop accepting, close each connection
    after its next response. It also says when it accepts (`serving/<pid>` in the run folder),
    which is what the supervisor waits for before retiring another worker."""

    def __init__(self, config: uvicorn.Config, run_folder: Path) -> None:
        super().__init__(config)
        self.run_folder = run_folder

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        import asyncio

        asyncio.get_running_loop().add_signal_handler(RETIRE_SIGNAL, self.retire)
        serving = self.run_folder / "serving"
        serving.mkdir(parents=True, exist_ok=True)
        (serving / str(os.getpid())).touch()

    def retire(self) -> None:
        for server in self.servers:
            server.close()  # this process stops accepting; the others keep the socket open
        retire(self.run_folder)


def _serve(config: uvicorn.Config, run_folder: Path, sockets: list[socket.socket]) -> None:
    # A hang-up meant for the supervisor (a terminal closing, `kill -HUP` to the group) must not
    # end the workers: SIGHUP means "reload", which the supervisor does.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # A retirement that arrives while the worker still loads (a reload asked during start-up)
    # must not kill it (SIGUSR1's default); the supervisor stops it with SIGTERM next anyway.
    signal.signal(RETIRE_SIGNAL, signal.SIG_IGN)
    RetiringServer(config, run_folder).run(sockets=sockets)


def model_dir_fingerprint(model_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file of every bundle folder (`<name>/<version>/*`) with its size and mtime: what
    RELOAD_POLL_S compares (a bundle copied in file by file changes it until the copy ends)."""
    found: list[tuple[str, int, int]] = []
    try:
        for path in model_dir.glob("*/*/*"):
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path.relative_to(model_dir)), stat.st_size, stat.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(found))


class Supervisor:
    def __init__(
        self,
        config: uvicorn.Config,
        run_folder: Path,
        workers: int,
        *,
        model_dir: Path,
        drain_s: float,
        handover_s: float,
        poll_s: float = 0.0,
        on_terminate: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.run_folder = run_folder
        self.count = workers
        self.model_dir = model_dir
        self.drain_s = drain_s
        self.handover_s = handover_s
        self.poll_s = poll_s
        self.on_terminate = on_terminate
        self.workers: list[SpawnProcess] = []
        self.signals: list[int] = []
        self.should_exit = False
        self.sockets: list[socket.socket] = []
        # Whether a worker has ever served: before that, one failing to start means the service
        # cannot start (stop, as uvicorn does); after it, the others keep serving and the failed
        # one is tried again every RESTART_DELAY_S.
        self.served = False
        self._restart_at: dict[int, float] = {}

    # ---------------------------------------------------------------- processes

    def _spawn(self) -> SpawnProcess:
        target = functools.partial(_serve, self.config, self.run_folder)
        process = get_subprocess(self.config, target, self.sockets)
        process.start()
        return process

    def _serving(self, process: SpawnProcess) -> bool:
        serving = (self.run_folder / "serving" / str(process.pid)).exists()
        self.served = self.served or serving
        return serving

    def _wait_serving(self, process: SpawnProcess, timeout: float) -> bool:
        """Whether `process` starts accepting within `timeout` (False: it died, or a stop was asked)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._handle_signals(during_reload=True)
            if self.should_exit or not process.is_alive():
                return False
            if self._serving(process):
                return True
            time.sleep(0.05)
        return False

    def _stop(self, process: SpawnProcess) -> None:
        """SIGTERM `process` and wait for its drain (SHUTDOWN_DRAIN_S, and a margin to exit)."""
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
        process.join(self.drain_s + 10)
        if process.is_alive():
            log.error("worker did not exit after draining; killing it", extra={"pid": process.pid})
            process.kill()
            process.join(5)
        self._forget(process)

    def _forget(self, process: SpawnProcess) -> None:
        (self.run_folder / "serving" / str(process.pid)).unlink(missing_ok=True)

    # ---------------------------------------------------------------- signals

    def _on_signal(self, sig: int, _frame: object) -> None:
        self.signals.append(sig)

    def _handle_signals(self, during_reload: bool = False) -> bool:
        """Act on queued signals; True when a reload was asked (and not already running)."""
        reload = False
        while self.signals:
            sig = self.signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT):
                if not self.should_exit:
                    self.terminating(sig)
            elif sig == signal.SIGHUP:
                reload = True
        if reload and during_reload:
            # The running reload reads MODEL_DIR in the workers it has yet to start; one more
            # round afterwards covers what changed under the ones it already started.
            self.signals.append(signal.SIGHUP)
            return False
        return reload

    def terminating(self, sig: int) -> None:
        """SIGTERM/SIGINT reached the supervisor: stop taking traffic. The one hook for what must
        happen at that moment (the probe port's /readyz turning 503)."""
        log.info("stopping", extra={"signal": signal.Signals(sig).name})
        self.should_exit = True
        if self.on_terminate is not None:
            self.on_terminate()

    # ---------------------------------------------------------------- reload

    def reload(self) -> bool:
        """Replace every worker, one at a time, each replacement serving before its predecessor
        is retired. Returns whether every worker was replaced."""
        log.info("reloading models", extra={"model_dir": str(self.model_dir), "workers": self.count})
        started = time.monotonic()
        for i, old in enumerate(list(self.workers)):
            new = self._spawn()
            if not self._wait_serving(new, START_TIMEOUT_S):
                code = new.exitcode
                if new.is_alive():
                    new.kill()
                new.join(5)
                self._forget(new)
                if not self.should_exit:
                    log.error(
                        "reload abandoned: the new worker did not start (see its log above); the "
                        "running workers keep serving what they served",
                        extra={"exit_code": code},
                    )
                return False
            self.workers[i] = new
            self._restart_at.pop(i, None)
            if old.is_alive() and old.pid is not None:
                os.kill(old.pid, RETIRE_SIGNAL)
                self._pause(self.handover_s)
            self._stop(old)
        log.info("models reloaded", extra={"seconds": round(time.monotonic() - started, 2)})
        return True

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.should_exit:
            time.sleep(min(TICK_S, max(0.0, deadline - time.monotonic())))

    # ---------------------------------------------------------------- main loop

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit status."""
        self.sockets = [self.config.bind_socket()]
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.workers = [self._spawn() for _ in range(self.count)]
        fingerprint = model_dir_fingerprint(self.model_dir) if self.poll_s else ()
        next_poll = time.monotonic() + self.poll_s
        status = 0
        while not self.should_exit:
            reload = self._handle_signals()
            if self.poll_s and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_s
                now = model_dir_fingerprint(self.model_dir)
                if now != fingerprint:
                    fingerprint = now
                    log.info("MODEL_DIR changed", extra={"model_dir": str(self.model_dir)})
                    reload = True
            if reload and not self.should_exit:
                self.reload()
                continue
            failed = self._replace_dead()
            if failed:
                status = STARTUP_FAILURE
                break
            time.sleep(TICK_S)
        for process in self.workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        # Each worker closes its copy of the listening socket as its drain starts; this one, held
        # open through the drain, would leave the port listening with nobody accepting: a new
        # connection would wait in the backlog until exit instead of being refused at once.
        for sock in self.sockets:
            sock.close()
        for process in self.workers:
            self._stop(process)
        return status

    def _replace_dead(self) -> bool:
        """Start a replacement for each worker that died. True when one failed at start-up and no
        worker has ever served: the next would fail the same way (no servable bundle, a broken
        app). Once the service has served, a worker that fails to start is tried again later."""
        for i, process in enumerate(self.workers):
            if process.is_alive():
                self._serving(process)
                continue
            if i in self._restart_at:
                if time.monotonic() < self._restart_at[i]:
                    continue
                del self._restart_at[i]
                self.workers[i] = self._spawn()
                continue
            process.join()
            never_served = not self._serving(process)
            self._forget(process)
            died = {"pid": process.pid, "exit_code": process.exitcode}
            if process.exitcode == STARTUP_FAILURE and never_served:
                if not self.served:
                    log.error("a worker failed to start; stopping", extra=died)
                    self.should_exit = True
                    return True
                log.error("a replacement worker failed to start; trying again", extra=died)
                self._restart_at[i] = time.monotonic() + RESTART_DELAY_S
                continue
            log.error("worker died; starting another", extra=died)
            self.workers[i] = self._spawn()
        return False
