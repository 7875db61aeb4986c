"""Dynamic micro-batching, one mechanism for every model.

Callers `submit` a list of prepared items and await their results. One worker per model takes up
to `max_batch_size` items, or whatever arrived within `max_wait_s` of the first one, sorts them by
length and cuts them into groups of similar length (so padding stays small), and runs each group
through the model in a thread pool, off the event loop (a lone call known to be short runs on the
loop: the hand-off would cost more). Each caller gets exactly its own rows, in order. The work in
flight is bounded: `admit` refuses a request (HTTP 503) before any work is spent on it once
`max_queue` items are admitted, and a full queue rejects at once too; neither ever grows without
limit. The models of one worker share its event loop and cores: a model flooded beside lightly
used ones (a `Neighbourhood`) is held to the smaller `shared_queue`, so that it holds no more
work in the worker than about half a batch and the others keep their latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class BatchingConfig(NamedTuple):
    """How one model's batcher groups work. No defaults here: `Settings.batching_for` builds it
    from the settings, the one place the shipped values are defined."""

    max_batch_size: int
    max_wait_s: float
    max_queue: int
    # A lone call expected to take at most this long runs on the event loop (0: never).
    inline_budget_s: float = 0.0
    # The bound beside a lightly used model of the same worker (Neighbourhood; 0: max_queue always).
    shared_queue: int = 0


class Neighbourhood:
    """The models of one worker and how fast requests come to each: a rate that decays with time
    constant `window_s`, so a client sending a few requests a second keeps its model active all
    along, not only during each request's few milliseconds. Used on the event loop's thread
    only, like `admit`."""

    # A model is held to its shared bound while another active model gets requests at less than
    # 1/HEAVY of its rate: a flood beside lightly used models. Models loaded alike (one load
    # spread over three models) never hold each other back, however their queues fluctuate.
    HEAVY = 8.0

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._rate: dict[object, tuple[float, float]] = {}  # member: (requests/s, as of when)

    def _now_rate(self, member: object, now: float) -> float:
        rate, when = self._rate.get(member, (0.0, now))
        return rate * math.exp((when - now) / self.window_s)

    def admitted(self, member: object) -> None:
        now = time.monotonic()
        self._rate[member] = (self._now_rate(member, now) + 1.0 / self.window_s, now)

    def beside_light(self, member: object) -> bool:
        """Whether another model had a request within `window_s` and gets them at under 1/HEAVY
        of `member`'s rate."""
        now = time.monotonic()
        own = self._now_rate(member, now)
        return any(
            now - when <= self.window_s and self._now_rate(other, now) < own / self.HEAVY
            for other, (_, when) in self._rate.items()
            if other is not member
        )


class QueueFullError(RuntimeError):
    """The model's queue cannot take the request; the client should retry later."""


class ShuttingDownError(RuntimeError):
    """The service is draining and takes no new work."""


class BatchFailedError(RuntimeError):
    """The batch this item was in raised; other batches are unaffected."""


class BatchObserver(Protocol):
    def batch_done(
        self, model: str, version: str, size: int, padding_fraction: float, seconds: float
    ) -> None: ...

    def queue_depth(self, model: str, version: str, depth: int) -> None: ...


class _NullObserver:
    def batch_done(
        self, model: str, version: str, size: int, padding_fraction: float, seconds: float
    ) -> None:
        pass

    def queue_depth(self, model: str, version: str, depth: int) -> None:
        pass


@dataclass(slots=True)
class _Pending(Generic[ItemT, ResultT]):
    item: ItemT
    size: int
    future: asyncio.Future[ResultT] = field(repr=False)


def padding_fraction(sizes: Sequence[int]) -> float:
    """Share of the padded batch tensor that is padding."""
    if not sizes:
        return 0.0
    longest = max(sizes)
    return 0.0 if longest == 0 else 1.0 - sum(sizes) / (longest * len(sizes))


