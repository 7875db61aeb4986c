"""Linear-chain CRF in torch for training: NLL via the forward algorithm and Viterbi decoding,
both vectorised over the batch with a [batch, time] mask (the shape of kmkurn/pytorch-crf).

Serving decodes with the numpy twin in `app.ner.crf_decode`; `params()` hands the learned
scores over in that module's form.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from app.ner.crf_decode import CrfParams


class CRF(nn.Module):
    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))
        self.start_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))

    def path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised score of `tags` [batch, time]; `mask` [batch, time] bool, first step on."""
        batch = torch.arange(emissions.size(0), device=emissions.device)
        m = mask.to(emissions.dtype)
        score = self.start_transitions[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # [batch, time]
        trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # [batch, time-1]
        score = score + ((emit[:, 1:] + trans) * m[:, 1:]).sum(1)
        last = tags.gather(1, (mask.long().sum(1) - 1).unsqueeze(1)).squeeze(1)
        return score + self.end_transitions[last]

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        score = self.start_transitions + emissions[:, 0]  # [batch, tags]
        for t in range(1, emissions.size(1)):
            candidates = score.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1)
            step = torch.logsumexp(candidates, dim=1)
            score = torch.where(mask[:, t].unsqueeze(1), step, score)
        return torch.logsumexp(score + self.end_transitions, dim=1)

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood over the batch."""
        return (self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)).mean()

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        batch, time, _ = emissions.shape
        score = self.start_transitions + emissions[:, 0]
        history = []
        for t in range(1, time):
            candidates = score.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1)
            best, idx = candidates.max(dim=1)
            history.append(idx)
            score = torch.where(mask[:, t].unsqueeze(1), best, score)
        score = score + self.end_transitions
        lengths = mask.long().sum(1).tolist()
        last = score.argmax(1).tolist()
        paths = []
        for b in range(batch):
            tag = last[b]
            path = [tag]
            for t in range(lengths[b] - 2, -1, -1):
                tag = int(history[t][b, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths

    def params(self) -> CrfParams:
        def arr(p: torch.Tensor) -> np.ndarray:
            return p.detach().cpu().double().numpy()

        return CrfParams(arr(self.transitions), arr(self.start_transitions), arr(self.end_transitions))
