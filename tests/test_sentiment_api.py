"""POST /sentiment over HTTP: round trips, batch independence, and 422s that name the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.main import create_app
from tests.sentiment_support import write_tiny_bundle

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "sentiment"
ONLY_SENTIMENT = {"sentiment": "app.sentiment"}
LIMITS = {"max_items_per_request": 3, "max_text_chars": 200}


def _client(model_dir: Path, **overrides: Any) -> TestClient:
    settings = Settings(_env_file=None, model_dir=model_dir, models="sentiment", **overrides)  # type: ignore[call-arg]
    return TestClient(create_app(settings, task_packages=ONLY_SENTIMENT))


@pytest.fixture(scope="module")
def attention_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    model_dir = tmp_path_factory.mktemp("attn")
    write_tiny_bundle(model_dir, cell="gru", head="attention", max_length=12)
    with _client(model_dir, **LIMITS) as client:
        yield client


@pytest.fixture(scope="module")
def final_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    model_dir = tmp_path_factory.mktemp("final")
    write_tiny_bundle(model_dir, cell="lstm", head="final", max_length=12)
    with _client(model_dir, **LIMITS) as client:
        yield client


SHORT = "A great film."
LONG = "The plot was boring and the acting was bad, not good at all. " * 2


def test_round_trip_with_attention(attention_client: TestClient) -> None:
    r = attention_client.post("/sentiment", json={"texts": [SHORT, LONG], "return_attention": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "sentiment"
    assert body["max_length"] == 12
    short, long = body["predictions"]
    assert set(short["probabilities"]) == {"negative", "positive"}
    assert short["label"] == max(short["probabilities"], key=short["probabilities"].get)
    assert abs(sum(short["probabilities"].values()) - 1) < 1e-5
    assert short["tokens"] == 4
    assert short["truncated"] is False
    assert [w["token"] for w in short["attention"]] == ["A", "great", "film", "."]
    assert abs(sum(w["weight"] for w in short["attention"]) - 1) < 1e-5
    assert long["tokens"] == 30
    assert long["truncated"] is True
    assert len(long["attention"]) == 12
    assert [w["token"] for w in long["attention"]][:3] == ["The", "plot", "was"]  # head kept


def test_text_gets_same_probabilities_alone_and_batched(attention_client: TestClient) -> None:
    alone = attention_client.post("/sentiment", json={"texts": [SHORT]}).json()["predictions"][0]
    batched = attention_client.post("/sentiment", json={"texts": [LONG, SHORT, LONG]}).json()["predictions"][
        1
    ]
    for label, p in alone["probabilities"].items():
        assert batched["probabilities"][label] == pytest.approx(p, abs=1e-5)
    assert alone["attention"] is None  # not asked


def _error(r: Any) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    detail: dict[str, Any] = r.json()["detail"][0]
    return detail


@pytest.mark.parametrize(
    ("payload", "loc", "needle"),
    [
        ({"texts": [SHORT, "   \n\t"]}, ["body", "texts", 1], "empty"),
        ({"texts": [""]}, ["body", "texts", 0], "empty"),
        ({"texts": [SHORT] * 4}, ["body", "texts"], "at most 3"),
        ({"texts": ["x" * 201]}, ["body", "texts", 0], "200"),
        ({"texts": ["<br /><br />"]}, ["body", "texts", 0], "no tokens"),
        ({"texts": []}, ["body", "texts"], "at least 1"),
        ({"text": SHORT}, ["body", "texts"], "required"),
    ],
)
def test_invalid_requests_name_the_field(
    attention_client: TestClient, payload: dict[str, Any], loc: list[Any], needle: str
) -> None:
    err = _error(attention_client.post("/sentiment", json=payload))
    assert err["loc"] == loc
    assert needle in err["msg"].lower()
    # the service keeps serving after a rejected request
    assert attention_client.post("/sentiment", json={"texts": [SHORT]}).status_code == 200


def test_attention_requested_from_a_model_without_it(final_client: TestClient) -> None:
    err = _error(final_client.post("/sentiment", json={"texts": [SHORT], "return_attention": True}))
    assert err["loc"] == ["body", "return_attention"]
    assert "no attention" in err["msg"]
    ok = final_client.post("/sentiment", json={"texts": [SHORT, LONG]})
    assert ok.status_code == 200
    assert ok.json()["predictions"][0]["attention"] is None


@pytest.mark.skipif(
    not any(SHIPPED.glob("*/manifest.json")),
    reason=f"no shipped bundle under {SHIPPED} (train it with `python -m training.sentiment`)",
)
def test_shipped_bundle_round_trip() -> None:
    settings = Settings(_env_file=None, model_dir=ROOT / "models", models="sentiment")  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/sentiment",
            json={
                "texts": [
                    "One of the best films I have ever seen. Brilliant acting, a moving story, and a "
                    "wonderful score. I loved every minute and will watch it again.",
                    "Terrible. The worst movie I have seen in years: boring, stupid and badly acted. "
                    "A complete waste of time and money; avoid it.",
                ]
            },
        )
        assert r.status_code == 200, r.text
        labels = [p["label"] for p in r.json()["predictions"]]
        assert labels == ["positive", "negative"]
        models = next(m for m in client.get("/models").json()["models"] if m["name"] == "sentiment")[
            "manifest"
        ]
        assert "ablation" not in models["metrics"]
        assert models["headline"]["metric"] == "accuracy"


def test_openapi_documents_the_request_example(attention_client: TestClient) -> None:
    schema = attention_client.get("/openapi.json").json()["components"]["schemas"]["SentimentRequest"]
    assert schema["examples"][0]["texts"]
    assert "422" in schema["properties"]["return_attention"]["description"]
