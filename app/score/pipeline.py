"""Scoring one chunk of input rows through a task's public pipeline: the one function both engines
(local and Ray) run per batch, so they cannot answer differently.

A row is the body of one `POST /<task>` holding a single item: for `sentiment` the column `text`
becomes `{"texts": [text]}`, for `ner` `text` or `tokens` become `texts`/`tokens`, for `forecast`
the columns `values`, `horizon`, `frequency`, `timestamps`, `seasonality` become one entry of `series`.
Request-wide options (`return_attention`, `return_tags`, `levels`) apply to every row. The row's
answer is that one item's entry of the response (`predictions[0]`, `results[0]`, `forecasts[0]`),
field for field; a row the API would refuse gets the API's 422 `detail` instead.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ValidationError

from app.core.errors import InputError
from app.core.limits import InputLimits
from app.core.settings import Settings
from app.core.task import ModelTask
from app.main import TASK_PACKAGES, default_bundle_dir, json_safe
from app.main import load_task as load_service_task

# Input columns that are not part of the request: a row's own identifier, kept in the output.
ID_COLUMN = "id"
# A JSON line that is valid JSON but not an object: validated as the whole body, as the API does.
_NOT_AN_OBJECT = "\0not-an-object"

Row = Mapping[str, Any]
SourceFormat = Literal["jsonl", "csv", "parquet"]


@dataclass(frozen=True)
class RowFormat:
    """How the rows of one task's input become request bodies, and where the answer sits."""

    request_schema: str  # "module:Class" of the request body model
    item_field: str  # the body's list a row fills with one item
    answer_field: str  # the response's list holding that item's answer
    # input column -> body field, for text-like items; None: the row itself is the item (its
    # `item_columns` are the item's fields)
    column_fields: Mapping[str, str] | None
    item_columns: tuple[str, ...]
    # columns holding numbers or lists: a CSV cell in them is read as JSON (`3`, `[1, 2, 3]`);
    # other CSV cells are text
    json_columns: tuple[str, ...] = ()

    def request_type(self) -> type[BaseModel]:
        module, name = self.request_schema.split(":")
        model: type[BaseModel] = getattr(importlib.import_module(module), name)
        return model

    def body(self, row: Row, options: Mapping[str, Any]) -> dict[str, Any]:
        """The request body equivalent to `row`: a missing (or null) column is a missing field,
        so the API's own "Field required" answers it."""
        body = dict(options)
        if self.column_fields is None:
            body[self.item_field] = [{c: row[c] for c in self.item_columns if row.get(c) is not None}]
        else:
            for column, field in self.column_fields.items():
                if row.get(column) is not None:
                    body[field] = [row[column]]
        return body


ROW_FORMATS: dict[str, RowFormat] = {
    "sentiment": RowFormat(
        "app.sentiment.schemas:SentimentRequest",
        "texts",
        "predictions",
        {"text": "texts"},
        ("text",),
    ),
    "ner": RowFormat(
        "app.ner.schemas:NerRequest",
        "texts",
        "results",
        {"text": "texts", "tokens": "tokens"},
        ("text", "tokens"),
        json_columns=("tokens",),
    ),
    "forecast": RowFormat(
        "app.forecast.schemas:ForecastRequest",
        "series",
        "forecasts",
        None,
        ("values", "horizon", "frequency", "timestamps", "seasonality"),
        json_columns=("values", "horizon", "timestamps", "seasonality"),
    ),
}


def api_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """A pydantic error on a body, as FastAPI's 422 shows it: `loc` under "body", no URLs, made
    JSON-safe by the service's own handler function."""
    errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
    detail: list[dict[str, Any]] = json_safe(jsonable_encoder(errors))
    return detail


