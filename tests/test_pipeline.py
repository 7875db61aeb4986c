"""The public pipeline every caller shares (route, bulk scoring, benchmark): a task's `answer`, run
in-process without HTTP or the batcher, gives field for field what POST /<task> answers, and
refuses bad input with the same 422 detail; each task's typed bundle section refuses a malformed
or mismatched bundle at start-up, naming the field."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.core.backends import load_backend
from app.core.bundle import MANIFEST_NAME, BundleError, load_bundle, resolve_bundle_dir
from app.core.errors import InputError
from app.core.settings import Settings
from app.core.task import ModelTask
from app.forecast.schemas import ForecastRequest
from app.forecast.task import ForecastTask
from app.main import create_app
from app.ner.schemas import NerRequest
from app.ner.task import NerTask
from app.sentiment.schemas import SentimentRequest
from app.sentiment.task import SentimentTask
from bench.prepare import preparer
from bench.server import ServerConfig
from tests import forecast_support, ner_support, sentiment_support

LIMITS = {"max_items_per_request": 4, "max_text_chars": 300, "max_tokens_per_sequence": 6}


@dataclass(frozen=True)
class Case:
    task_type: type[ModelTask[Any, Any, Any, Any]]
    request_type: type[BaseModel]
    write: Callable[[Path], object]
    good: dict[str, Any]
    bad: dict[str, Any]  # valid JSON for the schema, refused by `decode`
    exclude_none: bool = False  # the route's response_model_exclude_none


CASES = {
    "sentiment": Case(
        SentimentTask,
        SentimentRequest,
        lambda d: sentiment_support.write_tiny_bundle(d, cell="gru", head="attention"),
        {"texts": ["A great film!", "Bad. " * 20, "<br />the plot"], "return_attention": True},
        {"texts": ["fine", "<br /><br />"]},
    ),
    "ner": Case(
        NerTask,
        NerRequest,
        ner_support.write_tiny_bundle,
        {
            "texts": ["Peter Blackburn met EU officials. In Paris, twice!", "Zoë in São Paulo"],
            "return_tags": True,
        },
        {"tokens": [["a"], ["b", " "]]},
        exclude_none=True,
    ),
    "forecast": Case(
        ForecastTask,
        ForecastRequest,
        lambda d: forecast_support.write_tiny_bundle(d),
        {
            "series": [
                {"values": [float(i % 7) for i in range(40)], "horizon": 3},
                {
                    "values": [1.0, 2.0, 3.0, 2.5, 2.0, 4.0],
                    "horizon": 2,
                    "timestamps": [f"2024-01-0{d}" for d in range(1, 7)],
                },
            ],
            "levels": [80],
        },
        {"series": [{"values": [1.0, 2.0, 3.0, 4.0], "horizon": 99}]},
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    name: str = request.param
    case = CASES[name]
    model_dir = tmp_path_factory.mktemp(name)
    case.write(model_dir)
    settings = Settings(_env_file=None, model_dir=model_dir, models=name, **LIMITS)  # type: ignore[call-arg]
    bundle = load_bundle(resolve_bundle_dir(model_dir, name))
    task = case.task_type(bundle, load_backend("onnx", bundle, "cpu"))
    with TestClient(create_app(settings, task_packages={name: f"app.{name}"})) as client:
        yield name, case, task, settings, client


def test_in_process_answer_equals_the_http_answer(served: Any) -> None:
    name, case, task, settings, client = served
    r = client.post(f"/{name}", json=case.good)
    assert r.status_code == 200, r.text
    answer = task.answer(case.request_type.model_validate(case.good), settings.input_limits)
    assert answer.model_dump(mode="json", exclude_none=case.exclude_none) == r.json()


def test_in_process_refusal_equals_the_http_422(served: Any) -> None:
    name, case, task, settings, client = served
    r = client.post(f"/{name}", json=case.bad)
    assert r.status_code == 422, r.text
    with pytest.raises(InputError) as refused:
        task.decode(case.request_type.model_validate(case.bad), settings.input_limits)
    assert refused.value.errors == r.json()["detail"]


def test_benchmark_prepares_items_through_decode(served: Any) -> None:
    name, case, task, settings, _ = served
    raw = case.good["series"] if name == "forecast" else case.good["texts"]
    items = preparer(name, task, settings)(raw)
    request = case.request_type.model_validate(case.good)
    assert [task.item_size(i) for i in items] == [
        task.item_size(i) for i in task.decode(request, settings.input_limits)
    ]


def test_benchmark_defaults_are_the_shipped_settings() -> None:
    shipped = Settings(_env_file=None)  # type: ignore[call-arg]
    config = ServerConfig()
    for field in ("backend", "batching", "threads", "max_batch_size", "max_batch_wait_ms", "max_queue_size"):
        assert getattr(config, field) == getattr(shipped, field), field


# --- typed bundle sections ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dirs = {}
    for name, case in CASES.items():
        dirs[name] = tmp_path_factory.mktemp(f"{name}-sections")
        case.write(dirs[name])
    return dirs


def _start_with(
    written: dict[str, Path], tmp_path: Path, name: str, edit: Callable[[dict[str, Any]], None]
) -> None:
    model_dir = tmp_path / "models"
    shutil.copytree(written[name], model_dir)
    path = resolve_bundle_dir(model_dir, name) / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    edit(manifest["preprocessing"])
    path.write_text(json.dumps(manifest))
    settings = Settings(_env_file=None, model_dir=model_dir, models=name)  # type: ignore[call-arg]
    with TestClient(create_app(settings, task_packages={name: f"app.{name}"})):
        pass


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda pre: pre.pop(key)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda pre: pre.__setitem__(key, value)


@pytest.mark.parametrize(
    ("name", "edit", "field"),
    [
        ("sentiment", _drop("pad_id"), "preprocessing.pad_id"),
        ("sentiment", _set("tokenizer", "whitespace"), "preprocessing.tokenizer"),
        ("sentiment", _set("head_tokens", 1), "head_tokens"),
        ("sentiment", _set("vocab_size", 7), "preprocessing.vocab_size"),
        ("sentiment", _set("unk_id", 5), "preprocessing.unk_id"),
        ("sentiment", _set("padding_id", 0), "preprocessing.padding_id"),  # old NER naming
        ("ner", _set("max_word_chars", 12), "preprocessing.max_word_chars"),
        ("ner", _set("char_vocab_size", 3), "preprocessing.char_vocab_size"),
        ("ner", _set("pad_id", 2), "preprocessing.pad_id"),
        ("forecast", _set("horizon_max", "many"), "preprocessing.horizon_max"),
        ("forecast", _set("theta_weights", {"12": 0.5}), "theta_weights"),
        ("forecast", _drop("min_window"), "preprocessing.min_window"),
    ],
)
def test_a_bundle_whose_section_does_not_fit_stops_start_up_naming_the_field(
    written: dict[str, Path], tmp_path: Path, name: str, edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    with pytest.raises(BundleError, match=field.replace(".", "[.]")):
        _start_with(written, tmp_path, name, edit)
