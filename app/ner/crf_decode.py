"""Linear-chain CRF inference in numpy: Viterbi, forward-backward and span marginals.

This is the only decoder: both backends (and training's evaluation) feed their emission scores
here, so a served prediction is decoded exactly as the reported scores were. Everything is
vectorised over the batch with a `[batch, time]` mask; padded steps carry the state through
unchanged, so a sentence decodes the same alone or inside a padded batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CrfParams:
    transitions: np.ndarray  # [from_tag, to_tag]
    start: np.ndarray  # [tag]
    end: np.ndarray  # [tag]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CrfParams:
        return cls(
            transitions=np.asarray(data["transitions"], dtype=np.float64),
            start=np.asarray(data["start_transitions"], dtype=np.float64),
            end=np.asarray(data["end_transitions"], dtype=np.float64),
        )

    def to_json(self, tags: list[str]) -> dict[str, Any]:
        return {
            "tags": tags,
            "transitions": self.transitions.tolist(),
            "start_transitions": self.start.tolist(),
            "end_transitions": self.end.tolist(),
        }


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    out: np.ndarray = np.squeeze(peak, axis=axis) + np.log(np.sum(np.exp(x - peak), axis=axis))
    return out


def _mask(emissions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    steps = np.arange(emissions.shape[1])
    return steps[None, :] < np.asarray(lengths)[:, None]


def viterbi(emissions: np.ndarray, lengths: np.ndarray, crf: CrfParams) -> list[list[int]]:
    """Best tag path per sentence. `emissions` [batch, time, tags]; `lengths` [batch] >= 1."""
    em = np.asarray(emissions, dtype=np.float64)
    batch, time, _ = em.shape
    mask = _mask(em, lengths)
    score = crf.start[None, :] + em[:, 0]
    history = np.zeros((max(time - 1, 0), batch, em.shape[2]), dtype=np.int64)
    for t in range(1, time):
        # candidates[b, i, j]: best path ending in i at t-1, then moving to j at t
        candidates = score[:, :, None] + crf.transitions[None, :, :] + em[:, t, None, :]
        best = candidates.argmax(axis=1)
        history[t - 1] = best
        score = np.where(mask[:, t, None], candidates.max(axis=1), score)
    score = score + crf.end[None, :]
    last = score.argmax(axis=1)
    paths: list[list[int]] = []
    for b in range(batch):
        n = int(lengths[b])
        tag = int(last[b])
        path = [tag]
        for t in range(n - 2, -1, -1):
            tag = int(history[t, b, tag])
            path.append(tag)
        paths.append(path[::-1])
    return paths


def forward_backward(
    emissions: np.ndarray, lengths: np.ndarray, crf: CrfParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log alphas and betas [batch, time, tags] and log-partition [batch].

    alpha[b, t, j]: log-sum of the scores of prefixes ending in tag j at t (start, transitions
    and emissions up to t). beta[b, t, j]: log-sum of the suffix scores after t given tag j at t
    (transitions, emissions after t, end). Steps past a sentence's length are not meaningful."""
    em = np.asarray(emissions, dtype=np.float64)
    batch, time, tags = em.shape
    lengths = np.asarray(lengths)
    mask = _mask(em, lengths)
    alpha = np.zeros((batch, time, tags))
    alpha[:, 0] = crf.start[None, :] + em[:, 0]
    for t in range(1, time):
        step = _logsumexp(alpha[:, t - 1, :, None] + crf.transitions[None], axis=1) + em[:, t]
        alpha[:, t] = np.where(mask[:, t, None], step, alpha[:, t - 1])
    last = alpha[np.arange(batch), lengths - 1]
    log_z = _logsumexp(last + crf.end[None, :], axis=1)
    beta = np.zeros((batch, time, tags))
    is_last = np.arange(time)[None, :] == (lengths - 1)[:, None]
    beta[:, time - 1] = np.where(is_last[:, time - 1, None], crf.end[None, :], 0.0)
    for t in range(time - 2, -1, -1):
        step = _logsumexp(crf.transitions[None] + (em[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        beta[:, t] = np.where(is_last[:, t, None], crf.end[None, :], step)
    return alpha, beta, log_z


def span_probability(
    emissions: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    log_z: float,
    crf: CrfParams,
    start: int,
    tags: list[int],
) -> float:
    """P(tags[start : start+len(tags)] == tags | sentence) for one sentence ([time, tags] arrays):
    the probability mass of every full path that labels exactly this span this way."""
    end = start + len(tags) - 1
    score = alpha[start, tags[0]] + beta[end, tags[-1]]
    for k in range(1, len(tags)):
        score += crf.transitions[tags[k - 1], tags[k]] + emissions[start + k, tags[k]]
    return float(np.exp(min(0.0, score - log_z)))
