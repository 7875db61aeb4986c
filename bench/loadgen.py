"""A bounded, closed-loop asyncio load generator: `concurrency` clients, each sending its next
request as soon as the previous one is answered, until a fixed request count OR a time cap is
reached (whichever comes first). Loopback only: the base URL must be on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

_HEADERS = {"content-type": "application/json"}


@dataclass
class PhaseResult:
    requests: int = 0  # answered 200
    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    client_cpu_s: float = 0.0
    capped: bool = False  # stopped by the time cap, not the request count
    sample_response: Any = None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _check_loopback(base_url: str) -> None:
    host = urlsplit(base_url).hostname
    if host != "127.0.0.1":
        raise ValueError(f"the load generator only targets 127.0.0.1, not {host!r}")


async def _phase(
    clients: list[httpx.AsyncClient],
    path: str,
    bodies: list[bytes],
    first: int,
    n_requests: int,
    concurrency: int,
    time_cap_s: float,
) -> PhaseResult:
    result = PhaseResult()
    issued = 0
    started = time.perf_counter()
    deadline = started + time_cap_s
    cpu0 = time.process_time()

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal issued
        while issued < n_requests:
            if time.perf_counter() >= deadline:
                result.capped = True
                return
            body = bodies[(first + issued) % len(bodies)]
            issued += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(path, content=body, headers=_HEADERS)
            except httpx.HTTPError as exc:
                result.errors[type(exc).__name__] += 1
                continue
            elapsed = time.perf_counter() - t0
            if r.status_code == 200:
                result.requests += 1
                result.latencies_s.append(elapsed)
                if result.sample_response is None:
                    result.sample_response = json.loads(r.content)
            else:
                result.errors[f"HTTP {r.status_code}"] += 1

    await asyncio.gather(*(client_loop(c) for c in clients[:concurrency]))
    result.wall_s = time.perf_counter() - started
    result.client_cpu_s = time.process_time() - cpu0
    return result


async def _run(
    base_url: str,
    path: str,
    bodies: list[bytes],
    concurrency: int,
    max_requests: int,
    time_cap_s: float,
    warmup_requests: int,
    on_measure_start: Callable[[], None] | None,
    during_measure: Callable[[], None] | None,
) -> tuple[PhaseResult, PhaseResult]:
    _check_loopback(base_url)
    # One client (one keep-alive connection) per simulated user, like independent callers. A single
    # shared AsyncClient costs the load generator CPU per request that grows with the number of
    # connections in its pool (httpx issue #3215): at 64 it saturated a core and capped the load.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(60.0, connect=10.0)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout)
            )
            for _ in range(concurrency)
        ]
        # Warm-up on other inputs: opens the connections and lets the batcher reach steady state.
        warm = await _phase(
            clients, path, bodies, len(bodies) // 2, warmup_requests, concurrency, max(2.0, time_cap_s / 5)
        )
        if on_measure_start is not None:
            on_measure_start()  # quick and synchronous: nothing is in flight between the phases
        phase = asyncio.create_task(_phase(clients, path, bodies, 0, max_requests, concurrency, time_cap_s))
        if during_measure is not None:
            await asyncio.to_thread(during_measure)  # may block (e.g. wait on a profiler)
        measured = await phase
    return warm, measured


def run_load(
    base_url: str,
    path: str,
    bodies: list[bytes],
    concurrency: int,
    max_requests: int,
    time_cap_s: float,
    warmup_requests: int,
    on_measure_start: Callable[[], None] | None = None,
    during_measure: Callable[[], None] | None = None,
) -> PhaseResult:
    """Warm up, then measure; `on_measure_start` runs between the two, `during_measure` in a
    thread while the measured phase runs. Runs its own event loop (uvloop when installed)."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    _, measured = runner(
        _run(
            base_url,
            path,
            bodies,
            concurrency,
            max_requests,
            time_cap_s,
            warmup_requests,
            on_measure_start,
            during_measure,
        )
    )
    return measured  # type: ignore[no-any-return]
