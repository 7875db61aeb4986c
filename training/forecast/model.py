"""The global LSTM forecaster. Normalisation lives inside the module, so the exported graphs take
raw values and return raw-scale quantiles: training, TorchScript and ONNX share one implementation
and the service never rescales anything.

Scheme: each window is standardised by the mean and standard deviation of its own valid values,
with the deviation floored at `eps_rel * mean(|x|) + eps_abs` (a constant series then maps to zeros
instead of dividing by zero, and the floor scales with the series). Outputs are mapped back with
the same two numbers, so multiplying a series by any positive factor multiplies its forecast too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

DEFAULT_QUANTILES = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)


class Forecaster(nn.Module):
    """values float32 [batch, time] (right-padded), lengths int64 [batch] ->
    quantiles float32 [batch, horizon_max, n_quantiles], raw scale, ordered along the last axis."""

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 2,
        horizon_max: int = 48,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        dropout: float = 0.0,
        eps_rel: float = 1e-4,
        eps_abs: float = 1e-8,
        skip_lags: int = 0,
    ) -> None:
        super().__init__()
        qs = [float(q) for q in quantiles]
        if sorted(qs) != qs or 0.5 not in qs:
            raise ValueError("quantiles must be ascending and include 0.5")
        self.hidden = hidden
        self.layers = layers
        self.horizon_max = horizon_max
        self.quantiles = qs
        self.n_quantiles = len(qs)
        self.n_lower = qs.index(0.5)
        self.n_upper = len(qs) - self.n_lower - 1
        self.eps_rel = eps_rel
        self.eps_abs = eps_abs
        self.skip_lags = skip_lags
        # Inputs per step: the standardised value and its first difference.
        self.lstm = nn.LSTM(
            2, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.head = nn.Sequential(
            nn.Linear(hidden + skip_lags, hidden), nn.ReLU(), nn.Linear(hidden, horizon_max * len(qs))
        )

    def normalize(
        self, values: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z [B,T] with padding zeroed, mean [B,1], scale [B,1]) over the valid prefix of each row."""
        steps = torch.arange(values.shape[1], device=values.device).unsqueeze(0)
        mask = (steps < lengths.unsqueeze(1)).to(values.dtype)
        count = lengths.to(values.dtype).unsqueeze(1)
        mean = (values * mask).sum(dim=1, keepdim=True) / count
        centred = (values - mean) * mask
        std = torch.sqrt((centred * centred).sum(dim=1, keepdim=True) / count)
        floor = self.eps_rel * (values.abs() * mask).sum(dim=1, keepdim=True) / count + self.eps_abs
        scale = torch.maximum(std, floor)
        return centred / scale, mean, scale

    def forward_normalized(
        self, values: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantiles in the window's standardised units, plus the (mean, scale) to undo it."""
        z, mean, scale = self.normalize(values, lengths)
        diff = torch.cat([torch.zeros_like(z[:, :1]), z[:, 1:] - z[:, :-1]], dim=1)
        x = torch.stack([z, diff], dim=2)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        last = z.gather(1, (lengths - 1).unsqueeze(1))
        features = h[-1]
        if self.skip_lags > 0:
            # The last values themselves, relative to the last one, go straight to the head: a season
            # (24 hours, 48 half-hours, 52 weeks) is then a linear read-out, not something the LSTM
            # must carry through its state. Short histories repeat their first value.
            steps = torch.arange(self.skip_lags, device=values.device).unsqueeze(0)
            idx = (lengths.unsqueeze(1) - self.skip_lags + steps).clamp(min=0)
            features = torch.cat([features, z.gather(1, idx) - last], dim=1)
        raw = self.head(features).view(-1, self.horizon_max, self.n_quantiles)
        # The median is an offset from the last observed value (so "no change" is the default),
        # the other quantiles positive cumulative gaps from it: ordering holds by construction.
        last = last.unsqueeze(2)
        median = last + raw[:, :, :1]
        gaps_low = F.softplus(raw[:, :, 1 : 1 + self.n_lower])
        gaps_up = F.softplus(raw[:, :, 1 + self.n_lower :])
        # Lower quantiles, outermost first: median minus the sum of the gaps from there inwards.
        lower = median - (gaps_low.sum(dim=2, keepdim=True) - torch.cumsum(gaps_low, dim=2) + gaps_low)
        upper = median + torch.cumsum(gaps_up, dim=2)
        zq = torch.cat([lower, median, upper], dim=2)
        return zq, mean, scale

    def forward(self, values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        zq, mean, scale = self.forward_normalized(values, lengths)
        return zq * scale.unsqueeze(2) + mean.unsqueeze(2)

    def config(self) -> dict[str, object]:
        return {
            "hidden": self.hidden,
            "layers": self.layers,
            "horizon_max": self.horizon_max,
            "quantiles": self.quantiles,
            "eps_rel": self.eps_rel,
            "eps_abs": self.eps_abs,
            "skip_lags": self.skip_lags,
        }


def pinball_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, quantiles: Sequence[float]
) -> torch.Tensor:
    """Mean quantile loss over the valid target steps. pred [B,H,Q], target and mask [B,H]."""
    q = torch.tensor(list(quantiles), dtype=pred.dtype, device=pred.device)
    diff = target.unsqueeze(2) - pred
    loss = torch.maximum(q * diff, (q - 1.0) * diff).mean(dim=2)
    return (loss * mask).sum() / mask.sum().clamp(min=1.0)


def pad_batch(histories: Sequence[Sequence[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad histories into (values float32 [B,T], lengths int64 [B])."""
    lengths = torch.tensor([len(h) for h in histories], dtype=torch.int64)
    values = torch.zeros(len(histories), int(lengths.max()), dtype=torch.float32)
    for i, h in enumerate(histories):
        values[i, : len(h)] = torch.tensor(np.asarray(h, dtype=np.float32))
    return values, lengths
