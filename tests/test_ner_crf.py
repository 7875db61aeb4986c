"""The CRF (torch, training) and its numpy twin (serving) against brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from app.ner.crf_decode import forward_backward, span_probability, viterbi
from tests.support.ner_reference import token_marginals
from training.ner.crf import CRF

NUM_TAGS = 3
LENGTHS = [4, 1, 3]


@pytest.fixture
def case() -> tuple[CRF, torch.Tensor, torch.Tensor]:
    torch.manual_seed(7)
    crf = CRF(NUM_TAGS)
    with torch.no_grad():  # spread the scores so the best path is not a near tie
        for p in crf.parameters():
            p.normal_(0.0, 1.0)
    emissions = torch.randn(len(LENGTHS), max(LENGTHS), NUM_TAGS) * 2
    lengths = torch.tensor(LENGTHS)
    return crf, emissions, lengths


def enumerate_paths(crf: CRF, em: torch.Tensor, n: int) -> dict[tuple[int, ...], float]:
    """Score of every tag path of a single sentence, straight from the definition."""
    t, s, e = (p.detach().double() for p in (crf.transitions, crf.start_transitions, crf.end_transitions))
    em = em.double()
    scores = {}
    for path in itertools.product(range(NUM_TAGS), repeat=n):
        score = s[path[0]] + em[0, path[0]] + e[path[-1]]
        for i in range(1, n):
            score = score + t[path[i - 1], path[i]] + em[i, path[i]]
        scores[path] = float(score)
    return scores


def mask_of(lengths: torch.Tensor, time: int) -> torch.Tensor:
    return torch.arange(time).unsqueeze(0) < lengths.unsqueeze(1)


def test_log_partition_and_best_path_match_brute_force(case: tuple[CRF, torch.Tensor, torch.Tensor]) -> None:
    crf, emissions, lengths = case
    mask = mask_of(lengths, emissions.size(1))
    log_z = crf.log_partition(emissions, mask).detach().numpy()
    torch_paths = crf.decode(emissions, mask)
    params = crf.params()
    _, _, np_log_z = forward_backward(emissions.numpy(), lengths.numpy(), params)
    np_paths = viterbi(emissions.numpy(), lengths.numpy(), params)
    for b, n in enumerate(LENGTHS):
        scores = enumerate_paths(crf, emissions[b], n)
        expected_z = float(np.logaddexp.reduce(list(scores.values())))
        best = list(max(scores, key=lambda p: scores[p]))
        assert log_z[b] == pytest.approx(expected_z, abs=1e-4)
        assert np_log_z[b] == pytest.approx(expected_z, abs=1e-6)
        assert torch_paths[b] == best
        assert np_paths[b] == best


def test_nll_is_minus_log_probability_of_the_path(case: tuple[CRF, torch.Tensor, torch.Tensor]) -> None:
    crf, emissions, lengths = case
    tags = torch.tensor([[0, 2, 1, 1], [2, 0, 0, 0], [1, 1, 0, 0]])  # padded tags are ignored
    mask = mask_of(lengths, emissions.size(1))
    expected = []
    for b, n in enumerate(LENGTHS):
        scores = enumerate_paths(crf, emissions[b], n)
        path = tuple(tags[b, :n].tolist())
        expected.append(float(np.logaddexp.reduce(list(scores.values()))) - scores[path])
    assert float(crf.nll(emissions, tags, mask)) == pytest.approx(np.mean(expected), abs=1e-4)


def test_marginals_match_brute_force(case: tuple[CRF, torch.Tensor, torch.Tensor]) -> None:
    crf, emissions, lengths = case
    params = crf.params()
    em = emissions.numpy()
    marg = token_marginals(em, lengths.numpy(), params)
    alpha, beta, log_z = forward_backward(em, lengths.numpy(), params)
    for b, n in enumerate(LENGTHS):
        scores = enumerate_paths(crf, emissions[b], n)
        z = np.logaddexp.reduce(list(scores.values()))
        probs = {p: np.exp(s - z) for p, s in scores.items()}
        for t in range(n):
            for k in range(NUM_TAGS):
                expected = sum(v for p, v in probs.items() if p[t] == k)
                assert marg[b, t, k] == pytest.approx(expected, abs=1e-9)
        assert np.all(marg[b, n:] == 0)
        # a two-token span and a one-token span, as entities are scored
        for start, tags in [(0, [1, 2]), (n - 1, [0])]:
            if start + len(tags) > n:
                continue
            expected = sum(v for p, v in probs.items() if list(p[start : start + len(tags)]) == tags)
            got = span_probability(em[b], alpha[b], beta[b], float(log_z[b]), params, start, tags)
            assert got == pytest.approx(expected, abs=1e-9)


def test_decoding_alone_equals_decoding_in_a_padded_batch(
    case: tuple[CRF, torch.Tensor, torch.Tensor],
) -> None:
    crf, emissions, lengths = case
    params = crf.params()
    batch = viterbi(emissions.numpy(), lengths.numpy(), params)
    _, _, batch_z = forward_backward(emissions.numpy(), lengths.numpy(), params)
    for b, n in enumerate(LENGTHS):
        alone = emissions[b : b + 1, :n].numpy()
        assert viterbi(alone, np.array([n]), params)[0] == batch[b]
        assert forward_backward(alone, np.array([n]), params)[2][0] == pytest.approx(batch_z[b], abs=1e-12)
