"""A tiny real task used to test the service core without a trained model: it sums each posted
sequence through a real exported model (TorchScript + ONNX), so backends, batching, bundles and
HTTP are exercised end to end. Items containing POISON make the batch raise, SLOW ones slow."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from app.core.bundle import TensorSpec
from app.core.catalog import model_field
from app.core.limits import InputLimits
from app.core.service import TaskModels, service_for
from app.core.task import ModelTask

POISON = -999.0
SLOW = -1000.0  # an item holding this makes the model call take SLOW_SECONDS
SLOW_SECONDS = 0.5


class EchoModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(values.shape[1], device=values.device).unsqueeze(0)
        mask = (steps < lengths.unsqueeze(1)).to(values.dtype)
        return (values * mask * self.scale).sum(dim=1)


INPUTS = [
    TensorSpec(name="values", dtype="float32", shape=["batch", "time"]),
    TensorSpec(name="lengths", dtype="int64", shape=["batch"]),
]
OUTPUTS = [TensorSpec(name="sums", dtype="float32", shape=["batch"])]


def write_echo_bundle(
    model_dir: Path,
    version: str = "1.0.0",
    overwrite: bool = False,
    name: str | None = None,
    task: str = "echo",
) -> Path:
    from training.bundle import write_bundle

    return write_bundle(
        module=EchoModel(),
        example_inputs=(torch.ones(2, 3), torch.tensor([3, 2])),
        task=task,
        name=name,
        version=version,
        inputs=INPUTS,
        outputs=OUTPUTS,
        architecture={"name": "masked sum", "summary": "masked sum (test fixture)"},
        headline={"metric": "none", "value": 0.0, "split": "none"},
        metrics={"none": {}},
        data={"source": "synthetic test fixture"},
        extra_files={"vocab": ("vocab.txt", b"a\nb\n")},
        model_dir=model_dir,
        overwrite=overwrite,
    )


class EchoRequest(BaseModel):
    values: list[list[float]] = Field(min_length=1, json_schema_extra={"examples": [[[1.0, 2.0]]]})
    model: str | None = model_field()


class EchoResponse(BaseModel):
    sums: list[float]
    # Which model answered, only when the request chose one: the older tests compare whole bodies.
    model: str | None = None


class Task(ModelTask[EchoRequest, list[float], float, EchoResponse]):
    name = "echo"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A fixed cost per model call, like a real network's, so a test can know its capacity.
        self.call_seconds = float(os.environ.get("ECHO_CALL_MS", "0")) / 1000

    def decode(self, request: EchoRequest, limits: InputLimits) -> list[list[float]]:
        return request.values

    def encode(
        self, request: EchoRequest, items: Sequence[list[float]], results: Sequence[float]
    ) -> EchoResponse:
        if request.model is None:
            return EchoResponse(sums=list(results))
        return EchoResponse(sums=list(results), model=f"{self.bundle.name}@{self.bundle.version}")

    def item_size(self, item: list[float]) -> int:
        return len(item)

    def predict_batch(self, items: Sequence[list[float]]) -> list[float]:
        if any(POISON in item for item in items):
            raise ValueError("poisoned item")
        if any(SLOW in item for item in items):
            time.sleep(SLOW_SECONDS)
        time.sleep(self.call_seconds)
        longest = max(len(i) for i in items)
        values = np.zeros((len(items), longest), dtype=np.float32)
        for row, item in enumerate(items):
            values[row, : len(item)] = item
        lengths = np.array([len(i) for i in items], dtype=np.int64)
        out = self.backend.run({"values": values, "lengths": lengths})
        return [float(x) for x in out["sums"]]

    def warmup_items(self) -> list[list[float]]:
        return [[1.0, 2.0], [3.0]]


router = APIRouter(tags=["echo"])
EchoService = Annotated[TaskModels[EchoRequest, EchoResponse], Depends(service_for(Task))]


@router.post("/echo", response_model_exclude_none=True)
async def echo(body: EchoRequest, service: EchoService) -> EchoResponse:
    return await service.handle(body)
