"""What the HTTP API promises beyond its request and response models, kept true in two places:

- the answers FastAPI would otherwise word itself: a body that is not valid UTF-8 JSON (FastAPI:
  an undocumented 400 "There was an error parsing the body") becomes a 422 saying so, and a body
  sent without a JSON Content-Type (FastAPI: a 422 about a "dictionary or object") a 415 saying
  which Content-Type to send;
- the OpenAPI document: every status an operation can answer, `/metrics` as the Prometheus text
  it is, and a description naming the architectures of the bundles this instance serves (read
  from their manifests, so it cannot go stale).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.bundle import BundleError, discover_tasks, read_manifest, resolve_bundle_dir
from app.core.logs import request_id_var
from app.core.middleware import OPEN_PATHS
from app.core.settings import Settings
from app.core.text import VISIBLE_PATTERN

log = logging.getLogger("app")

FASTAPI_PARSE_ERROR = "There was an error parsing the body"
PROBLEM = "Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": PROBLEM,
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in words."},
        "request_id": {"type": ["string", "null"], "description": "The X-Request-ID of the request."},
    },
    "required": ["detail"],
}
_VALIDATION_REF = {"$ref": "#/components/schemas/HTTPValidationError"}
_PROBLEM_REF = {"$ref": f"#/components/schemas/{PROBLEM}"}

# Statuses every POST endpoint can answer besides 200 and 422, and the body each carries.
POST_ERRORS: dict[str, tuple[str, dict[str, Any]]] = {
    "401": ("`API_KEY` is set and X-API-Key is missing or wrong.", _PROBLEM_REF),
    "413": ("The body is larger than MAX_BODY_BYTES (`ctx` holds the limit).", _VALIDATION_REF),
    "415": ("The body was not sent as JSON: use `Content-Type: application/json`.", _PROBLEM_REF),
    "500": ("Inference failed for this request's batch; grep the logs for request_id.", _PROBLEM_REF),
    "503": ("The model's queue is full, or the service is shutting down: retry later.", _PROBLEM_REF),
    "504": ("Not answered within REQUEST_TIMEOUT_S.", _PROBLEM_REF),
}
VALIDATION_DESCRIPTION = (
    "Invalid input: `detail[].loc` names the field, `msg` says what is wrong, `ctx` holds the limit "
    "and the value where one was broken. Also a body that is not valid UTF-8 JSON."
)


# A 422 lists at most this many errors; the last entry then says how many more there were.
MAX_ERRORS_SHOWN = 20


def shown_errors(errors: list[Any]) -> list[Any]:
    """`errors` cut to MAX_ERRORS_SHOWN entries, every one of the documented ValidationError shape."""
    if len(errors) <= MAX_ERRORS_SHOWN:
        return errors
    more = len(errors) - MAX_ERRORS_SHOWN + 1
    note = {"loc": ["body"], "msg": f"and {more} more errors", "type": "more_errors", "ctx": {"value": more}}
    return [*errors[: MAX_ERRORS_SHOWN - 1], note]


def _is_json(content_type: str) -> bool:
    # The media types FastAPI itself parses as JSON.
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def unsupported_media_type(request: Request, exc: RequestValidationError) -> JSONResponse | None:
    """A 415 for a POST whose body could not be read because it was not sent as JSON, or None."""
    content_type = request.headers.get("content-type", "")
    if request.method != "POST" or _is_json(content_type):
        return None
    if not any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()):
        return None
    sent = f"this request's Content-Type is {content_type!r}" if content_type else "this request has none"
    return JSONResponse(
        {
            "detail": f"the body must be JSON, sent with Content-Type: application/json ({sent})",
            "request_id": request_id_var.get(),
        },
        status_code=415,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_PARSE_ERROR:
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError):
            msg = f"the body is not valid UTF-8 JSON (byte {cause.start} cannot be decoded)"
        elif isinstance(cause, RecursionError):
            msg = "the body's JSON nests too deeply to parse"
        else:
            msg = "the body could not be parsed as JSON"
        return JSONResponse(
            {"detail": [{"loc": ["body"], "msg": msg, "type": "json_invalid"}]}, status_code=422
        )
    return await http_exception_handler(request, exc)


def _manifest_section(settings: Settings, name: str) -> dict[str, Any]:
    try:
        return dict(read_manifest(resolve_bundle_dir(settings.model_dir, name)).preprocessing)
    except (BundleError, OSError, ValueError):
        return {}


def _array_branch(prop: dict[str, Any]) -> dict[str, Any]:
    """The array schema of an optional list field (`anyOf: [array, null]`), or the field itself."""
    for branch in prop.get("anyOf", []):
        if branch.get("type") == "array":
            return branch  # type: ignore[no-any-return]
    return prop


def _constrain(components: dict[str, Any], settings: Settings) -> None:
    """The limits the service enforces, in the schema, so that what the schema allows is what the
    service accepts: item counts and text sizes from Settings, history and horizon bounds and the
    interval levels from the served forecast bundle, non-blank texts, exactly one of texts/tokens."""
    text = {
        "type": "string",
        "minLength": 1,
        "maxLength": settings.max_text_chars,
        "pattern": VISIBLE_PATTERN,
        "description": "At least one visible character (not only whitespace, control or zero-width).",
    }
    token = {k: v for k, v in text.items() if k != "maxLength"}  # a token's length is not limited

    def props(model: str) -> dict[str, Any]:
        return dict(components.get(model, {}).get("properties", {}))

    sentiment = props("SentimentRequest")
    if "texts" in sentiment:
        sentiment["texts"].update(maxItems=settings.max_items_per_request, items=text)
    ner = props("NerRequest")
    if "texts" in ner and "tokens" in ner:
        _array_branch(ner["texts"]).update(maxItems=settings.max_items_per_request, items=text)
        sentence = {
            "type": "array",
            "minItems": 1,
            "maxItems": settings.max_tokens_per_sequence,
            "items": token,
        }
        _array_branch(ner["tokens"]).update(maxItems=settings.max_items_per_request, items=sentence)
        components["NerRequest"]["oneOf"] = [
            {"required": [field], "properties": {field: {"type": "array"}}} for field in ("texts", "tokens")
        ]
    forecast = props("ForecastRequest")
    if "series" in forecast:
        forecast["series"]["maxItems"] = settings.max_items_per_request
        section = _manifest_section(settings, "forecast")
        levels = section.get("interval_levels")
        if levels:
            forecast["levels"]["items"] = {"type": "number", "enum": sorted(float(lv) for lv in levels)}
        series = props("SeriesIn")
        series["values"]["maxItems"] = settings.max_series_values
        if isinstance(section.get("min_window"), int):
            series["values"]["minItems"] = section["min_window"]
        if isinstance(section.get("horizon_max"), int):
            series["horizon"]["maximum"] = section["horizon_max"]


def describe_models(settings: Settings) -> str:
    """One line per served model, from its bundle's manifest."""
    lines = []
    try:
        names = settings.model_names or discover_tasks(settings.model_dir)
        for name in names:
            manifest = read_manifest(resolve_bundle_dir(settings.model_dir, name))
            summary = manifest.architecture.get("summary") or manifest.architecture.get("name", "")
            headline = manifest.headline
            lines.append(
                f"- **{name}** {manifest.version}: {summary}; {headline.metric} {headline.value:g} "
                f"({headline.split})"
            )
    except (BundleError, OSError, ValueError) as exc:
        # The service will refuse to start with its own message; the document must still build.
        log.warning("cannot describe the models in OpenAPI", extra={"error": str(exc)})
    return "\n".join(lines)


