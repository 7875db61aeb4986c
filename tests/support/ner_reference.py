"""Test-only inverses and by-products of the served NER code, kept out of the served package:
they check it (round trips, marginals that sum to one) but no request ever needs them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.ner.crf_decode import CrfParams, forward_backward
from app.ner.tags import Span


def token_marginals(emissions: np.ndarray, lengths: np.ndarray, crf: CrfParams) -> np.ndarray:
    """P(tag at t = j | sentence), [batch, time, tags]; padded steps are zero."""
    alpha, beta, log_z = forward_backward(emissions, lengths, crf)
    probs = np.exp(alpha + beta - log_z[:, None, None])
    valid = np.arange(np.asarray(emissions).shape[1])[None, :] < np.asarray(lengths)[:, None]
    return np.where(valid[:, :, None], probs, 0.0)


def spans_to_iob1(spans: Sequence[Span], length: int) -> list[str]:
    """IOB1: B- only where a chunk directly follows another chunk of the same type."""
    tags = ["O"] * length
    previous_end, previous_kind = -1, ""
    for start, end, kind in sorted(spans):
        for i in range(start, end):
            tags[i] = f"I-{kind}"
        if start == previous_end and kind == previous_kind:
            tags[start] = f"B-{kind}"
        previous_end, previous_kind = end, kind
    return tags
