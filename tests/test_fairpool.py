"""The decode pool serves models in turn: a flooded model's backlog never queues a quiet one's job."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.core.fairpool import FairPool


def test_a_quiet_lane_goes_before_a_flooded_lanes_backlog() -> None:
    pool = FairPool(1, "test")
    flood, quiet = pool.lane("flood"), pool.lane("quiet")
    started, gate = threading.Event(), threading.Event()
    order: list[str] = []
    first = flood.submit(lambda: (started.set(), gate.wait(5), order.append("flood-0")))
    assert started.wait(5)
    backlog = [flood.submit(order.append, f"flood-{i}") for i in range(1, 20)]
    late = quiet.submit(order.append, "quiet")
    gate.set()
    for f in [first, *backlog, late]:
        f.result(5)
    pool.shutdown()
    # The quiet job arrived after 19 queued flood jobs and ran after one of them (FIFO: after all).
    assert order[:3] == ["flood-0", "flood-1", "quiet"]
    assert order[3:] == [f"flood-{i}" for i in range(2, 20)]


def test_lanes_alternate_when_both_have_work() -> None:
    pool = FairPool(1, "test")
    a, b = pool.lane("a"), pool.lane("b")
    gate = threading.Event()
    order: list[str] = []
    blocker = pool.lane("c").submit(gate.wait, 5)
    jobs = [a.submit(order.append, f"a{i}") for i in range(3)] + [
        b.submit(order.append, f"b{i}") for i in range(3)
    ]
    gate.set()
    blocker.result(5)
    for j in jobs:
        j.result(5)
    pool.shutdown()
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_results_exceptions_and_asyncio() -> None:
    pool = FairPool(2, "test")
    lane = pool.lane("m")

    def boom() -> None:
        raise ValueError("bad text")

    assert lane.submit(sum, [1, 2, 3]).result(5) == 6
    with pytest.raises(ValueError, match="bad text"):
        lane.submit(boom).result(5)

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(lane, pow, i, 2) for i in range(10))))

    assert asyncio.run(main()) == [i * i for i in range(10)]
    pool.shutdown()


def test_shutdown_finishes_queued_jobs_and_refuses_new_ones() -> None:
    pool = FairPool(1, "test")
    lane = pool.lane("m")
    gate = threading.Event()
    done: list[int] = []
    lane.submit(gate.wait, 5)
    queued = [lane.submit(done.append, i) for i in range(5)]
    stopper = threading.Thread(target=pool.shutdown)
    stopper.start()
    gate.set()
    stopper.join(5)
    assert not stopper.is_alive()
    assert all(f.done() for f in queued)
    assert done == list(range(5))
    with pytest.raises(RuntimeError, match="lane m: the pool is shut down"):
        lane.submit(done.append, 99)


def test_a_cancelled_job_is_skipped() -> None:
    pool = FairPool(1, "test")
    lane = pool.lane("m")
    gate = threading.Event()
    ran: list[int] = []
    lane.submit(gate.wait, 5)
    cancelled = lane.submit(ran.append, 1)
    after = lane.submit(ran.append, 2)
    assert cancelled.cancel()
    gate.set()
    after.result(5)
    pool.shutdown()
    assert ran == [2]