def _list_models(schema: dict[str, Any], served: Mapping[str, list[str]]) -> None:
    """Each task's request `model` field: its `enum` is what this instance serves there (what a
    generated client offers; anything else is a 422)."""
    components = schema.get("components", {}).get("schemas", {})
    for task, choices in served.items():
        body = schema.get("paths", {}).get(f"/{task}", {}).get("post", {}).get("requestBody", {})
        ref = body.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
        field = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}).get("model")
        if field is None or not choices:
            continue
        for branch in field.get("anyOf", [field]):
            if branch.get("type") == "string":
                branch["enum"] = choices
        field["description"] = field.get("description", "") + " Served here: " + ", ".join(choices) + "."


def _response(description: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _document(schema: dict[str, Any], settings: Settings, served: Mapping[str, list[str]]) -> None:
    _list_models(schema, served)
    models = describe_models(settings)
    if models:
        schema["info"]["description"] = (
            "REST inference for LSTM-family models with dynamic micro-batching. "
            "The models this instance serves (English text only for sentiment and NER):\n\n" + models
        )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components[PROBLEM] = PROBLEM_SCHEMA
    _constrain(components, settings)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if method == "post":
                for status, (description, body) in POST_ERRORS.items():
                    responses.setdefault(status, _response(description, body))
                if "422" in responses:
                    responses["422"]["description"] = VALIDATION_DESCRIPTION
            elif path not in OPEN_PATHS:
                responses.setdefault("401", _response(*POST_ERRORS["401"]))
    metrics = schema.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"] = {
            "description": "Prometheus text exposition format.",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    readyz = schema.get("paths", {}).get("/readyz", {}).get("get")
    if readyz is not None:
        ok = readyz["responses"]["200"]
        readyz["responses"]["503"] = {
            "description": "Not ready yet, or shutting down.",
            "content": ok.get("content", {}),
        }


def install_contract(
    app: FastAPI, settings: Settings, served: Callable[[], Mapping[str, list[str]]] = dict
) -> None:
    """`served`: per task, the values its `model` field accepts (read when the document is built,
    once the models are loaded)."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document(generate(), settings, served())  # `generate` caches its result in app.openapi_schema
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
