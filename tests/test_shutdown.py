"""Graceful shutdown with a real uvicorn process: SIGTERM during a burst loses no accepted request."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support.echo import SLOW_SECONDS
from tests.support.server import running_server


def test_sigterm_finishes_in_flight_and_queued_requests(echo_model_dir: Path) -> None:
    env = {
        "MODEL_DIR": str(echo_model_dir),
        "MAX_BATCH_SIZE": "1",  # one item per model call: the burst queues up behind the slow ones
        "SHUTDOWN_DRAIN_S": "20",
    }
    burst = 12
    with running_server(env, factory="tests.support.echo_app:create") as (proc, url):

        async def burst_then_sigterm() -> list[httpx.Response | BaseException]:
            limits = httpx.Limits(max_connections=burst)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
                # a few slow items keep the queue busy for ~1 s while SIGTERM arrives
                bodies = [{"values": [[-1000.0 if i < 2 else float(i), float(i)]]} for i in range(burst)]
                tasks = [asyncio.ensure_future(client.post("/echo", json=b)) for b in bodies]
                await asyncio.sleep(0.3)  # all requests accepted and queued
                proc.send_signal(signal.SIGTERM)
                return await asyncio.gather(*tasks, return_exceptions=True)

        started = time.monotonic()
        results = asyncio.run(burst_then_sigterm())
        # uvicorn re-raises the captured SIGTERM once it has shut down cleanly
        assert proc.wait(30) in (0, -signal.SIGTERM), proc.stdout.read() if proc.stdout else ""
        elapsed = time.monotonic() - started

    errors = [r for r in results if not isinstance(r, httpx.Response)]
    assert not errors, f"accepted requests lost at shutdown: {errors}"
    for i, r in enumerate(results):
        assert isinstance(r, httpx.Response)
        assert r.status_code == 200, (i, r.status_code, r.text)
        expected = (-1000.0 if i < 2 else float(i)) + float(i)
        assert r.json() == {"sums": [expected]}
    assert elapsed >= 2 * SLOW_SECONDS  # the slow items really were waited for


def test_disconnected_client_leaves_no_work_behind(echo_model_dir: Path) -> None:
    env = {"MODEL_DIR": str(echo_model_dir), "MAX_BATCH_SIZE": "1"}
    with running_server(env, factory="tests.support.echo_app:create") as (_, url):

        async def scenario() -> None:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                slow = asyncio.ensure_future(client.post("/echo", json={"values": [[-1000.0]]}))
                await asyncio.sleep(0.1)
                # queued behind the slow call; the client gives up and closes its connection
                with pytest.raises(httpx.ReadTimeout):
                    await client.post("/echo", json={"values": [[7.0]]}, timeout=0.1)
                assert (await slow).status_code == 200
                assert (await client.post("/echo", json={"values": [[1.0]]})).json() == {"sums": [1.0]}
                metrics = (await client.get("/metrics")).text
            # the slow item and the last one ran; the abandoned one never reached the model
            assert 'lstm_items_total{model="echo",version="1.0.0"} 2.0' in metrics
            assert 'status="499"' in metrics

        asyncio.run(scenario())
