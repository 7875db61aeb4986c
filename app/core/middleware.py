"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and breaks streaming/cancellation):
request ids, access logs and metrics (with the model and version that answered), the body-size
limit, the optional API key, admission at the door (`Door`), and handing a keep-alive connection
back when this worker holds more than its share (`WorkerLoad`)."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import os
import re
import time
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.catalog import SCOPE_KEY
from app.core.logs import request_id_var
from app.core.metrics import Metrics
from app.core.workers import WorkerLoad

log = logging.getLogger("app.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes, and the browser pages, which hold no data of their own (the calls they make need the key).
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
OPEN_PREFIXES = ("/static/",)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


# Made request ids: 32 hex digits, a random per-process prefix and a counter. Unique without a
# uuid4 per request, whose os.urandom call was 5% of a worker's time refusing a flood of requests.
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class Gate(Protocol):
    """A served model as the door sees it."""

    @property
    def labels(self) -> tuple[str, str]: ...

    def refusal(self) -> str | None: ...


class Door(Protocol):
    """Admission at the door: which served model a POST is for, so that a request for a model at
    capacity is refused before any work is spent on it."""

    def reads_body(self, path: str) -> bool:
        """Whether the model of a POST to `path` depends on its body (its `model` field)."""

    def gate(self, path: str, body: bytes | None) -> Gate | None:
        """The model a POST to `path` with `body` is for; None when it is not a model's endpoint
        or the body does not say plainly (the route then decides)."""


# uvicorn closes the connection after a response carrying it; the client reconnects elsewhere.
_CLOSE = (b"connection", b"close")
# The three request headers this layer reads; the others are left undecoded.
_WANTED = frozenset({b"x-request-id", b"x-api-key", b"content-length"})


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_body_bytes: int,
        api_key: str | None,
        door: Door | None = None,
        load: WorkerLoad | None = None,
        refusal_delay_s: float = 0.0,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.api_key = api_key.encode() if api_key else None
        self.door = door
        self.load = load or WorkerLoad(None)
        self.refusal_delay_s = refusal_delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # ASGI servers hand header names over lower-cased.
        headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}
        supplied = headers.get("x-request-id", "")
        rid = supplied if _SAFE_ID.match(supplied) else _new_request_id()
        token = request_id_var.set(rid)
        rid_header = (b"x-request-id", rid.encode())
        started = time.perf_counter()
        status = 500
        path = scope["path"]
        refused = False
        load = self.load
        load.started()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [rid_header]
                if load.over_share():
                    extra.append(_CLOSE)
                    self.metrics.handed_back.inc()
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            if self.api_key is not None and path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES):
                given = headers.get("x-api-key", "").encode()
                # Constant-time comparison: response timing must not leak the key prefix.
                if not hmac.compare_digest(given, self.api_key):
                    await _send_json(
                        send_wrapper,
                        401,
                        {"detail": "missing or wrong API key (header X-API-Key)"},
                        [(b"www-authenticate", b"ApiKey")],
                    )
                    return
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await _send_json(send_wrapper, 413, self._too_large(int(length)), [])
                return
            if self.door is not None and scope["method"] == "POST":
                body: bytes | None = None
                if self.door.reads_body(path):
                    # Several models behind this endpoint: the body says which. Reading it is cheap
                    # next to what a refusal saves (parsing, tokenising); it is replayed to the app.
                    messages, body, size = await _read_body(receive, self.max_body_bytes)
                    if body is None:
                        await _send_json(send_wrapper, 413, self._too_large(size), [])
                        return
                    receive = _replay(messages, receive)
                gate = self.door.gate(path, body)
                refusal = gate.refusal() if gate is not None else None
                if gate is not None and refusal is not None:
                    refused = True
                    scope[SCOPE_KEY] = gate.labels
                    # Shed at the door: nothing is parsed, let alone tokenised. The answer waits
                    # REFUSAL_DELAY_MS (a timer, no CPU): a client that retries at once, with no
                    # back-off, otherwise re-sends thousands of times a second, and the event loop
                    # spends its time refusing while the admitted requests wait for it.
                    if self.refusal_delay_s:
                        await asyncio.sleep(self.refusal_delay_s)
                    await _send_json(
                        send_wrapper, 503, {"detail": refusal, "request_id": rid}, [(b"retry-after", b"1")]
                    )
                    return
            received = 0
            too_large = False

            async def limited_receive() -> Message:
                # Chunked bodies carry no content-length: count as they arrive, and past the
                # limit tell the app the client went away so it stops reading.
                nonlocal received, too_large
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        too_large = True
                        return {"type": "http.disconnect"}
                return message

            async def guarded_send(message: Message) -> None:
                if not too_large:  # whatever the app answers to a cut-off body is replaced
                    await send_wrapper(message)

            await self.app(scope, limited_receive, guarded_send)
            if too_large:
                await _send_json(send_wrapper, 413, self._too_large(received), [])
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # Refused at the door: no route was matched, but the path is the model's endpoint.
            endpoint = getattr(route, "path", None) or (path if refused else "unmatched")
            self.metrics.request_done(endpoint, scope["method"], status, elapsed)
            served = scope.get(SCOPE_KEY)
            if served is not None:
                self.metrics.model_request_done(served[0], served[1], status, elapsed)
            # Refusals at the door are counted in the metrics; one log line each would make an
            # overloaded server spend on logging what it saves by refusing.
            level = logging.DEBUG if refused else logging.INFO
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        **({"model": served[0], "version": served[1]} if served is not None else {}),
                    },
                )
            request_id_var.reset(token)
            load.finished()

    def _too_large(self, size: int) -> dict[str, Any]:
        return {
            "detail": [
                {
                    "loc": ["body"],
                    "msg": f"request body of {size} bytes exceeds the limit of {self.max_body_bytes} bytes",
                    "type": "body_too_large",
                    "ctx": {"limit": self.max_body_bytes, "value": size},
                }
            ]
        }


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None, int]:
    """The request's messages up to the end of its body, the body and its size so far; None for
    the body when it is longer than `limit` (the messages are then of no use)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break  # the client went away: the app will see the disconnect
        size += len(message.get("body", b""))
        if size > limit:
            return messages, None, size
        if not message.get("more_body", False):
            break
    return messages, b"".join(m.get("body", b"") for m in messages), size


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` as the app would have seen it: the messages read ahead first, then the rest."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