def length_groups(sizes: Sequence[int], max_ratio: float) -> list[list[int]]:
    """Indices of `sizes` sorted by size and cut wherever the longest item of a group would be
    more than `max_ratio` times its shortest: each group pads to at most that ratio."""
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and sizes[i] <= max_ratio * max(1, sizes[groups[-1][0]]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class MicroBatcher(Generic[ItemT, ResultT]):
    def __init__(
        self,
        name: str,
        predict: Callable[[list[ItemT]], list[ResultT]],
        executor: Executor,
        config: BatchingConfig,
        *,
        size_of: Callable[[ItemT], int] = lambda _: 1,
        cost_follows_size: bool = False,
        max_length_ratio: float = 2.0,
        observer: BatchObserver | None = None,
        version: str = "",
        neighbourhood: Neighbourhood | None = None,
    ) -> None:
        if config.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.name = name
        self.version = version
        # How refusals name the model: each served version has a batcher (and a bound) of its own.
        self.label = f"{name}@{version}" if version else name
        self._predict = predict
        self._executor = executor
        self._size_of = size_of
        self.max_batch_size = config.max_batch_size
        self.max_wait_s = config.max_wait_s
        self.max_queue = config.max_queue
        self.shared_queue = min(config.shared_queue, config.max_queue) if config.shared_queue else 0
        self._neighbourhood = neighbourhood
        # Only a model whose call time follows its items' sizes can be judged cheap before the
        # call; for others every call goes to the executor.
        self.inline_budget_s = config.inline_budget_s if cost_follows_size else 0.0
        self._lone_unit_s: float | None = None  # seconds per size unit of recent lone calls
        self.max_length_ratio = max_length_ratio
        self._observer: BatchObserver = observer or _NullObserver()
        self._queue: deque[_Pending[ItemT, ResultT]] = deque()
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._admitted = 0
        self._last_batch_size = 0

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Items admitted and not yet answered: being prepared, queued or running."""
        return self._admitted

    def limit(self) -> int:
        """Items this model may have admitted now: `max_queue`, or `shared_queue` while a lightly
        used model of the same worker is active beside it (`Neighbourhood`)."""
        n = self._neighbourhood
        if self.shared_queue and n is not None and n.beside_light(self):
            return self.shared_queue
        return self.max_queue

    def _full(self, items: int) -> str | None:
        if self._admitted + items > self.max_queue:
            return f"{self.label} is at capacity ({self._admitted} items in flight, limit {self.max_queue})"
        # The shared bound never refuses a request for its own size alone: with nothing of this
        # model admitted it goes in, whatever it holds (up to MAX_ITEMS_PER_REQUEST). The
        # neighbours' rates are looked at only when the request would pass that bound.
        shared = self.shared_queue
        if shared and self._admitted and self._admitted + items > shared and self.limit() == shared:
            return (
                f"{self.label} is at capacity beside lightly used models ({self._admitted} items "
                f"in flight, limit {shared})"
            )
        return None

    def refusal(self) -> str | None:
        """Why a new request would be refused right now, or None: lets the HTTP layer shed a
        request before reading its body (`admit` still decides, with the request's real size)."""
        if self._closing:
            return f"{self.label} is shutting down"
        return self._full(1)

    @contextlib.contextmanager
    def admit(self, items: int) -> Iterator[None]:
        """Reserve room for a request's `items` for as long as it is served, BEFORE any work on it
        (tokenising, a thread): under overload a request is refused here, at once, with
        QueueFullError (503), instead of spending CPU and waiting for a queue check it will fail.
        The bound is `limit()` items admitted per model, whatever stage they are in. Runs on
        the event loop's thread, like `submit`, so the count needs no lock."""
        if self._closing:
            raise ShuttingDownError(f"{self.label} is shutting down")
        full = self._full(items)
        if full is not None:
            raise QueueFullError(full)
        self._admitted += items
        if self._neighbourhood is not None:
            self._neighbourhood.admitted(self)
        try:
            yield
        finally:
            self._admitted -= items

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.label}")

    async def submit(self, items: Sequence[ItemT]) -> list[ResultT]:
        """Queue `items` and wait for their results. Raises QueueFullError at once when the queue
        cannot take all of them. Cancelling the caller (timeout, client gone) withdraws whatever
        of its items has not started yet."""
        if self._closing:
            raise ShuttingDownError(f"{self.label} is shutting down")
        if len(self._queue) + len(items) > self.max_queue:
            raise QueueFullError(
                f"{self.label} queue is full ({len(self._queue)} queued, limit {self.max_queue})"
            )
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, self._size_of(item), loop.create_future()) for item in items]
        self._queue.extend(pending)
        self._idle.clear()
        self._observer.queue_depth(self.name, self.version, len(self._queue))
        self._arrived.set()
        try:
            return list(await asyncio.gather(*(p.future for p in pending)))
        except BaseException:
            for p in pending:
                p.future.cancel()
            raise

    async def _take(self) -> list[_Pending[ItemT, ResultT]]:
        while not self._queue:
            self._arrived.clear()
            self._idle.set()
            await self._arrived.wait()
        # Wait for company only under load (the last batch was shared, or others are queued):
        # a lone caller would pay the whole window for nothing.
        busy = self._last_batch_size > 1 or len(self._queue) > 1
        deadline = time.monotonic() + (self.max_wait_s if busy else 0.0)
        while len(self._queue) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        batch: list[_Pending[ItemT, ResultT]] = []
        while self._queue and len(batch) < self.max_batch_size:
            p = self._queue.popleft()
            if not p.future.done():  # withdrawn callers leave nothing behind
                batch.append(p)
        self._observer.queue_depth(self.name, self.version, len(self._queue))
        self._last_batch_size = len(batch)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._take()
            sizes = [p.size for p in batch]
            for group in length_groups(sizes, self.max_length_ratio):
                members = [batch[i] for i in group if not batch[i].future.done()]
                if not members:
                    continue
                lone = len(members) == 1 and not self._queue
                size = sum(p.size for p in members)
                started = time.perf_counter()
                try:
                    if lone and self._cheap(size):
                        results = self._predict([members[0].item])
                    else:
                        results = await loop.run_in_executor(
                            self._executor, self._predict, [p.item for p in members]
                        )
                    if len(results) != len(members):
                        raise RuntimeError(f"model returned {len(results)} results for {len(members)} items")
                except Exception as exc:  # contain the failure to this group
                    error = BatchFailedError(f"{self.label} inference failed: {type(exc).__name__}: {exc}")
                    error.__cause__ = exc
                    for p in members:
                        if not p.future.done():
                            p.future.set_exception(error)
                    continue
                finally:
                    seconds = time.perf_counter() - started
                    if lone:
                        self._learn(size, seconds)
                    self._observer.batch_done(
                        self.name,
                        self.version,
                        len(members),
                        padding_fraction([p.size for p in members]),
                        seconds,
                    )
                for p, r in zip(members, results, strict=True):
                    if not p.future.done():
                        p.future.set_result(r)

    def _cheap(self, size: int) -> bool:
        """Whether a lone call of `size` is expected to fit the inline budget. With one client a
        thread hand-off and back costs more than a short model call (p50 at one client, paired
        runs: short texts 1.72 -> 1.09 ms, reviews 5.31 -> 4.59, NER 4.57 -> 4.16), and nobody
        else is waiting for the event loop; the budget bounds how long a misjudged call holds it."""
        return self._lone_unit_s is not None and self._lone_unit_s * max(1, size) <= self.inline_budget_s

    def _learn(self, size: int, seconds: float) -> None:
        # Lone calls only: a batch's time per unit is lower, and would make lone calls look cheap.
        unit = seconds / max(1, size)
        self._lone_unit_s = unit if self._lone_unit_s is None else 0.8 * self._lone_unit_s + 0.2 * unit

    async def drain(self, deadline_s: float) -> bool:
        """Stop taking work, let queued and running items finish (up to the deadline), then stop
        the worker. Returns True when everything finished in time."""
        self._closing = True
        finished = True
        if self._queue or not self._idle.is_set():
            try:
                await asyncio.wait_for(self._idle.wait(), deadline_s)
            except TimeoutError:
                finished = False
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for p in self._queue:
            if not p.future.done():
                p.future.set_exception(ShuttingDownError(f"{self.label} shut down before this item ran"))
        self._queue.clear()
        return finished

    def info(self) -> dict[str, Any]:
        return {
            "max_batch_size": self.max_batch_size,
            "max_wait_ms": self.max_wait_s * 1000,
            "max_queue": self.max_queue,
            "shared_queue": self.shared_queue or self.max_queue,
            "inline_predict_ms": self.inline_budget_s * 1000,
            "queue_depth": self.depth,
            "in_flight": self.in_flight,
        }
