"""Entity-level scoring on a hand-checked example (numbers worked out by hand, conlleval rules)."""

from __future__ import annotations

import pytest

from app.ner.tags import iob1_spans
from training.ner.conlleval import score_spans


def test_hand_example() -> None:
    gold_tags = [
        ["I-PER", "I-PER", "O", "I-LOC", "O", "I-ORG"],
        ["I-MISC", "O", "I-LOC", "B-LOC"],
    ]
    pred_tags = [
        ["I-PER", "I-PER", "O", "I-ORG", "O", "I-ORG"],  # PER right, LOC typed ORG, ORG right
        ["I-MISC", "O", "I-LOC", "I-LOC"],  # MISC right, two LOCs merged into one (wrong span)
    ]
    gold = [iob1_spans(t) for t in gold_tags]
    pred = [iob1_spans(t) for t in pred_tags]
    result = score_spans(gold, pred)
    overall = result["overall"]
    # gold 6 entities, predicted 5, correct 3 (PER, ORG, MISC)
    assert (overall["support"], overall["predicted"]) == (6, 5)
    assert overall["precision"] == pytest.approx(60.0)
    assert overall["recall"] == pytest.approx(50.0)
    assert overall["f1"] == pytest.approx(54.55)
    per = result["per_type"]
    assert per["PER"]["f1"] == 100.0
    assert (per["LOC"]["precision"], per["LOC"]["recall"], per["LOC"]["f1"]) == (0.0, 0.0, 0.0)
    assert per["ORG"]["precision"] == 50.0
    assert per["ORG"]["recall"] == 100.0
    assert per["ORG"]["f1"] == pytest.approx(66.67)


def test_no_predictions_scores_zero_without_dividing_by_zero() -> None:
    result = score_spans([[(0, 1, "PER")]], [[]])
    assert result["overall"]["f1"] == 0.0
    assert result["overall"]["predicted"] == 0


def test_sentence_counts_must_match() -> None:
    with pytest.raises(ValueError, match="gold sentences but"):
        score_spans([[]], [])
