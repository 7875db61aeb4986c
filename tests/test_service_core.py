"""The HTTP layer of the service core, over the echo test task (a real exported model)."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.support.echo import POISON, SLOW


def test_readyz_health_and_round_trip(echo_client: Callable[..., Any]) -> None:
    with echo_client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "models": ["echo@1.0.0"]}
        r = client.post("/echo", json={"values": [[1, 2, 3], [4.5]]})
        assert r.status_code == 200
        assert r.json() == {"sums": [6.0, 4.5]}


def test_both_backends_answer_the_same(echo_client: Callable[..., Any]) -> None:
    body = {"values": [[0.5, 0.25], [1, 2, 3, 4, 5]]}
    answers = []
    for backend in ("onnx", "torchscript"):
        with echo_client(backend=backend) as client:
            assert client.get("/models").json()["models"][0]["backend"] == backend
            answers.append(client.post("/echo", json=body).json())
    assert answers[0] == answers[1] == {"sums": [0.75, 15.0]}


def test_request_id_is_echoed_or_made(echo_client: Callable[..., Any]) -> None:
    with echo_client() as client:
        assert (
            client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
        )
        made = client.get("/healthz", headers={"x-request-id": "bad id\n"}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        others = {client.get("/healthz").headers["x-request-id"] for _ in range(20)}
        assert len(others | {made}) == 21  # every request its own


def test_models_lists_manifests_without_large_tables(echo_client: Callable[..., Any]) -> None:
    with echo_client() as client:
        listing = client.get("/models").json()
        assert listing["defaults"] == {"echo": "echo@1.0.0"}
        assert listing["choices"] == {"echo": ["echo", "echo@1.0.0"]}
        assert listing["skipped"] == []
        (info,) = listing["models"]
        named = (info["name"], info["version"], info["task"], info["key"])
        assert named == ("echo", "1.0.0", "echo", "echo@1.0.0")
        assert info["default"] is info["default_version"] is True
        assert info["headline"] == {"metric": "none", "value": 0.0, "split": "none"}
        assert info["rss_mib"] is not None
        assert listing["worker_rss_mib"] > 0
        assert info["manifest"]["version"] == "1.0.0"
        assert set(info["manifest"]["artifacts"]) == {"onnx", "torchscript", "vocab"}
        assert info["device"] == "cpu"
        assert info["batching"]["enabled"] is True


def test_metrics_expose_the_named_series(echo_client: Callable[..., Any]) -> None:
    with echo_client() as client:
        client.post("/echo", json={"values": [[1.0], [2.0, 3.0]]})
        client.post("/echo", json={"values": "junk"})
        text = client.get("/metrics").text
    for series in (
        'lstm_requests_total{endpoint="/echo",method="POST",status="200"} 1.0',
        'lstm_requests_total{endpoint="/echo",method="POST",status="422"} 1.0',
        'lstm_errors_total{endpoint="/echo",kind="422"} 1.0',
        'lstm_request_latency_seconds_bucket{endpoint="/echo",le=',
        'lstm_batch_size_bucket{le="2.0",model="echo",version="1.0.0"}',
        "lstm_batch_padding_fraction_bucket{",
        'lstm_queue_depth{model="echo",version="1.0.0"} 0.0',
        "lstm_inference_seconds_count{",
        'lstm_items_total{model="echo",version="1.0.0"}',
        'lstm_model_requests_total{model="echo",status="200",version="1.0.0"} 1.0',
        'lstm_model_request_latency_seconds_count{model="echo",version="1.0.0"} 1.0',
        "lstm_ready 1.0",
    ):
        assert series in text, series


def test_openapi_docs_have_examples(echo_client: Callable[..., Any]) -> None:
    with echo_client() as client:
        assert client.get("/docs").status_code == 200
        assert client.get("/redoc").status_code == 200
        schema = client.get("/openapi.json").json()
        assert schema["components"]["schemas"]["EchoRequest"]["properties"]["values"]["examples"]


def test_body_over_limit_is_413_and_service_goes_on(echo_client: Callable[..., Any]) -> None:
    with echo_client(max_body_bytes=2048) as client:
        r = client.post("/echo", json={"values": [[1.0] * 2000]})
        assert r.status_code == 413
        assert r.json()["detail"][0]["ctx"]["limit"] == 2048
        # no content-length: the streamed body is counted as it arrives
        r = client.post("/echo", content=iter([b'{"values": [[' + b"1," * 3000 + b"1]]}"]))
        assert r.status_code == 413
        assert client.post("/echo", json={"values": [[1.0]]}).status_code == 200


def test_api_key_guards_everything_but_health_and_the_pages(echo_client: Callable[..., Any]) -> None:
    with echo_client(api_key="k3y") as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        # The docs and the playground hold no data; a browser cannot send the key to load them.
        for path in ("/", "/docs", "/redoc", "/openapi.json", "/static/playground.js"):
            assert client.get(path).status_code == 200, path
        for path in ("/models", "/metrics", "/staticx", "/docsx"):
            assert client.get(path).status_code == 401, path
        assert client.post("/echo", json={"values": [[1]]}, headers={"x-api-key": "wrong"}).status_code == 401
        assert client.post("/echo", json={"values": [[1]]}, headers={"x-api-key": "k3y"}).status_code == 200


def test_batch_error_is_500_with_request_id_and_others_are_fine(echo_client: Callable[..., Any]) -> None:
    with echo_client() as client:
        bad = client.post("/echo", json={"values": [[POISON]]}, headers={"x-request-id": "req-7"})
        assert bad.status_code == 500
        assert bad.json()["request_id"] == "req-7"
        assert client.post("/echo", json={"values": [[2.0]]}).json() == {"sums": [2.0]}


def test_timeout_is_504(echo_client: Callable[..., Any]) -> None:
    with echo_client(request_timeout_s=0.1) as client:
        r = client.post("/echo", json={"values": [[SLOW]]})
        assert r.status_code == 504
        assert "REQUEST_TIMEOUT_S" in r.json()["detail"]
        assert client.get("/readyz").status_code == 200


def test_full_queue_is_503_with_retry_after(echo_client: Callable[..., Any]) -> None:
    with echo_client(max_queue_size=2, max_batch_size=1) as client:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(client.post, "/echo", json={"values": [[SLOW]]}) for _ in range(4)]
            statuses = sorted(f.result().status_code for f in futures)
            rejected = [f.result() for f in futures if f.result().status_code == 503]
        assert statuses.count(200) >= 1, statuses
        assert statuses.count(503) >= 1, statuses
        assert rejected[0].headers["retry-after"] == "1"
        assert client.post("/echo", json={"values": [[1.0]]}).status_code == 200


def test_cors_is_off_by_default_and_configurable(echo_client: Callable[..., Any]) -> None:
    preflight = {"origin": "https://ui.example", "access-control-request-method": "POST"}
    with echo_client() as client:
        r = client.options("/echo", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    with echo_client(cors_origins="https://ui.example") as client:
        r = client.options("/echo", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://ui.example"
        other = client.options("/echo", headers={**preflight, "origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_secrets_never_reach_the_logs(echo_client: Callable[..., Any], capsys: Any) -> None:
    with echo_client(api_key="top-secret-key") as client:
        client.post("/echo", json={"values": [[1]]}, headers={"x-api-key": "top-secret-key"})
        client.post("/echo", json={"values": [[1]]}, headers={"x-api-key": "guess"})
    out = capsys.readouterr()
    assert "top-secret-key" not in out.out + out.err
    assert "guess" not in out.out + out.err
    assert '"status": 401' in out.out  # the access log did run


def test_cors_preflight_passes_with_api_key_on(echo_client: Callable[..., Any]) -> None:
    preflight = {"origin": "https://ui.example", "access-control-request-method": "POST"}
    with echo_client(cors_origins="https://ui.example", api_key="k") as client:
        r = client.options("/echo", headers={**preflight, "access-control-request-headers": "x-api-key"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://ui.example"
        assert (
            client.post("/echo", json={"values": [[1]]}, headers={"origin": "https://ui.example"}).status_code
            == 401
        )


def test_non_finite_and_huge_inputs_get_a_422_not_a_500(echo_client: Callable[..., Any]) -> None:
    with echo_client() as client:
        raw = '{"values": [[1.0, NaN], "' + "x" * 5000 + '", Infinity, "\\ud800"]}'
        r = client.post("/echo", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert len(r.content) < 5000  # the echoed input is shortened
        assert {tuple(d["loc"][:3]) for d in r.json()["detail"]} >= {("body", "values", 1)}
        assert client.post("/echo", json={"values": [[1.0]]}).status_code == 200


def test_request_path_never_leaves_the_event_loop_for_a_dependency() -> None:
    """FastAPI runs a plain `def` dependency in its thread pool: a thread hand-off per dependency
    per request. Every dependency of the shipped routes is a coroutine function."""
    import inspect

    from fastapi.dependencies.models import Dependant
    from fastapi.routing import APIRoute

    from app.core.settings import Settings
    from app.main import create_app

    def calls(dependant: Dependant) -> list[Any]:
        return [d.call for d in dependant.dependencies] + [
            c for d in dependant.dependencies for c in calls(d)
        ]

    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    # Included routers are kept whole in app.routes (FastAPI >= 0.16x), their routes inside.
    included = [r.original_router for r in app.routes if hasattr(r, "original_router")]
    everything = [*app.routes, *(x for router in included for x in router.routes)]
    routes = [r for r in everything if isinstance(r, APIRoute)]
    found = [c for r in routes for c in calls(r.dependant)]
    assert {r.path for r in routes} >= {"/sentiment", "/ner", "/forecast", "/readyz"}
    assert found, "the routes take dependencies"
    assert [c for c in found if not inspect.iscoroutinefunction(c)] == []


def test_startup_moves_the_loaded_objects_out_of_the_collector(echo_client: Callable[..., Any]) -> None:
    """Full GC passes over the loaded models held the GIL for ~100 ms each (p99 10x p50): after
    start-up they are frozen."""
    import gc

    with echo_client() as client:
        assert client.get("/readyz").status_code == 200
        assert gc.get_freeze_count() > 0
    gc.unfreeze()
