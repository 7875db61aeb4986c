"""What a served model plugs into the service: its whole request pipeline, in one class.

A task is read top to bottom as one request travels (the spirit of LitServe's `LitAPI` or a
TorchServe handler, without their process model):

    decode(request, limits) -> items      body -> prepared items; every limit checked (422 naming the
                                          field); runs in a decode thread (small requests: on the
                                          event loop, see `decode_cost`)
    predict_batch(items) -> results       pad/collate, one backend call, one result per item; runs on
                                          the inference thread, with other requests' items batched in
                                          (a lone short call: on the event loop, `cost_follows_size`)
    encode(request, items, results)       the response body, field for field what POST /<task> answers

The HTTP route (`ModelService.handle`) and callers outside HTTP (`answer`: bulk scoring, the
benchmark) run these same three methods, so they get the same answer for the same request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Generic, TypeVar

from app.core.backends import Backend
from app.core.bundle import Bundle
from app.core.limits import InputLimits

RequestT = TypeVar("RequestT")
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
ResponseT = TypeVar("ResponseT")


class ModelTask(ABC, Generic[RequestT, ItemT, ResultT, ResponseT]):
    """Base class of the tasks. Subclasses read their typed bundle section (`Bundle.section`) and
    artifacts in `__init__`, so a bundle that does not fit fails at start-up, naming the field."""

    name: ClassVar[str]
    # Whether predict_batch's time follows its items' `item_size` (tokens, steps) and nothing
    # else: then the batcher can tell a lone call is short before making it (INLINE_PREDICT_MS).
    cost_follows_size: ClassVar[bool] = False

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.backend = backend

    def output_labels(self) -> list[str]:
        """What the model predicts, as GET /models lists it: its class labels by default."""
        return list(self.manifest.labels)

    @abstractmethod
    def decode(self, request: RequestT, limits: InputLimits) -> list[ItemT]:
        """Check `request` against `limits` and the model, and turn it into prepared items, each
        carrying what `encode` needs to place its result. Raises `InputError` (422) naming the
        field. May be CPU-heavy (tokenising): callers run it off the event loop unless
        `decode_cost` says the request is small."""

    def request_size(self, request: RequestT) -> int:
        """Inputs in `request` (texts, sentences, series), known before `decode`: what admission
        control counts against the model's bound before spending any work on the request."""
        return 1

    def decode_cost(self, request: RequestT) -> int | None:
        """Rough work of `decode` for `request` (characters to tokenise), or None when unknown.
        Small requests are decoded on the event loop: tokenising a short text takes less time
        than handing it to a thread and back (and the GIL is held either way)."""
        return None

    def item_size(self, item: ItemT) -> int:
        """Sequence length of a prepared item: the batcher groups items of similar size so that
        padding stays small."""
        return 1

    @abstractmethod
    def predict_batch(self, items: Sequence[ItemT]) -> list[ResultT]:
        """Pad/collate `items`, run the backend once, and return one result per item, in order.
        Items may come from several requests. Runs in a worker thread, never on the event loop."""

    @abstractmethod
    def encode(self, request: RequestT, items: Sequence[ItemT], results: Sequence[ResultT]) -> ResponseT:
        """The response for `request`, from its items (as `decode` made them) and their results."""

    @abstractmethod
    def warmup_items(self) -> list[ItemT]:
        """A few realistic prepared items for the start-up warm-up inference."""

    def answer(self, request: RequestT, limits: InputLimits) -> ResponseT:
        """The whole pipeline in the calling thread, without the micro-batcher: the request's items
        go through the model as one batch. Padded batches answer exactly like single items, so
        this is the HTTP answer; for callers outside HTTP (bulk scoring, benchmark, tests)."""
        items = self.decode(request, limits)
        return self.encode(request, items, self.predict_batch(items))
