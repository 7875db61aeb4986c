"""IOB1 (CoNLL files) -> BIOES (training) -> spans (serving), on real CoNLL-2003 lines."""

from __future__ import annotations

from pathlib import Path

from app.ner.tags import bioes_spans, bioes_tagset, iob1_spans, iob1_to_bioes
from tests.support.ner_reference import spans_to_iob1
from training.ner.data import read_conll

FIXTURE = Path(__file__).parent / "fixtures" / "ner" / "conll_sample.txt"


def test_reader_drops_docstart_and_splits_sentences() -> None:
    sentences = read_conll(FIXTURE)
    assert [len(s.words) for s in sentences] == [9, 2, 30]
    assert sentences[0].words[:3] == ["EU", "rejects", "German"]
    assert sentences[0].tags[:3] == ["I-ORG", "O", "I-MISC"]
    assert all("-DOCSTART-" not in s.words for s in sentences)


def test_round_trip_on_real_lines() -> None:
    for s in read_conll(FIXTURE):
        bioes = iob1_to_bioes(s.tags)
        assert bioes_spans(bioes) == iob1_spans(s.tags)
        assert spans_to_iob1(bioes_spans(bioes), len(s.tags)) == s.tags


def test_iob1_b_tag_separates_adjacent_entities_of_one_type() -> None:
    s = read_conll(FIXTURE)[2]
    i = s.words.index("Israel")
    assert s.tags[i - 2 : i + 1] == ["I-LOC", "I-LOC", "B-LOC"]  # "Golan Heights" then "Israel"
    spans = iob1_spans(s.tags)
    assert (i - 2, i, "LOC") in spans
    assert (i, i + 1, "LOC") in spans
    bioes = iob1_to_bioes(s.tags)
    assert bioes[i - 2 : i + 1] == ["B-LOC", "E-LOC", "S-LOC"]


def test_first_sentence_in_bioes() -> None:
    s = read_conll(FIXTURE)[0]
    assert iob1_to_bioes(s.tags) == ["S-ORG", "O", "S-MISC", "O", "O", "O", "S-MISC", "O", "O"]
    assert iob1_to_bioes(read_conll(FIXTURE)[1].tags) == ["B-PER", "E-PER"]


def test_ill_formed_bioes_is_read_like_conlleval() -> None:
    # I-/E- without a B- still open a chunk; a type change closes one; S- stands alone.
    assert bioes_spans(["I-PER", "E-PER", "O"]) == [(0, 2, "PER")]
    assert bioes_spans(["B-PER", "I-ORG", "E-ORG"]) == [(0, 1, "PER"), (1, 3, "ORG")]
    assert bioes_spans(["B-LOC", "S-LOC", "B-LOC"]) == [(0, 1, "LOC"), (1, 2, "LOC"), (2, 3, "LOC")]
    assert bioes_spans(["O", "O"]) == []


def test_tagset_puts_o_first() -> None:
    tags = bioes_tagset(["PER", "LOC"])
    assert tags[0] == "O"
    assert len(tags) == 9
    assert "S-PER" in tags
    assert "E-LOC" in tags
