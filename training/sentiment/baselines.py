"""The baselines every run scores on its own split, so the report can say whether the LSTM earns
its cost: the majority class, and TF-IDF n-grams + logistic regression (scikit-learn)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from training.sentiment.train import classification_metrics

log = logging.getLogger(__name__)

Tokens = Sequence[Sequence[str]]


def majority(
    train_y: Sequence[int], splits: dict[str, Sequence[int]], names: Sequence[str]
) -> dict[str, Any]:
    """Always the most frequent training label (ties: the first in label order)."""
    counts = np.bincount(np.asarray(train_y), minlength=len(names))
    top = int(counts.argmax())
    out: dict[str, Any] = {"name": "majority class", "predicts": names[top]}
    for split, y in splits.items():
        probs = np.zeros((len(y), len(names)))
        probs[:, top] = 1.0
        out[split] = classification_metrics(y, probs, names)
    return out


def _identity(tokens: Sequence[str]) -> Sequence[str]:
    return tokens


def tfidf_logreg(
    train_tokens: Tokens,
    train_y: Sequence[int],
    dev_tokens: Tokens,
    dev_y: Sequence[int],
    names: Sequence[str],
    test: tuple[Tokens, Sequence[int]] | None = None,
    balanced: bool = False,
    select: str = "accuracy",
    grid: Sequence[float] = (0.25, 1.0, 4.0, 16.0),
    seed: int = 13,
) -> dict[str, Any]:
    """Word uni- and bigram TF-IDF (the classifier's own tokens) + logistic regression, its
    inverse regularisation C chosen on dev from `grid`; the chosen model scores dev and test."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    started = time.time()
    vectorizer = TfidfVectorizer(
        analyzer="word",
        tokenizer=_identity,
        preprocessor=_identity,
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, 2),
        min_df=2 if len(train_tokens) > 5000 else 1,
        sublinear_tf=True,
    )
    x_train = vectorizer.fit_transform(train_tokens)
    x_dev = vectorizer.transform(dev_tokens)
    tried = []
    best: tuple[float, Any, dict[str, Any]] | None = None
    for c in grid:
        model = LogisticRegression(
            C=c, max_iter=2000, class_weight="balanced" if balanced else None, random_state=seed
        )
        model.fit(x_train, train_y)
        dev = classification_metrics(dev_y, _full_probs(model, x_dev, len(names)), names)
        tried.append({"C": c, "dev_accuracy": dev["accuracy"], "dev_macro_f1": dev["macro_f1"]})
        log.info("tfidf+logreg C=%g: dev %s", c, tried[-1])
        if best is None or dev[select] > best[0]:
            best = (dev[select], model, dev)
    assert best is not None
    _, model, dev = best
    out: dict[str, Any] = {
        "name": "TF-IDF + logistic regression",
        "features": f"word 1-2-grams of the classifier's tokens, {x_train.shape[1]:,} features, sublinear tf",
        "C": float(model.C),
        "class_weight": "balanced" if balanced else None,
        "grid": tried,
        "selection": f"dev {select}",
        "dev": dev,
    }
    if test is not None:
        out["test"] = classification_metrics(
            test[1], _full_probs(model, vectorizer.transform(test[0]), len(names)), names
        )
    out["seconds"] = round(time.time() - started, 1)
    return out


def _full_probs(model: Any, x: Any, n_classes: int) -> np.ndarray:
    """predict_proba over every class, also ones absent from this fit (columns are `classes_`)."""
    probs = np.zeros((x.shape[0], n_classes))
    probs[:, model.classes_] = model.predict_proba(x)
    return probs
