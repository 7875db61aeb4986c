"""Ray Serve serving /sentiment and /ner: `python -m bench.peers.ray_server PORT REPLICAS`.

(No `from __future__ import annotations`: Ray's ingress hands FastAPI the methods, and string
annotations there turn the `Request` parameter into a query field.)

One deployment with a FastAPI ingress; `@serve.batch` (at most 32 requests, 2 ms window) per
model in each replica. Ray's proxy receives HTTP on 127.0.0.1:PORT and forwards to replicas."""

import os
import signal
import sys
import time
from typing import Any

import ray
from fastapi import FastAPI, Request
from ray import serve

from bench.peers.common import Pipeline

app = FastAPI()


@serve.deployment(max_ongoing_requests=1024)
@serve.ingress(app)
class Peer:
    def __init__(self) -> None:
        self.pipelines = {m: Pipeline(m) for m in ("sentiment", "ner")}

    def _run(self, model: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pipeline = self.pipelines[model]
        prepared = [pipeline.prepare(b) for b in bodies]
        return [pipeline.answer(p, r) for p, r in zip(prepared, pipeline.predict(prepared), strict=True)]

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def _sentiment(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._run("sentiment", bodies)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def _ner(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._run("ner", bodies)

    @app.post("/sentiment")
    async def sentiment(self, request: Request) -> dict[str, Any]:
        result: dict[str, Any] = await self._sentiment(await request.json())
        return result

    @app.post("/ner")
    async def ner(self, request: Request) -> dict[str, Any]:
        result: dict[str, Any] = await self._ner(await request.json())
        return result


def main(argv: list[str]) -> None:
    port, replicas = int(argv[0]), int(argv[1])
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {k: v for k, v in os.environ.items() if k in ("MODEL_DIR", "PEER_THREADS")}},
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(
        Peer.options(num_replicas=replicas, ray_actor_options={"num_cpus": 0}).bind(),  # type: ignore[attr-defined]
        route_prefix="/",
        blocking=False,
    )
    print("ready", flush=True)
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    while not stop:
        time.sleep(0.2)
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
