"""The shared micro-batcher: ordering, grouping by length, failure containment, backpressure."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.core.batching import (
    BatchFailedError,
    MicroBatcher,
    Neighbourhood,
    QueueFullError,
    ShuttingDownError,
    length_groups,
    padding_fraction,
)
from app.core.settings import Settings


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: list[str] = []
        self.delay = delay
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self.lock:
            self.batches.append(list(items))
            self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError("boom")
        return [i * 10 for i in items]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def make(
    predict: Recorder,
    pool: ThreadPoolExecutor,
    max_length_ratio: float = 2.0,
    cost_follows_size: bool = False,
    **config: float,
) -> MicroBatcher[int, int]:
    """A batcher with the shipped settings, but for the fields of BatchingConfig in `config`."""
    shipped = Settings(_env_file=None).batching_for("t")  # type: ignore[call-arg]
    return MicroBatcher(
        "t",
        predict,
        pool,
        shipped._replace(**config),
        size_of=lambda i: i,
        cost_follows_size=cost_follows_size,
        max_length_ratio=max_length_ratio,
    )


def test_padding_fraction_and_groups() -> None:
    assert padding_fraction([4, 4]) == 0.0
    assert padding_fraction([2, 4]) == pytest.approx(0.25)
    groups = length_groups([100, 3, 5, 90, 4, 40], max_ratio=2.0)
    assert [[[100, 3, 5, 90, 4, 40][i] for i in g] for g in groups] == [[3, 4, 5], [40], [90, 100]]


def test_concurrent_callers_get_their_own_rows_in_order() -> None:
    rec = Recorder(delay=0.01)

    async def main() -> list[list[int]]:
        with ThreadPoolExecutor(1) as pool:
            b = make(rec, pool, max_batch_size=16, max_wait_s=0.02, max_length_ratio=1000.0)
            b.start()
            requests = [[r * 100 + k for k in range(1 + r % 4)] for r in range(1, 21)]
            out = await asyncio.gather(*(b.submit(req) for req in requests))
            await b.drain(1.0)
            assert out == [[i * 10 for i in req] for req in requests]
            return rec.batches

    batches = run(main())
    assert max(len(b) for b in batches) > 1, "concurrent requests should share model calls"
    assert all(len(b) <= 16 for b in batches)


def test_items_are_grouped_by_length() -> None:
    rec = Recorder()

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = make(rec, pool, max_batch_size=64, max_wait_s=0.05, max_length_ratio=2.0)
            b.start()
            await asyncio.gather(b.submit([3, 400]), b.submit([350, 5]), b.submit([4]))
            await b.drain(1.0)

    run(main())
    for batch in rec.batches:
        assert max(batch) <= 2 * min(batch)
    assert sorted(x for b in rec.batches for x in b) == [3, 4, 5, 350, 400]


def test_one_batch_failing_does_not_poison_others() -> None:
    rec = Recorder(fail_on=7)

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            # ratio 1.0 puts every distinct length in its own model call
            b = make(rec, pool, max_batch_size=8, max_wait_s=0.02, max_length_ratio=1.0)
            b.start()
            results = await asyncio.gather(
                b.submit([7]), b.submit([3]), b.submit([9]), return_exceptions=True
            )
            assert isinstance(results[0], BatchFailedError)
            assert "boom" in str(results[0])
            assert results[1:] == [[30], [90]]
            assert await b.submit([5]) == [50]  # the worker keeps going
            await b.drain(1.0)

    run(main())


def test_full_queue_rejects_at_once() -> None:
    rec = Recorder(delay=0.2)

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = make(rec, pool, max_batch_size=1, max_wait_s=0.0, max_queue=3)
            b.start()
            first = asyncio.ensure_future(b.submit([1]))
            await asyncio.sleep(0.05)  # first is now running, the queue is empty
            queued = asyncio.ensure_future(b.submit([2, 3, 4]))
            await asyncio.sleep(0)
            started = time.perf_counter()
            with pytest.raises(QueueFullError, match="queue is full"):
                await b.submit([5])
            assert time.perf_counter() - started < 0.05
            assert await first == [10]
            assert await queued == [20, 30, 40]
            await b.drain(1.0)

    run(main())


def test_withdrawn_items_are_skipped() -> None:
    rec = Recorder(delay=0.1)

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = make(rec, pool, max_batch_size=1, max_wait_s=0.0)
            b.start()
            first = asyncio.ensure_future(b.submit([1]))
            await asyncio.sleep(0.02)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(b.submit([2]), 0.01)  # times out while queued
            assert await first == [10]
            assert await b.submit([3]) == [30]
            await b.drain(1.0)

    run(main())
    assert [2] not in rec.batches, "a caller that gave up leaves no work behind"


def test_drain_finishes_queued_work_then_refuses() -> None:
    rec = Recorder(delay=0.02)

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = make(rec, pool, max_batch_size=2, max_wait_s=0.0)
            b.start()
            pending = [asyncio.ensure_future(b.submit([i])) for i in range(1, 7)]
            await asyncio.sleep(0)
            assert await b.drain(5.0) is True
            assert [await p for p in pending] == [[i * 10] for i in range(1, 7)]
            with pytest.raises(ShuttingDownError):
                await b.submit([1])

    run(main())


def test_a_lone_caller_does_not_wait_for_company() -> None:
    rec = Recorder()

    async def main() -> float:
        with ThreadPoolExecutor(1) as pool:
            b = make(rec, pool, max_batch_size=32, max_wait_s=0.5)
            b.start()
            started = time.perf_counter()
            for i in range(3):
                assert await b.submit([i + 1]) == [(i + 1) * 10]
            elapsed = time.perf_counter() - started
            await b.drain(1.0)
            return elapsed

    assert run(main()) < 0.3, "sequential single callers must not pay the 0.5 s batching window"


@pytest.mark.parametrize(
    ("follows", "delay", "expected"),
    [
        # learnt from the first lone call: the next short ones run on the event loop, one whose
        # size makes it too long for the budget goes to the inference thread again
        (True, 0.0, ["infer", "loop", "loop", "infer", "loop"]),
        # a model whose lone call took longer than the budget: never on the loop
        (True, 0.2, ["infer"] * 5),
        # a model whose call time is not known from its size (cost_follows_size False): never
        (False, 0.0, ["infer"] * 5),
    ],
)
def test_a_lone_short_call_runs_on_the_event_loop(follows: bool, delay: float, expected: list[str]) -> None:
    rec = Recorder(delay=delay)

    async def main() -> None:
        with ThreadPoolExecutor(1, thread_name_prefix="infer") as pool:
            b = make(rec, pool, cost_follows_size=follows, inline_budget_s=0.05)
            b.start()
            for size in (1, 2, 3, 10**9, 4):
                assert await b.submit([size]) == [size * 10]
            await b.drain(1.0)

    run(main())
    loop_thread = threading.main_thread().name
    assert ["loop" if t == loop_thread else t.split("_")[0] for t in rec.threads] == expected


def test_a_flood_beside_a_lightly_used_model_gets_the_shared_bound() -> None:
    """A worker's models share its loop and cores: a model getting requests at more than 8x the
    rate of another active model may hold only `shared_queue` items; alone, or beside models
    loaded alike, it gets `max_queue`. A request is never refused for its own size alone."""
    hood = Neighbourhood(window_s=0.3)
    config = Settings(_env_file=None).batching_for("t")._replace(max_queue=12, shared_queue=2)  # type: ignore[call-arg]

    def batcher(name: str) -> MicroBatcher[int, int]:
        return MicroBatcher(name, Recorder(), ThreadPoolExecutor(1), config, neighbourhood=hood)

    def requests(b: MicroBatcher[int, int], n: int) -> None:
        for _ in range(n):
            with b.admit(1):
                pass

    flood, quiet, alike = batcher("flood"), batcher("quiet"), batcher("alike")
    requests(flood, 40)
    assert flood.limit() == 12  # alone
    requests(quiet, 1)
    assert flood.limit() == 2  # 40 requests beside 1: the quiet one is lightly used
    assert quiet.limit() == 12  # the light one is never held back
    with flood.admit(5):  # nothing of it admitted: goes in whatever its size
        assert (
            flood.refusal() == "flood is at capacity beside lightly used models (5 items in flight, limit 2)"
        )
        with pytest.raises(QueueFullError, match="beside lightly used models"), flood.admit(1):
            pass
    requests(quiet, 39)  # now loaded alike
    assert flood.limit() == 12
    requests(alike, 30)
    assert flood.limit() == 12
    time.sleep(0.35)  # nobody else within the window: alone again, however fast the rates were
    requests(flood, 1)
    assert flood.limit() == 12
    with flood.admit(12), pytest.raises(QueueFullError, match=r"limit 12\)"), flood.admit(1):
        pass


def test_the_shared_bound_defaults_to_half_a_batch() -> None:
    settings = Settings(_env_file=None, max_batch_size=32)  # type: ignore[call-arg]
    assert settings.batching_for("t").shared_queue == 16
    assert Settings(_env_file=None, max_batch_size=1).batching_for("t").shared_queue == 1  # type: ignore[call-arg]
    pinned = Settings(  # type: ignore[call-arg]
        _env_file=None, shared_queue_size=4, model_batching={"t": {"shared_queue_size": 3}}
    )
    assert pinned.batching_for("t").shared_queue == 3
    assert pinned.batching_for("u").shared_queue == 4
