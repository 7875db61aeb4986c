"""LitServe serving /sentiment and /ner: `python -m bench.peers.litserve_server PORT WORKERS`.

LitServe's own batching (max 32 per call, 2 ms window) in each of WORKERS inference processes;
one HTTP server process per worker (LitServe's default)."""

from __future__ import annotations

import sys
from typing import Any

import litserve as ls

from bench.peers.common import MODELS, Pipeline, Prepared


class ModelAPI(ls.LitAPI):  # type: ignore[misc]  # LitServe is untyped here (.venv-peers only)
    def __init__(self, model: str) -> None:
        super().__init__(max_batch_size=32, batch_timeout=0.002, api_path=f"/{model}")
        self.model = model

    def setup(self, device: str) -> None:
        self.pipeline = Pipeline(self.model)

    def decode_request(self, request, **kwargs: Any) -> Prepared:  # type: ignore[no-untyped-def]
        # No annotation: LitServe reads the JSON body as a dict (an annotation would make it a query field).
        return self.pipeline.prepare(request)

    def batch(self, inputs: list[Prepared]) -> list[Prepared]:
        return inputs

    def predict(self, batch: list[Prepared], **kwargs: Any) -> list[tuple[Prepared, list[Any]]]:
        return list(zip(batch, self.pipeline.predict(batch), strict=True))

    def unbatch(self, output: list[tuple[Prepared, list[Any]]]) -> list[tuple[Prepared, list[Any]]]:
        return output

    def encode_response(self, output: tuple[Prepared, list[Any]], **kwargs: Any) -> dict[str, Any]:
        return self.pipeline.answer(*output)


def main(argv: list[str]) -> None:
    port, workers = int(argv[0]), int(argv[1])
    server = ls.LitServer(
        [ModelAPI(m) for m in MODELS], accelerator="cpu", workers_per_device=workers, timeout=60
    )
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)


if __name__ == "__main__":
    main(sys.argv[1:])
