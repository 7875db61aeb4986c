"""Hostile input against the shipped models: property-based fuzzing in-process (hypothesis) and
schemathesis against the live OpenAPI schema of a real server. No input may cause a 5xx, and the
service must still be ready afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.bundle import discover_tasks
from app.core.settings import Settings
from app.main import create_app
from tests.support.server import running_server

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "models"
SHIPPED = discover_tasks(MODEL_DIR)
pytestmark = pytest.mark.skipif(
    set(SHIPPED) != {"sentiment", "ner", "forecast"},
    reason=f"needs the three shipped bundles under models/ (found {SHIPPED})",
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SPECIAL = [
    "",
    " ",
    "\t\n\r",
    "\x00",
    "a\x00b",
    "\u202eRTL override\u202c",
    "مرحبا بالعالم Paris",
    "e\u0301\u0302\u0303",
    "👩‍👩‍👧‍👦🇫🇷🏳️‍🌈",
    "\ud800 lone surrogate",
    "\uffff\ufffe",
    "<br /><br />",
    "A" * 50_000,
    "word " * 5000,
    '{}[]"\\',
]
texts = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Mn", "Zs", "So"]), max_size=50),
)
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
junk = st.recursive(
    leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(2**64), max_value=2**64)

BODIES = {
    "/sentiment": st.one_of(
        st.fixed_dictionaries({"texts": st.lists(texts, max_size=6)}),
        st.fixed_dictionaries({"texts": junk, "return_attention": junk}),
        junk,
    ),
    "/ner": st.one_of(
        st.fixed_dictionaries({"texts": st.lists(texts, max_size=6)}),
        st.fixed_dictionaries({"tokens": st.lists(st.lists(texts, max_size=20), max_size=4)}),
        st.fixed_dictionaries({"texts": junk, "tokens": junk}),
        junk,
    ),
    "/forecast": st.one_of(
        st.fixed_dictionaries(
            {
                "series": st.lists(
                    st.fixed_dictionaries(
                        {"values": st.lists(numbers, max_size=300), "horizon": numbers | junk},
                        optional={"frequency": texts, "timestamps": junk},
                    ),
                    max_size=3,
                ),
            },
            optional={"levels": st.lists(numbers, max_size=4) | junk},
        ),
        junk,
    ),
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(_env_file=None, model_dir=MODEL_DIR))  # type: ignore[call-arg]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def post_raw(client: TestClient, path: str, body: Any) -> int:
    # json.dumps writes NaN/Infinity literals, which clients do send
    raw = json.dumps(body, allow_nan=True)
    return client.post(path, content=raw, headers={"content-type": "application/json"}).status_code


@pytest.mark.parametrize("path", sorted(BODIES))
def test_no_input_causes_a_server_error(client: TestClient, path: str) -> None:
    @FUZZ
    @given(body=BODIES[path])
    def check(body: Any) -> None:
        status = post_raw(client, path, body)
        assert status in {200, 413, 422}, (status, body)

    check()
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("path", sorted(BODIES))
def test_malformed_bodies_are_client_errors(client: TestClient, path: str) -> None:
    for raw in (b"", b"{", b"null", b"[]", b"\xff\xfe", b'{"texts": [NaN]}', b"x" * 10):
        r = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, (raw, r.status_code, r.text)
    assert client.get("/readyz").status_code == 200


def test_schemathesis_against_the_live_schema(tmp_path: Path) -> None:
    """Every schemathesis check (not only "no 5xx"), 150 examples per operation
    (tests/schemathesis.toml): what the OpenAPI document allows is accepted, what it forbids is
    refused, and every answer's status, content type and body are the documented ones."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
    }
    with running_server({"MODEL_DIR": str(MODEL_DIR), "WORKERS": "1"}) as (proc, url):
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file", str(ROOT / "tests" / "schemathesis.toml"),
                "run", f"{url}/openapi.json",
                "--seed", "1",
                "--report-dir", str(tmp_path),
            ],
            capture_output=True, text=True, timeout=1200, cwd=tmp_path, env=env,
        )  # fmt: skip
        assert proc.poll() is None, "the server must survive the run"
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/sentiment", {"texts": ["fine", "bad \ud800 text"]}, ["body", "texts", 1]),
        ("/ner", {"texts": ["\udfff"]}, ["body", "texts", 0]),
        ("/ner", {"tokens": [["ok", "\ud83d"]]}, ["body", "tokens", 0, 1]),
    ],
)
def test_lone_surrogates_are_a_422_naming_the_field(
    client: TestClient, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    r = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == loc
    assert "lone surrogate" in error["msg"]
    assert client.post(path, json={"texts": ["Paris is lovely."]}).status_code == 200
