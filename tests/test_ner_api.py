"""POST /ner end to end: offsets, pre-tokenised input, validation (422) and the shipped bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.core.text import Token
from app.main import create_app
from app.ner.task import NerItem, NerPrediction, TokenEntity, assemble, join_tokens, split_pieces
from tests.ner_support import fixture_vocab, force_tag, tiny_tagger, write_tiny_bundle
from training.ner.data import read_conll

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models"
NER_ONLY = {"ner": "app.ner"}
LIMITS = {"max_items_per_request": 3, "max_text_chars": 200, "max_tokens_per_sequence": 6}

TEXTS = [
    "Zoë Saldaña (born 1978) met Émile in Zürich — twice!",
    "Paris, Paris and PARIS... again: Paris?",
    '東京 and 🙂 emoji 🙂 in São Paulo; "quoted" (parenthesised) U.S.-based co-op.',
]


@pytest.fixture(scope="module")
def forced_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle whose CRF tags every token S-PER, so every token is an entity."""
    model_dir = tmp_path_factory.mktemp("ner_forced")
    from tests.ner_support import FIXTURE

    model = tiny_tagger(fixture_vocab(read_conll(FIXTURE)))
    force_tag(model, "S-PER")
    write_tiny_bundle(model_dir, model)
    return model_dir


@pytest.fixture(scope="module")
def client(forced_dir: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, model_dir=forced_dir, models="ner", **LIMITS)  # type: ignore[call-arg]
    with TestClient(create_app(settings, task_packages=NER_ONLY)) as c:
        yield c


