"""What a newcomer reads when a request is refused, and what the OpenAPI document says: each
message in the API's own terms (no library internals), worded the same on every endpoint."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.bundle import read_manifest, resolve_bundle_dir
from app.core.settings import Settings
from app.core.text import VISIBLE_PATTERN, is_blank
from app.forecast.calendar import parse_frequency
from app.main import create_app

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
# Words from pandas' and Python's own exception texts that must never reach a client.
INTERNALS = ("Invalid frequency", "failed to parse", "KeyError", "ValueError", "You might want", "format=")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings(_env_file=None, model_dir=MODELS, log_level="warning")  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as c:
        yield c


def only_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    return dict(error)


def series(**fields: Any) -> dict[str, Any]:
    return {"series": [{"values": [float(v % 7) for v in range(30)], "horizon": 3, **fields}]}


def test_series_limit_is_plural_english(client: TestClient) -> None:
    body = {"series": series()["series"] * 65}
    assert only_error(client.post("/forecast", json=body))["msg"] == "at most 64 series per request; got 65"
    texts = client.post("/sentiment", json={"texts": ["ok"] * 65})
    assert only_error(texts)["msg"] == "at most 64 texts per request; got 65"


@pytest.mark.parametrize("frequency", ["XYZ", "5Q-FOO", "", "MS MS"])
def test_unknown_frequency_says_what_to_send(client: TestClient, frequency: str) -> None:
    error = only_error(client.post("/forecast", json=series(frequency=frequency)))
    assert error["loc"] == ["body", "series", 0, "frequency"]
    assert "pandas offset alias" in error["msg"]
    assert not [w for w in INTERNALS if w in error["msg"]], error["msg"]


@pytest.mark.parametrize(
    ("stamp", "words"),
    [
        ("notadate", "timestamp 29 ('notadate') is not an ISO 8601 date"),
        ("2400-01-01", "is outside the dates"),
        ("2020-02-30", "is not an ISO 8601 date"),
    ],
)
def test_bad_timestamp_is_named_without_pandas_advice(client: TestClient, stamp: str, words: str) -> None:
    stamps = [f"2020-01-{d:02d}" for d in range(1, 30)] + [stamp]
    error = only_error(client.post("/forecast", json=series(timestamps=stamps)))
    assert error["loc"] == ["body", "series", 0, "timestamps"]
    assert words in error["msg"]
    assert not [w for w in INTERNALS if w in error["msg"]], error["msg"]


def test_mixed_utc_offsets_are_refused_in_words(client: TestClient) -> None:
    stamps = [f"2020-01-{d:02d}T00:00:00" for d in range(1, 30)] + ["2020-01-30T00:00:00+01:00"]
    assert (
        "with and without a UTC offset"
        in only_error(client.post("/forecast", json=series(timestamps=stamps)))["msg"]
    )


def test_answered_frequency_is_an_alias_the_client_can_send_back(client: TestClient) -> None:
    # Irregular gaps (mostly a day): pandas infers no frequency, so the median gap is used.
    gaps = [1, 2, 1, 1, 3, 1, 2, 1, 1, 1] * 3
    stamps = [str(date.fromordinal(date(2020, 1, 1).toordinal() + sum(gaps[:i]))) for i in range(30)]
    r = client.post("/forecast", json=series(timestamps=stamps))
    assert r.status_code == 200, r.text
    frequency = r.json()["forecasts"][0]["frequency"]
    assert frequency == "D"
    parse_frequency(frequency)  # a real alias
    again = client.post("/forecast", json=series(frequency=frequency, timestamps=stamps))
    assert again.status_code == 200


@pytest.mark.parametrize("path", ["/sentiment", "/ner", "/forecast"])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_body_not_sent_as_json_is_415_saying_so(
    client: TestClient, path: str, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = client.post(path, content=b'{"texts": ["fine"]}', headers=headers)
    assert r.status_code == 415
    assert "Content-Type: application/json" in r.json()["detail"]
    assert (content_type or "has none") in r.json()["detail"]


@pytest.mark.parametrize("path", ["/sentiment", "/ner"])
def test_empty_texts_read_the_same_on_both_text_endpoints(client: TestClient, path: str) -> None:
    error = only_error(client.post(path, json={"texts": []}))
    assert error["loc"] == ["body", "texts"]
    assert error["msg"] == "texts must hold at least 1 text"
    assert (
        only_error(client.post("/forecast", json={"series": []}))["msg"]
        == "series must hold at least 1 series"
    )


@pytest.mark.parametrize("path", ["/sentiment", "/ner"])
@pytest.mark.parametrize("text", ["   ", "\u200b\u200b", "\x00\x01", "\ufeff \u2060\t", "\u200e\n"])
def test_invisible_texts_are_refused_like_whitespace(client: TestClient, path: str, text: str) -> None:
    error = only_error(client.post(path, json={"texts": ["a fine text", text]}))
    assert error["loc"] == ["body", "texts", 1]
    assert error["msg"].startswith("text is empty or whitespace only")
    tokens = only_error(client.post("/ner", json={"tokens": [["Paris", text]]}))
    assert tokens["loc"] == ["body", "tokens", 0, 1]
    assert client.post(path, json={"texts": ["Zürich\u200bis fine"]}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/sentiment", {"texts": ["good"], "return_attention": 0}, ["body", "return_attention"]),
        ("/sentiment", {"texts": ["good"], "return_attention": "true"}, ["body", "return_attention"]),
        ("/ner", {"texts": ["Paris"], "return_tags": 1}, ["body", "return_tags"]),
        ("/forecast", series(horizon="3"), ["body", "series", 0, "horizon"]),
        ("/forecast", {"series": [{"values": ["1"] * 30, "horizon": 3}]}, ["body", "series", 0, "values", 0]),
        (
            "/forecast",
            {"series": [{"values": [1.0] * 30, "horizon": 3}], "levels": ["80"]},
            ["body", "levels", 0],
        ),
        ("/sentiment", {"texts": [5]}, ["body", "texts", 0]),
    ],
)
def test_no_silent_type_coercion(client: TestClient, path: str, body: dict[str, Any], loc: list[Any]) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    # Long error lists end with a "... (N items)" note.
    assert loc in [e["loc"] for e in r.json()["detail"] if isinstance(e, dict)]


def test_body_that_is_not_utf8_is_a_documented_422(client: TestClient) -> None:
    r = client.post(
        "/sentiment", content=b'{"texts": ["caf\xe9"]}', headers={"content-type": "application/json"}
    )
    error = only_error(r)
    assert error["loc"] == ["body"]
    assert error["type"] == "json_invalid"
    assert "not valid UTF-8 JSON" in error["msg"]


def test_openapi_tells_the_truth(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    description = schema["info"]["description"]
    for name in ("sentiment", "ner", "forecast"):
        manifest = read_manifest(resolve_bundle_dir(MODELS, name))
        assert manifest.architecture["summary"] in description
        assert f"**{name}** {manifest.version}" in description
    metrics = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    for path in ("/sentiment", "/ner", "/forecast"):
        responses = schema["paths"][path]["post"]["responses"]
        assert {"200", "413", "415", "422", "503", "504"} <= set(responses), path
        assert "UTF-8" in responses["422"]["description"]
    texts = schema["components"]["schemas"]["SentimentRequest"]["properties"]["texts"]
    assert texts["minItems"] == 1
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")


def test_visible_pattern_is_is_blank_over_all_of_unicode() -> None:
    ranges: list[tuple[int, int]] = []
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF or not is_blank(chr(cp)):
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))

    def bmp(cp: int) -> str:
        return f"\\u{cp:04x}"

    # BMP characters as ranges of escapes, astral ones one by one (see VISIBLE_PATTERN: a range
    # between two astral characters does not compile in JavaScript without the `u` flag).
    expected = (
        "[^"
        + "".join(bmp(a) if a == b else f"{bmp(a)}-{bmp(b)}" for a, b in ranges if b <= 0xFFFF)
        + "".join(chr(cp) for a, b in ranges if a > 0xFFFF for cp in range(a, b + 1))
        + "]"
    )
    assert expected == VISIBLE_PATTERN
    visible = re.compile(VISIBLE_PATTERN)
    for text in ["", " \t", "\u200b", "a", "\u200ba", "\x00", "\U000e0001", "Zürich", "東京"]:
        assert (visible.search(text) is None) == is_blank(text), repr(text)


def test_readme_names_the_real_fields_and_limits() -> None:
    """The README's request notes use the names the code uses: every request field, and the
    forecast bundle fields (min_window, horizon_max) behind the limits it states."""
    from app.forecast.bundle import ForecastSection
    from app.forecast.schemas import ForecastRequest, SeriesIn
    from app.ner.schemas import NerRequest
    from app.sentiment.schemas import SentimentRequest

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for model in (SentimentRequest, NerRequest, ForecastRequest, SeriesIn):
        for field in model.model_fields:
            assert f"`{field}`" in readme, f"README does not mention {model.__name__}.{field}"
    for field in ("min_window", "horizon_max"):
        assert field in ForecastSection.model_fields
        assert f"`{field}`" in readme
    assert "max_horizon" not in readme  # the name the README once used, which no code has
    assert "English text only" in readme


@pytest.mark.parametrize("body", [{"texts": ["Paris"], "tokens": [["Paris"]]}, {}, {"return_tags": True}])
def test_ner_wants_exactly_one_of_texts_or_tokens(client: TestClient, body: dict[str, Any]) -> None:
    # pydantic v2's name for a rule the model states in code, as everywhere else in the API (not
    # v1's dotted `value_error.exclusive`).
    error = only_error(client.post("/ner", json=body))
    assert error == {"loc": ["body"], "msg": "give exactly one of `texts` or `tokens`", "type": "value_error"}
