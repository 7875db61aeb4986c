"""Entity-level scoring as `conlleval` computes it: a predicted entity counts only when its span
and its type both match a gold entity exactly; precision, recall and F1 are micro-averaged over
all entities (overall) or over the entities of one type (per type). Figures are percentages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from app.ner.tags import Span


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    p = 100.0 * correct / predicted if predicted else 0.0
    r = 100.0 * correct / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 2), "recall": round(r, 2), "f1": round(f, 2)}


def score_spans(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]]) -> dict[str, object]:
    """`gold[i]` and `predicted[i]` are the spans of sentence i."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_correct: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        gs, ps = set(g), set(p)
        n_gold.update(s[2] for s in gs)
        n_pred.update(s[2] for s in ps)
        n_correct.update(s[2] for s in gs & ps)
    types = sorted(set(n_gold) | set(n_pred))
    overall = _prf(sum(n_correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    per_type = {
        t: {**_prf(n_correct[t], n_pred[t], n_gold[t]), "support": n_gold[t], "predicted": n_pred[t]}
        for t in types
    }
    return {
        "overall": {**overall, "support": sum(n_gold.values()), "predicted": sum(n_pred.values())},
        "per_type": per_type,
    }
