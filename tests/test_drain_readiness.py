"""Readiness during the drain: from the moment SIGTERM reaches `python -m app`, /readyz says 503 on
the probe port and the service port, while the requests already accepted are still answered.
Before, uvicorn ran the lifespan shutdown (which drops readiness) only once every request in
flight had finished, so a load balancer kept routing new requests to a pod for the whole drain."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.core.probes import probe_answer
from app.core.workers import Readiness, is_draining, mark_draining
from tests.support.echo import SLOW
from tests.support.server import free_port, running_server

ECHO = "tests.support.echo_app:create"


def test_draining_mark_turns_both_readiness_answers_to_503(tmp_path: Path) -> None:
    readiness = Readiness(tmp_path, workers=1)
    readiness.set(True)
    assert readiness.all_ready()
    assert probe_answer("/readyz", tmp_path, 1)[0] == 200
    assert not is_draining(tmp_path)
    mark_draining(tmp_path)
    mark_draining(tmp_path)  # a second signal: still the same state
    assert is_draining(tmp_path)
    assert not readiness.all_ready()  # the service port's /readyz
    assert readiness.local  # the worker itself still serves what it accepted
    assert probe_answer("/readyz", tmp_path, 1) == (503, {"status": "draining", "workers": 1})
    assert probe_answer("/healthz", tmp_path, 1)[0] == 200  # alive: not a reason to restart it
    mark_draining(tmp_path / "removed")  # the folder gone at the very end: no error


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_makes_probe_port_unready_within_a_second_while_a_slow_request_finishes(
    echo_model_dir: Path, workers: int
) -> None:
    probe_port = free_port()
    env = {
        "MODEL_DIR": str(echo_model_dir),
        "WORKERS": str(workers),
        "PROBE_PORT": str(probe_port),
        "MAX_BATCH_SIZE": "1",
        "SHUTDOWN_DRAIN_S": "20",
    }
    probe = f"http://127.0.0.1:{probe_port}/readyz"
    with running_server(env, factory=ECHO) as (proc, url):
        assert httpx.get(probe).status_code == 200
        answers: list[httpx.Response] = []

        def slow_request() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                answers.append(client.post("/echo", json={"values": [[SLOW], [SLOW]]}))

        # Six connections, so that with two workers both are very likely busy (all six land on
        # one worker 1 time in 32): an idle worker would leave at once and take its ready file
        # with it, saying 503 for the wrong reason.
        senders = [threading.Thread(target=slow_request) for _ in range(6)]
        for sender in senders:
            sender.start()
        time.sleep(0.3)  # accepted and in the model
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        statuses: list[int] = []
        while time.monotonic() - signalled < 1.0:
            statuses.append(httpx.get(probe, timeout=1).status_code)
            if statuses[-1] == 503:
                break
            time.sleep(0.05)
        unready_after = time.monotonic() - signalled
        assert statuses[-1] == 503, statuses
        assert unready_after < 1.0
        # Within uvicorn's next tick (0.1 s) the workers stop accepting, and a new connection to
        # the service port fails at once: not left in the listening socket's backlog, where
        # nobody accepts any more, until the process exits (a client's connect timeout). With two
        # workers sharing the socket, a connection can reach the backlog in the instant between
        # one worker's close and the other's: the kernel then resets it when the last copy
        # closes, which a client sees as a reset instead of a refusal, just as quickly.
        refused = False
        while not refused and time.monotonic() - signalled < 2.0:
            tried = time.monotonic()
            try:
                httpx.get(url + "/healthz", timeout=5)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                refused = True
            assert time.monotonic() - tried < 1.0, "a new connection waited instead of being refused"
        assert refused
        still_running = sum(s.is_alive() for s in senders)
        assert still_running, "the drain had already ended: readiness was not tested during it"
        for sender in senders:
            sender.join(30)
        assert proc.wait(30) in (0, -signal.SIGTERM)
    assert [a.status_code for a in answers] == [200] * 6  # every accepted request answered
    assert all(a.json() == {"sums": [SLOW, SLOW]} for a in answers)