def json_error(exc: json.JSONDecodeError) -> list[dict[str, Any]]:
    """A line that is not JSON, as FastAPI answers a body it cannot parse."""
    return [
        {
            "type": "json_invalid",
            "loc": ["body", exc.pos],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
    ]


@dataclass(frozen=True)
class Scored:
    """One input row's outcome: `record` is the output row (id, row, answer fields) or the error
    row (id, row, status, detail), as a JSON object string."""

    row: int
    ok: bool
    record: str


def parse_raw(raw: Any, source: SourceFormat, fmt: RowFormat) -> Row | list[dict[str, Any]]:
    """One raw input record as a row mapping, or the API's error list when it is not one. JSON
    Lines records arrive as the line's text, CSV cells as strings ("" is a missing value),
    Parquet rows as Python values."""
    if source == "jsonl":
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            return json_error(exc)
        return value if isinstance(value, dict) else {_NOT_AN_OBJECT: value}
    if source == "csv":
        row: dict[str, Any] = {}
        for key, cell in raw.items():
            if cell is None or cell == "" or (isinstance(cell, float) and math.isnan(cell)):
                continue
            if key in fmt.json_columns:
                # not JSON: left a string, which the API's type error ("a valid list") names
                with contextlib.suppress(json.JSONDecodeError):
                    cell = json.loads(cell)
            row[key] = cell
        return row
    return dict(raw)


class BatchScorer:
    """A loaded task plus everything needed to score rows with it: built once per process (or
    per Ray actor), then `score` (= `prepare` then `finish`) runs per chunk."""

    def __init__(
        self,
        task: ModelTask[Any, Any, Any, Any],
        limits: InputLimits,
        options: Mapping[str, Any],
        batch_size: int,
    ) -> None:
        self.task = task
        self.format = ROW_FORMATS[task.name]
        self.request_type = self.format.request_type()
        self.limits = limits
        self.options = dict(options)
        self.batch_size = batch_size

    @classmethod
    def load(cls, name: str, settings: Settings, options: Mapping[str, Any], batch_size: int) -> BatchScorer:
        return cls(load_task(name, settings), settings.input_limits, options, batch_size)

    def score(self, rows: Sequence[tuple[int, Any]], source: SourceFormat) -> list[Scored]:
        """Score `(row number, raw record)` pairs; the result is in the same order."""
        return self.finish(self.prepare(rows, source))

    def prepare(self, rows: Sequence[tuple[int, Any]], source: SourceFormat) -> Prepared:
        """Parse and decode every row (tokenising: the CPU-heavy, GIL-holding half), exactly as
        the route decodes a body; rows the API would refuse get its 422 detail."""
        prepared = Prepared([number for number, _ in rows])
        for number, raw in rows:
            row = parse_raw(raw, source, self.format)
            ident = row.get(ID_COLUMN) if isinstance(row, dict) and _NOT_AN_OBJECT not in row else None
            ident = number if ident is None else ident
            if isinstance(row, list):
                prepared.done[number] = _error(number, ident, row)
                continue
            try:
                raw_body = (
                    row[_NOT_AN_OBJECT] if _NOT_AN_OBJECT in row else self.format.body(row, self.options)
                )
                # as FastAPI validates a body (from_attributes: its error types differ without)
                body = self.request_type.model_validate(raw_body, from_attributes=True)
                items = self.task.decode(body, self.limits)
            except ValidationError as exc:
                prepared.done[number] = _error(number, ident, api_detail(exc))
                continue
            except InputError as exc:
                prepared.done[number] = _error(number, ident, exc.errors)
                continue
            prepared.decoded.append((number, ident, body, items))
        return prepared

    def finish(self, prepared: Prepared) -> list[Scored]:
        """Run the decoded items through the model, length-sorted and `batch_size` at a time so
        that padding stays small, then encode each row's answer from its own items exactly as the
        route would."""
        decoded, out = prepared.decoded, prepared.done
        flat = [(d, i) for d, entry in enumerate(decoded) for i in range(len(entry[3]))]
        flat.sort(key=lambda di: self.task.item_size(decoded[di[0]][3][di[1]]))
        results: list[list[Any]] = [[None] * len(entry[3]) for entry in decoded]
        for start in range(0, len(flat), self.batch_size):
            chunk = flat[start : start + self.batch_size]
            predicted = self.task.predict_batch([decoded[d][3][i] for d, i in chunk])
            for (d, i), result in zip(chunk, predicted, strict=True):
                results[d][i] = result

        for (number, ident, body, items), row_results in zip(decoded, results, strict=True):
            response = self.task.encode(body, items, row_results)
            (answer,) = getattr(response, self.format.answer_field)
            record = {ID_COLUMN: ident, "row": number, **answer.model_dump(mode="json")}
            out[number] = Scored(number, True, json.dumps(record, ensure_ascii=False))
        return [out[number] for number in prepared.rows]


@dataclass
class Prepared:
    """Rows of one chunk after `BatchScorer.prepare`: refused ones already answered, the others
    decoded (row number, id, request body, items)."""

    rows: list[int]
    done: dict[int, Scored] = field(default_factory=dict)
    decoded: list[tuple[int, Any, BaseModel, list[Any]]] = field(default_factory=list)


def _error(number: int, ident: Any, detail: list[dict[str, Any]]) -> Scored:
    record = {ID_COLUMN: ident, "row": number, "status": 422, "detail": detail}
    return Scored(number, False, json.dumps(record, ensure_ascii=False))


def load_task(name: str, settings: Settings) -> ModelTask[Any, Any, Any, Any]:
    """Task `name`'s default model (`--model` sets it through DEFAULT_MODELS) exactly as a service
    worker loads it (`app.main.load_task`), warmed up once."""
    if name not in TASK_PACKAGES:
        raise SystemExit(f"unknown task {name!r}: choose one of {', '.join(TASK_PACKAGES)}")
    modules = {name: importlib.import_module(TASK_PACKAGES[name])}
    task = load_service_task(default_bundle_dir(settings, name), modules, settings)
    task.predict_batch(task.warmup_items())
    return task


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse bad request-wide options before reading any row (each row would fail on them)."""
    fmt = ROW_FORMATS[name]
    reserved = {fmt.item_field, *(fmt.column_fields or {}).values()}
    clash = reserved & set(options)
    if clash:
        raise SystemExit(f"--option {sorted(clash)[0]}: that field comes from each row, not an option")
    try:
        fmt.request_type().model_validate(options)
    except ValidationError as exc:
        bad = [e for e in api_detail(exc) if len(e["loc"]) > 1 and e["loc"][1] in options]
        if bad:
            raise SystemExit(f"invalid --option: {json.dumps(bad)}") from None
    except InputError as exc:
        raise SystemExit(f"invalid --option: {json.dumps(exc.errors)}") from None
