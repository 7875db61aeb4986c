"""The API from a client's side: a Python client generated with openapi-python-client from the
live service's OpenAPI document (any generator warning fails the test), called against that
service for every endpoint, every answer parsed into the generated types, errors included; and,
where Node is installed, TypeScript types from openapi-typescript type-checked with tsc against a
small call file (tests/client_ts/call.ts)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from app.core.bundle import discover_tasks, version_key
from app.core.contract import OPERATION_IDS
from tests.support.server import ROOT, running_server

MODEL_DIR = ROOT / "models"
SHIPPED = discover_tasks(MODEL_DIR)
pytestmark = pytest.mark.skipif(
    set(SHIPPED) != {"sentiment", "ner", "forecast"},
    reason=f"needs the three shipped bundles under models/ (found {SHIPPED})",
)
KEY = "client-test-key"
# /forecast admits at most 2 series at a time: a request with 3 is a 503 at once, without load.
QUEUE = 2
PACKAGE = "lstm_serve_client"
TS_DIR = ROOT / "tests" / "client_ts"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    env = {
        "MODEL_DIR": str(MODEL_DIR),
        "API_KEY": KEY,
        "MODEL_BATCHING": json.dumps({"forecast": {"max_queue_size": QUEUE}}),
        "PYTHONPATH": str(ROOT),
    }
    with running_server(env) as (_, url):
        yield url


@pytest.fixture(scope="module")
def document(server: str) -> dict[str, Any]:
    r = httpx.get(f"{server}/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


@pytest.fixture(scope="module")
def generated(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated client package, imported. The generator's own formatting hook (ruff) is off:
    the test is about what it generates, not how it is laid out."""
    work = tmp_path_factory.mktemp("python_client")
    (work / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    (work / "config.yaml").write_text("post_hooks: []\n", encoding="utf-8")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"), "generate",
            "--path", str(work / "openapi.json"),
            "--config", str(work / "config.yaml"),
            "--meta", "none",
            "--output-path", str(work / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True, text=True, timeout=120, cwd=work,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert "unable to" not in output.lower(), output
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def operation(package: ModuleType, operation_id: str) -> Any:
    """The generated module of an operation, whatever tag it is filed under."""
    found = sorted(Path(package.__file__ or "").parent.glob(f"api/*/{operation_id}.py"))
    assert len(found) == 1, f"no single generated module for {operation_id}: {found}"
    return importlib.import_module(f"{PACKAGE}.api.{found[0].parent.name}.{operation_id}")


def model(package: ModuleType, name: str) -> Any:
    return getattr(importlib.import_module(f"{PACKAGE}.models"), name)


@pytest.fixture(scope="module")
def client(generated: ModuleType, server: str) -> Any:
    # The key goes in X-API-Key, as is, not as "Authorization: Bearer <key>"; an undocumented
    # status raises instead of parsing to None.
    return generated.AuthenticatedClient(
        base_url=server, token=KEY, prefix="", auth_header_name="X-API-Key", raise_on_unexpected_status=True
    )


def test_every_operation_has_a_generated_function_named_as_documented(
    generated: ModuleType, document: dict[str, Any]
) -> None:
    ids = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    assert ids == set(OPERATION_IDS.values())
    for operation_id in ids:
        module = operation(generated, operation_id)
        for function in ("sync", "sync_detailed", "asyncio", "asyncio_detailed"):
            assert callable(getattr(module, function)), (operation_id, function)
    for tag in document["tags"]:
        assert tag["description"], tag


def test_sentiment_answer_is_typed_and_carries_the_request_id(generated: ModuleType, client: Any) -> None:
    texts = ["A wonderful, moving film.", "Dull and far too long."]
    request = model(generated, "SentimentRequest")(texts=texts)
    r = operation(generated, "classify_sentiment").sync_detailed(
        client=client, body=request, x_request_id="py-client-1"
    )
    assert r.status_code == 200, r.content
    assert isinstance(r.parsed, model(generated, "SentimentResponse"))
    assert r.headers["x-request-id"] == "py-client-1"
    assert len(r.parsed.predictions) == 2
    for prediction in r.parsed.predictions:
        probabilities = prediction.probabilities.to_dict()
        assert prediction.label in probabilities  # labels are the bundle's strings
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)


def test_ner_by_texts_and_by_tokens(generated: ModuleType, client: Any) -> None:
    extract = operation(generated, "extract_entities")
    by_text = model(generated, "NerTextsRequest")(texts=["Angela Merkel met Emmanuel Macron in Paris."])
    answer = extract.sync(client=client, body=by_text)
    assert isinstance(answer, model(generated, "NerResponse"))
    text = "Angela Merkel met Emmanuel Macron in Paris."
    found = {(e.text, e.label) for e in answer.results[0].entities}
    assert all(text[e.start : e.end] == e.text for e in answer.results[0].entities)
    assert ("Paris", "LOC") in found, found

    words = ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    by_tokens = model(generated, "NerTokensRequest")(tokens=[words], return_tags=True)
    answer = extract.sync(client=client, body=by_tokens)
    assert isinstance(answer, model(generated, "NerResponse"))
    tagged = answer.results[0].tokens
    assert [t.text for t in tagged] == words
    assert all(isinstance(t.tag, str) for t in tagged)


def test_forecast_at_offered_levels(generated: ModuleType, client: Any) -> None:
    series = model(generated, "SeriesIn")(
        values=[112.0, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118] * 2,
        horizon=3,
        frequency="MS",
        timestamps=[f"{1949 + i // 12}-{i % 12 + 1:02d}-01" for i in range(24)],
    )
    request = model(generated, "ForecastRequest")(series=[series], levels=[80, 95])
    answer = operation(generated, "forecast").sync(client=client, body=request)
    assert isinstance(answer, model(generated, "ForecastResponse"))
    (result,) = answer.forecasts
    assert len(result.point) == 3
    assert [i.level for i in result.intervals] == [80, 95]
    assert result.timestamps == ["1951-01-01T00:00:00", "1951-02-01T00:00:00", "1951-03-01T00:00:00"]


def test_operational_endpoints(generated: ModuleType, client: Any) -> None:
    health = operation(generated, "healthz").sync(client=client)
    assert isinstance(health, model(generated, "HealthStatus"))
    assert health.status == "ok"
    ready = operation(generated, "readyz").sync_detailed(client=client)
    assert ready.status_code == 200
    assert isinstance(ready.parsed, model(generated, "ReadinessStatus"))
    assert ready.parsed.status.value == "ready"
    shipped = {
        f"{name}@{max((p.name for p in (MODEL_DIR / name).iterdir() if p.is_dir()), key=version_key)}"
        for name in ("forecast", "ner", "sentiment")
    }
    assert set(ready.parsed.models) == shipped
    models = operation(generated, "list_models").sync_detailed(client=client)
    assert models.status_code == 200
    assert isinstance(models.parsed, model(generated, "ModelsResponse"))
    assert {f"{m.name}@{m.version}" for m in models.parsed.models} == shipped
    assert {m.task for m in models.parsed.models} == {"sentiment", "ner", "forecast"}
    assert models.parsed.defaults.to_dict()["sentiment"] == next(
        k for k in shipped if k.startswith("sentiment@")
    )
    metrics = operation(generated, "metrics").sync(client=client)
    assert isinstance(metrics, str)
    assert "# TYPE" in metrics


def test_422_parses_and_names_the_field(generated: ModuleType, client: Any) -> None:
    invalid = model(generated, "HTTPValidationError")
    blank = model(generated, "SentimentRequest")(texts=["fine", "\u200b "])
    r = operation(generated, "classify_sentiment").sync_detailed(client=client, body=blank)
    assert r.status_code == 422
    assert isinstance(r.parsed, invalid)
    (error,) = r.parsed.detail
    assert (error.loc, error.type_) == (["body", "texts", 1], "value_error")
    assert error.msg.startswith("text is empty or whitespace only")

    # Levels are plain integers in the schema; the model's offer is checked by the service.
    series = model(generated, "SeriesIn")(values=[float(v % 7) for v in range(30)], horizon=2)
    unoffered = model(generated, "ForecastRequest")(series=[series], levels=[80, 90])
    r = operation(generated, "forecast").sync_detailed(client=client, body=unoffered)
    assert r.status_code == 422
    assert isinstance(r.parsed, invalid)
    (error,) = r.parsed.detail
    assert error.loc == ["body", "levels", 1]
    assert "unsupported interval level 90" in error.msg


def test_503_parses_with_retry_after(generated: ModuleType, client: Any) -> None:
    series = model(generated, "SeriesIn")(values=[float(v % 7) for v in range(30)], horizon=2)
    request = model(generated, "ForecastRequest")(series=[series] * (QUEUE + 1))
    r = operation(generated, "forecast").sync_detailed(client=client, body=request, x_request_id="py-503")
    assert r.status_code == 503
    assert isinstance(r.parsed, model(generated, "Problem"))
    assert "at capacity" in r.parsed.detail
    assert r.parsed.request_id == "py-503" == r.headers["x-request-id"]
    assert int(r.headers["retry-after"]) >= 1


def test_401_without_the_key_parses(generated: ModuleType, server: str) -> None:
    anonymous = generated.Client(base_url=server, raise_on_unexpected_status=True)
    r = operation(generated, "list_models").sync_detailed(client=anonymous)
    assert r.status_code == 401
    assert isinstance(r.parsed, model(generated, "Problem"))
    assert "X-API-Key" in r.parsed.detail
    # The probes stay open.
    assert operation(generated, "readyz").sync_detailed(client=anonymous).status_code == 200


def test_the_document_states_what_a_client_needs(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            needs_key = path not in ("/healthz", "/readyz")
            # This instance has API_KEY set: the key is required, not optional.
            assert (op.get("security") == [{"ApiKey": []}]) == needs_key, (path, method)
            assert any(p["name"] == "X-Request-ID" and p["in"] == "header" for p in op["parameters"])
            for status, response in op["responses"].items():
                assert response["headers"]["X-Request-ID"]["required"] is True, (path, status)
            if method == "post":
                assert "Retry-After" in op["responses"]["503"]["headers"]
    readyz = document["paths"]["/readyz"]["get"]["responses"]
    for status in ("200", "503"):
        assert readyz[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ReadinessStatus"
        }
    levels = document["components"]["schemas"]["ForecastRequest"]["properties"]["levels"]
    assert levels["items"]["type"] == "integer"
    assert "enum" not in levels["items"]
    assert "50, 80, 95" in levels["description"]


NODE = shutil.which("node")
NPM = shutil.which("npm")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_text_pattern_compiles_in_javascript(document: dict[str, Any]) -> None:
    """JavaScript validators compile `pattern` with RegExp, with the `u` flag (Ajv) or without."""
    pattern = document["components"]["schemas"]["SentimentRequest"]["properties"]["texts"]["items"]["pattern"]
    cases = {" \t": False, "\u200b": False, "\U000e0001": False, "a": True, "😀": True, "Zürich": True}
    script = (
        "const [pattern, cases] = JSON.parse(process.argv[1]);"
        "const out = {};"
        "for (const flags of ['', 'u']) { const re = new RegExp(pattern, flags);"
        "  out[flags || 'none'] = Object.keys(cases).map((text) => re.test(text)); }"
        "console.log(JSON.stringify(out));"
    )
    result = subprocess.run(
        [str(NODE), "-e", script, json.dumps([pattern, cases])], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"none": list(cases.values()), "u": list(cases.values())}


@pytest.mark.skipif(NODE is None or NPM is None, reason="node/npm are not installed")
def test_typescript_types_check_against_a_call_file(document: dict[str, Any], tmp_path: Path) -> None:
    """`npm ci` installs the pinned openapi-typescript and tsc (tests/client_ts/package-lock.json);
    the generated types must type-check call.ts, whose @ts-expect-error lines must each fail."""
    env = {**os.environ, "npm_config_audit": "false", "npm_config_fund": "false"}
    install = subprocess.run(
        [str(NPM), "ci", "--no-audit", "--no-fund"],
        cwd=TS_DIR, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    (tmp_path / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    for name in ("call.ts", "tsconfig.json"):
        shutil.copy(TS_DIR / name, tmp_path / name)
    bin_dir = TS_DIR / "node_modules" / ".bin"
    # openapi-typescript 7 by default types a field with a default as always present: right for
    # answers FastAPI fills in, wrong for requests (`return_tags` would be required) and for
    # fields left out of answers (`tokens` of a /ner result without `return_tags`).
    generate = subprocess.run(
        [str(bin_dir / "openapi-typescript"), "openapi.json", "-o", "api.d.ts",
         "--default-non-nullable", "false"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert generate.returncode == 0, generate.stdout + generate.stderr
    assert "warn" not in (generate.stdout + generate.stderr).lower(), generate.stdout + generate.stderr
    check = subprocess.run(
        [str(bin_dir / "tsc"), "-p", str(tmp_path / "tsconfig.json")],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
