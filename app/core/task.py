"""What a served model plugs into the service: a task turns prepared items into results through a
backend, one batch at a time. The micro-batcher and the HTTP layer are shared; only this is not."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Generic, TypeVar

from app.core.backends import Backend
from app.core.bundle import Bundle

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class ModelTask(ABC, Generic[ItemT, ResultT]):
    """Base class of the three tasks. Subclasses read what they need from the bundle in
    `__init__` (vocabulary, labels, scaler) and implement `predict_batch`."""

    name: ClassVar[str]

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.backend = backend

    def item_size(self, item: ItemT) -> int:
        """Sequence length of a prepared item: the batcher groups items of similar size so that
        padding stays small."""
        return 1

    @abstractmethod
    def predict_batch(self, items: Sequence[ItemT]) -> list[ResultT]:
        """Pad/collate `items`, run the backend once, and return one result per item, in order.
        Runs in a worker thread, never on the event loop."""

    @abstractmethod
    def warmup_items(self) -> list[ItemT]:
        """A few realistic prepared items for the start-up warm-up inference."""
