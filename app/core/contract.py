"""What the HTTP API promises beyond its request and response models, kept true in two places:

- the answers FastAPI would otherwise word itself: a body that is not valid UTF-8 JSON (FastAPI:
  an undocumented 400 "There was an error parsing the body") becomes a 422 saying so, and a body
  sent without a JSON Content-Type (FastAPI: a 422 about a "dictionary or object") a 415 saying
  which Content-Type to send;
- the OpenAPI document: every status an operation can answer, `/metrics` as the Prometheus text
  it is, and a description naming the architectures of the bundles this instance serves (read
  from their manifests, so it cannot go stale);
- what a client generated from that document gets: operation ids a person would write, tagged
  groups, the X-API-Key scheme, the X-Request-ID and Retry-After headers, and only schemas that
  mainstream generators type (openapi-python-client, openapi-typescript): no untyped `oneOf`,
  no enums of floats, patterns that compile in JavaScript too. tests/test_client.py generates
  both clients from the live document and calls the service through them.
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

from app.core.bundle import BundleError, read_manifest, resolve_bundle_dir
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
# Operation ids become generated clients' function names (FastAPI's own read `sentiment_sentiment_post`).
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("/sentiment", "post"): "classify_sentiment",
    ("/ner", "post"): "extract_entities",
    ("/forecast", "post"): "forecast",
    ("/models", "get"): "list_models",
    ("/healthz", "get"): "healthz",
    ("/readyz", "get"): "readyz",
    ("/metrics", "get"): "metrics",
}
# Generated clients group their functions by tag (openapi-python-client: one package per tag).
TAGS: list[dict[str, str]] = [
    {"name": "sentiment", "description": "Classify texts with the served sentiment model; its labels "
     "come from the model's bundle (GET /models)."},
    {"name": "ner", "description": "Find named entities in raw texts or pre-tokenised sentences, with "
     "character offsets and CRF confidences; entity types come from the model's bundle."},
    {"name": "forecast", "description": "Forecast time series with prediction intervals at the "
     "levels the served model offers."},
    {"name": "operations", "description": "Liveness, readiness, the served models and Prometheus "
     "metrics."},
]  # fmt: skip
API_KEY_SCHEME = "ApiKey"
SECURITY_SCHEMES: dict[str, Any] = {
    API_KEY_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "Needed on every operation but /healthz and /readyz when the service runs with "
        "`API_KEY` set; a missing or wrong key is a 401.",
    }
}
REQUEST_ID = "X-Request-ID"
REQUEST_ID_PARAMETER: dict[str, Any] = {
    "name": REQUEST_ID,
    "in": "header",
    "required": False,
    # No pattern: a value that does not fit is replaced, not refused (app.core.middleware).
    "schema": {"type": "string"},
    "description": "Your id for this request, echoed in the X-Request-ID response header, in error "
    "bodies (`request_id`) and in the service's logs. Used when it is 1 to 128 characters of "
    "`A-Z a-z 0-9 . _ : -`; otherwise the service makes one.",
}
REQUEST_ID_HEADER: dict[str, Any] = {
    "required": True,
    "schema": {"type": "string"},
    "description": "The request's id: the X-Request-ID sent, when usable, else one the service made. "
    "Quote it when reporting a problem; the logs carry it.",
}
RETRY_AFTER_HEADER: dict[str, Any] = {
    "required": False,
    "schema": {"type": "integer", "minimum": 0},
    "description": "Seconds to wait before retrying: sent when the model's queue is full (1) or the "
    "service is shutting down (5).",
}
# The `type` of each entry of a 422's `detail`: pydantic's own names (`missing`, `extra_forbidden`,
# `string_type`...) and the service's, in the same style.
ERROR_TYPES_DOC = (
    "What kind of error, as a stable snake_case name: pydantic's (`missing`, `extra_forbidden`, "
    "`string_type`, `int_type`, `bool_type`, `list_type`, `float_type`...) or the service's own: "
    "`value_error` (a rule of this API, e.g. a blank text, a limit, an unsupported interval level, "
    "both or neither of `texts` and `tokens`), `finite_number`, `json_invalid` (the body is not "
    "UTF-8 JSON), `body_too_large` (413), `more_errors` (the last entry of a long list)."
)
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
        _split_ner_request(components, ner)
    forecast = props("ForecastRequest")
    if "series" in forecast:
        forecast["series"]["maxItems"] = settings.max_items_per_request
        section = _manifest_section(settings, "forecast")
        levels = section.get("interval_levels")
        # Integers, not an enum: the levels are the served bundle's, and a client generated
        # against one bundle must still be able to ask another; the service refuses an unoffered
        # level with a 422 naming it (ForecastTask._levels). An enum of floats also breaks
        # openapi-python-client.
        forecast["levels"]["items"] = {"type": "integer", "minimum": 1, "maximum": 99}
        if levels:
            offered = ", ".join(str(int(lv)) for lv in sorted(levels))
            forecast["levels"]["description"] = (
                f"{forecast['levels'].get('description', '')} This instance's model offers {offered}."
            ).strip()
        series = props("SeriesIn")
        series["values"]["maxItems"] = settings.max_series_values
        if isinstance(section.get("min_window"), int):
            series["values"]["minItems"] = section["min_window"]
        if isinstance(section.get("horizon_max"), int):
            series["horizon"]["maximum"] = section["horizon_max"]


NER_EXACTLY_ONE = (
    "Give exactly one of `texts` (raw texts) or `tokens` (pre-tokenised sentences); a body with both "
    "or neither is a 422."
)


def _split_ner_request(components: dict[str, Any], ner: dict[str, Any]) -> None:
    """NerRequest as a `oneOf` of two typed objects, NerTextsRequest and NerTokensRequest, each
    with its list required and the other absent: JSON Schema states "exactly one of" with them,
    and generators make a class of each (an untyped oneOf branch, `{"required": ["texts"]}`, is
    one openapi-python-client cannot type, and it dropped /ner). The fields they share (and any
    added to NerRequest later) are copied into both."""
    request = components["NerRequest"]
    examples = request.get("examples", [])
    branches = (("texts", "tokens", "NerTextsRequest"), ("tokens", "texts", "NerTokensRequest"))
    for field, other, name in branches:
        props = {k: v for k, v in ner.items() if k != other}
        wrapper = props[field]
        # The optional field's `anyOf: [array, null]` becomes the array itself, now required.
        extra = {k: v for k, v in wrapper.items() if k not in ("anyOf", "default")}
        props[field] = {**_array_branch(wrapper), **extra}
        components[name] = {
            "type": "object",
            "title": name,
            "description": NER_EXACTLY_ONE,
            "properties": props,
            "required": [field, *(r for r in request.get("required", []) if r not in ("texts", "tokens"))],
            "additionalProperties": False,
            "examples": [e for e in examples if field in e],
        }
    components["NerRequest"] = {
        "title": "NerRequest",
        "description": NER_EXACTLY_ONE,
        "oneOf": [{"$ref": f"#/components/schemas/{name}"} for _, _, name in branches],
        "examples": examples,
    }


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


def _document(
    schema: dict[str, Any], settings: Settings, served: Mapping[str, list[str]], described: list[str]
) -> None:
    _list_models(schema, served)
    if described:
        schema["info"]["description"] = (
            "REST inference for LSTM-family models with dynamic micro-batching. "
            "The models this instance serves (`GET /models` has their labels, metrics and "
            "manifests):\n\n" + "\n".join(described)
        )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas[PROBLEM] = PROBLEM_SCHEMA
    _constrain(schemas, settings)
    _type_errors(schemas)
    components["securitySchemes"] = SECURITY_SCHEMES
    # Without API_KEY the key is accepted and not needed: the `{}` alternative says so, and a
    # client generated from either kind of instance has the same shape.
    security: list[dict[str, list[str]]] = [{API_KEY_SCHEME: []}]
    if settings.api_key is None:
        security.append({})
    used_tags: set[str] = set()
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            operation["operationId"] = OPERATION_IDS.get((path, method), operation.get("operationId"))
            used_tags.update(operation.get("tags", []))
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name") == REQUEST_ID for p in parameters):
                parameters.append(dict(REQUEST_ID_PARAMETER))
            responses = operation.setdefault("responses", {})
            if method == "post":
                for status, (description, body) in POST_ERRORS.items():
                    responses.setdefault(status, _response(description, body))
                if "422" in responses:
                    responses["422"]["description"] = VALIDATION_DESCRIPTION
                responses["503"].setdefault("headers", {})["Retry-After"] = dict(RETRY_AFTER_HEADER)
            elif path not in OPEN_PATHS:
                responses.setdefault("401", _response(*POST_ERRORS["401"]))
            if path not in OPEN_PATHS:
                operation["security"] = security
            for response in responses.values():
                response.setdefault("headers", {})[REQUEST_ID] = dict(REQUEST_ID_HEADER)
    schema["tags"] = [tag for tag in TAGS if tag["name"] in used_tags]
    metrics = schema.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"].update(
            description="Prometheus text exposition format.",
            content={CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        )


def _type_errors(schemas: dict[str, Any]) -> None:
    """FastAPI's 422 body, as the service answers it: `detail` always there, `type` documented."""
    if "HTTPValidationError" in schemas:
        schemas["HTTPValidationError"]["required"] = ["detail"]
    error = schemas.get("ValidationError", {}).get("properties", {})
    if "type" in error:
        error["type"]["description"] = ERROR_TYPES_DOC


def install_contract(
    app: FastAPI,
    settings: Settings,
    served: Callable[[], Mapping[str, list[str]]] = dict,
    described: Callable[[], list[str]] = list,
) -> None:
    """`served`: per task, the values its `model` field accepts; `described`: one Markdown line
    per served model and version. Both are read when the document is built, once the models are
    loaded."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            # `generate` caches its result in app.openapi_schema
            _document(generate(), settings, served(), described())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
