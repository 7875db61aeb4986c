"""The NER tokenizer cuts raw text the way CoNLL-2003 did (the model learnt from those tokens)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.text import tokenize, tokenize_conll
from bench.ner_tokens import boundary_mismatches, detokenise
from training.ner.data import Sentence

FIXTURE = Path(__file__).parent / "fixtures" / "ner" / "conll_tokens.txt"


def fixture_sentences() -> list[list[str]]:
    sentences: list[list[str]] = [[]]
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        if line.strip():
            sentences[-1].append(line.strip())
        elif sentences[-1]:
            sentences.append([])
    return [s for s in sentences if s]


SENTENCES = fixture_sentences()


@pytest.mark.parametrize("words", SENTENCES, ids=[" ".join(s)[:40] for s in SENTENCES])
def test_conll_sentences_come_back_as_conll_tokens(words: list[str]) -> None:
    text, offsets = detokenise(words)
    tokens = tokenize_conll(text)
    assert [t.text for t in tokens] == words
    assert [(t.start, t.end) for t in tokens] == offsets


def test_the_fixture_is_one_that_spacy_defaults_get_wrong() -> None:
    # Otherwise the test above would prove nothing about the CoNLL rules.
    sentences = [Sentence(words, ["O"] * len(words)) for words in SENTENCES]
    assert boundary_mismatches(sentences, tokenize)[0] >= len(SENTENCES) // 2
    assert boundary_mismatches(sentences, tokenize_conll)[0] == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hewlett-Packard said on Monday", ["Hewlett-Packard", "said", "on", "Monday"]),
        ("a Rolls-Royce engine", ["a", "Rolls-Royce", "engine"]),
        ("Coca-Cola Europacific Partners", ["Coca-Cola", "Europacific", "Partners"]),
        ("They won 2-1. Then it rained.", ["They", "won", "2-1", ".", "Then", "it", "rained", "."]),
        ("She cannot come.", ["She", "cannot", "come", "."]),
        ("Paris--London, then Rome—Milan", ["Paris", "--", "London", ",", "then", "Rome", "—", "Milan"]),
        ("He said: (1996-12-06)", ["He", "said", ":", "(", "1996-12-06", ")"]),
        ("1. Ronnback\n2. Ivanov", ["1.", "Ronnback", "2.", "Ivanov"]),
        ("The total was 12. Next", ["The", "total", "was", "12", ".", "Next"]),
    ],
)
def test_conll_rules(text: str, expected: list[str]) -> None:
    assert [t.text for t in tokenize_conll(text)] == expected


def test_sentiment_tokens_are_unchanged() -> None:
    # The sentiment vocabulary was built with spaCy's defaults; only NER uses the CoNLL rules.
    assert [t.text for t in tokenize("Hewlett-Packard")] == ["Hewlett", "-", "Packard"]


@given(st.text(alphabet=st.sampled_from(list("ab1-. \n:)(\"'—")), max_size=40))
def test_offsets_point_into_the_text(text: str) -> None:
    tokens = tokenize_conll(text)
    for t in tokens:
        assert text[t.start : t.end] == t.text
        assert t.text.strip()
    assert [t.start for t in tokens] == sorted(t.start for t in tokens)


def test_ner_endpoint_keeps_hyphenated_names_whole(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from app.core.settings import Settings
    from app.main import create_app
    from tests.ner_support import FIXTURE, fixture_vocab, force_tag, tiny_tagger, write_tiny_bundle
    from training.ner.data import read_conll

    model = tiny_tagger(fixture_vocab(read_conll(FIXTURE)))
    force_tag(model, "S-PER")  # every token is an entity: the entities are the tokens
    write_tiny_bundle(tmp_path, model)
    settings = Settings(_env_file=None, model_dir=tmp_path, models="ner")  # type: ignore[call-arg]
    text = "Hewlett-Packard, Rolls-Royce and Coca-Cola Europacific won 2-1."
    with TestClient(create_app(settings, task_packages={"ner": "app.ner"})) as client:
        r = client.post("/ner", json={"texts": [text]})
    assert r.status_code == 200, r.text
    entities = [e["text"] for e in r.json()["results"][0]["entities"]]
    expected = ["Hewlett-Packard", ",", "Rolls-Royce", "and", "Coca-Cola", "Europacific", "won", "2-1", "."]
    assert entities == expected
