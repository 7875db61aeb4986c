"""A thread pool shared by several models that serves them in turn, not in arrival order.

Tokenising runs in a few threads shared by every served model (more threads would only add GIL
contenders). With one FIFO queue, a flood on one model puts its admitted requests' tokenising
ahead of everyone else's, and a request for a quiet model waits behind all of it: the isolation
cell of bench/models.md measured another model's p99 at 9.7x its unloaded p99. Here each model
submits through its own `lane`, and a free thread takes the next job of the next lane that has
one, so a quiet model's job waits for at most one job of each other lane per thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class FairPool:
    """`workers` threads taking jobs from the lanes with work, one job per lane in turn."""

    def __init__(self, workers: int, thread_name_prefix: str) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._cond = threading.Condition()
        self._turns: deque[Lane] = deque()  # lanes holding work, each once, in the order served
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{thread_name_prefix}_{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def lane(self, name: str) -> Lane:
        """An Executor whose jobs take their turn beside the other lanes'."""
        return Lane(self, name)

    def _enqueue(self, lane: Lane, job: _Job) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError(f"cannot schedule new work on lane {lane.name}: the pool is shut down")
            lane.jobs.append(job)
            if len(lane.jobs) == 1:
                self._turns.append(lane)
            self._cond.notify()

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._turns:
                if self._closed:
                    return None
                self._cond.wait()
            lane = self._turns.popleft()
            job = lane.jobs.popleft()
            if lane.jobs:  # back of the line: the other lanes go first
                self._turns.append(lane)
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller, as ThreadPoolExecutor does
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True) -> None:
        """Take no new jobs; the threads finish those queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()


class Lane(Executor):
    """One model's way into a FairPool."""

    def __init__(self, pool: FairPool, name: str) -> None:
        self.pool = pool
        self.name = name
        self.jobs: deque[_Job] = deque()  # guarded by the pool's lock

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.pool._enqueue(self, (future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """The pool is shared: closing one lane leaves it to the pool's owner."""
