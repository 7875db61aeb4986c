"""The global LSTM forecaster: reads a deseasonalised, level-normalised window (see `pipeline`) and
a static feature vector, and returns all `horizon_max` future steps at once (direct strategy), in
the same normalised units.

`Ensemble` averages several such networks in one graph, so an ensemble exports as one TorchScript
module and one ONNX file.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Forecaster(nn.Module):
    """values float32 [B, T] left-padded z window, lengths int64 [B], static float32 [B, F] ->
    float32 [B, horizon_max] (z units)."""

    def __init__(
        self, n_static: int, hidden: int = 64, layers: int = 1, horizon_max: int = 48, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.n_static = n_static
        self.hidden = hidden
        self.layers = layers
        self.horizon_max = horizon_max
        # Per step: z, its first difference, a real-value flag, and the static features (the LSTM
        # then knows the season class from the first step on).
        self.lstm = nn.LSTM(
            3 + n_static, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.head = nn.Sequential(
            nn.Linear(hidden + n_static, hidden), nn.ReLU(), nn.Linear(hidden, horizon_max)
        )

    def forward(self, values: torch.Tensor, lengths: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        # Windows are left-padded to one width and the LSTM reads every step, padding included
        # (flagged by a mask channel): a row's result never depends on what it is batched with,
        # and the unpacked LSTM trains several times faster on CPU than a packed one.
        width = values.shape[1]
        steps = torch.arange(width, device=values.device).unsqueeze(0)
        mask = (steps >= width - lengths.to(values.device).unsqueeze(1)).to(values.dtype)
        z = values * mask
        diff = torch.cat([torch.zeros_like(z[:, :1]), z[:, 1:] - z[:, :-1]], dim=1) * mask
        diff = diff * torch.cat([torch.zeros_like(mask[:, :1]), mask[:, :-1]], dim=1)
        feats = static.unsqueeze(1).expand(-1, width, -1)
        x = torch.cat([z.unsqueeze(2), diff.unsqueeze(2), mask.unsqueeze(2), feats], dim=2)
        _, (h, _) = self.lstm(x)
        return self.head(torch.cat([h[-1], static], dim=1))

    def config(self) -> dict[str, int]:
        return {
            "hidden": self.hidden,
            "layers": self.layers,
            "horizon_max": self.horizon_max,
            "n_static": self.n_static,
        }


class Ensemble(nn.Module):
    """Mean of the members' outputs (members differ only in their seed)."""

    def __init__(self, members: Sequence[Forecaster]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.horizon_max = members[0].horizon_max

    def forward(self, values: torch.Tensor, lengths: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        outs = [member(values, lengths, static) for member in self.members]
        return torch.stack(outs, dim=0).mean(dim=0)