def post(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/ner", json=body)


def test_offsets_are_exact_substrings(client: TestClient) -> None:
    r = post(client, {"texts": TEXTS, "return_tags": True})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(TEXTS)
    for text, result in zip(TEXTS, results, strict=True):
        tokens = result["tokens"]
        assert tokens
        assert len(result["entities"]) == len(tokens)
        for tok in tokens:
            assert text[tok["start"] : tok["end"]] == tok["text"]
            assert tok["tag"] == "S-PER"
        for ent in result["entities"]:
            assert text[ent["start"] : ent["end"]] == ent["text"]
            assert ent["label"] == "PER"
            assert 0.99 <= ent["confidence"] <= 1.0
        starts = [e["start"] for e in result["entities"]]
        assert starts == sorted(set(starts))  # repeated words get their own offsets
    paris = [e for e in results[1]["entities"] if e["text"].lower() == "paris"]
    assert [e["start"] for e in paris] == [0, 7, 17, 33]
    assert any(t["text"] == "🙂" for t in results[2]["tokens"])


def test_pre_tokenised_offsets_index_the_space_joined_tokens(client: TestClient) -> None:
    tokens = ["Angela", "Merkel", "in", "Zürich", "🙂"]
    r = post(client, {"tokens": [tokens]})
    assert r.status_code == 200, r.text
    joined = " ".join(tokens)
    ents = r.json()["results"][0]["entities"]
    assert [e["text"] for e in ents] == tokens
    assert all(joined[e["start"] : e["end"]] == e["text"] for e in ents)
    assert "tokens" not in r.json()["results"][0]  # only with return_tags


def test_texts_longer_than_a_piece_are_split_and_reassembled(client: TestClient) -> None:
    text = "one two three four five six seven eight nine. Ten eleven!"  # > 6 tokens per piece
    r = post(client, {"texts": [text], "return_tags": True})
    assert r.status_code == 200, r.text
    toks = r.json()["results"][0]["tokens"]
    assert [t["text"] for t in toks] == text.replace(".", " .").replace("!", " !").split()
    assert all(text[t["start"] : t["end"]] == t["text"] for t in toks)


def test_multi_token_entity_spans_the_gap_between_tokens() -> None:
    source = "  New   York City is big"
    tokens = [Token("New", 2, 5), Token("York", 8, 12), Token("City", 13, 17), Token("is", 18, 20)]
    first = NerPrediction(["B-LOC", "E-LOC"], [TokenEntity(0, 2, "LOC", 0.9)])
    second = NerPrediction(["S-LOC", "O"], [TokenEntity(0, 1, "LOC", 0.8)])  # indices local to piece
    pieces = [
        NerItem(("New", "York"), 0, source, tuple(tokens[:2])),
        NerItem(("City", "is"), 0, source, tuple(tokens[2:])),
    ]
    result = assemble(list(zip(pieces, [first, second], strict=True)), True)
    assert [(e.text, e.start, e.end) for e in result.entities] == [("New   York", 2, 12), ("City", 13, 17)]
    assert result.tokens is not None
    assert [t.tag for t in result.tokens] == ["B-LOC", "E-LOC", "S-LOC", "O"]


def test_piece_splitting_and_joining() -> None:
    text, tokens = join_tokens(["a", "b", ".", "c", "d", "e", "f"])
    assert text == "a b . c d e f"
    assert tokens[3] == Token("c", 6, 7)
    assert split_pieces(tokens, 3) == [(0, 3), (3, 6), (6, 7)]
    assert split_pieces(tokens, 10) == [(0, 3), (3, 7)]


@pytest.mark.parametrize(
    ("body", "loc", "limit"),
    [
        ({"texts": ["a"], "tokens": [["a"]]}, ["body"], None),
        ({}, ["body"], None),
        ({"texts": []}, ["body", "texts"], None),
        ({"texts": ["a", "b", "c", "d"]}, ["body", "texts"], 3),
        ({"texts": ["fine", "   \n\t "]}, ["body", "texts", 1], None),
        ({"texts": [""]}, ["body", "texts", 0], None),
        ({"texts": ["x" * 201]}, ["body", "texts", 0], 200),
        ({"tokens": [["a"], []]}, ["body", "tokens", 1], None),
        ({"tokens": [["a", "b", "c", "d", "e", "f", "g"]]}, ["body", "tokens", 0], 6),
        ({"tokens": [["a", "", "c"]]}, ["body", "tokens", 0, 1], None),
        ({"tokens": [["a", " "]]}, ["body", "tokens", 0, 1], None),
    ],
)
def test_invalid_requests_get_422_naming_the_field(
    client: TestClient, body: dict[str, Any], loc: list[Any], limit: int | None
) -> None:
    r = post(client, body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == loc
    if limit is not None:
        assert detail["ctx"]["limit"] == limit
    # the service keeps serving after a rejected request
    ok = post(client, {"texts": ["Peter Blackburn"]})
    assert ok.status_code == 200
    assert len(ok.json()["results"][0]["entities"]) == 2


def test_schema_errors_are_422_too(client: TestClient) -> None:
    assert post(client, {"texts": "not a list"}).status_code == 422
    assert post(client, {"texts": ["a"], "unknown": 1}).status_code == 422


@pytest.mark.skipif(
    not (SHIPPED / "ner").is_dir(), reason="no shipped bundle under models/ner yet (python -m training.ner)"
)
@pytest.mark.parametrize("backend", ["onnx", "torchscript"])
def test_shipped_bundle_round_trip(backend: str) -> None:
    settings = Settings(_env_file=None, model_dir=SHIPPED, models="ner", backend=backend)  # type: ignore[call-arg]
    text = "Angela Merkel met Emmanuel Macron in Paris on Tuesday, said a spokesman for the European Union."
    with TestClient(create_app(settings, task_packages=NER_ONLY)) as c:
        r = c.post("/ner", json={"texts": [text, "EU rejects German call to boycott British lamb."]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == "ner"
        assert body["version"] == "1.0.0"
        found = {(e["text"], e["label"]) for e in body["results"][0]["entities"]}
        assert {("Angela Merkel", "PER"), ("Emmanuel Macron", "PER"), ("Paris", "LOC")} <= found
        assert ("European Union", "ORG") in found
        for e in body["results"][0]["entities"]:
            assert text[e["start"] : e["end"]] == e["text"]
            assert 0.0 < e["confidence"] <= 1.0
        second = {(e["text"], e["label"]) for e in body["results"][1]["entities"]}
        assert second == {("EU", "ORG"), ("German", "MISC"), ("British", "MISC")}
        models = next(m for m in c.get("/models").json()["models"] if m["name"] == "ner")["manifest"]
        assert "ablation" not in models["metrics"]
        assert models["headline"]["value"] >= 80.0
