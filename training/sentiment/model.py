"""BiLSTM/BiGRU sentiment classifier over packed sequences.

Packing (rather than running the RNN over padding) is what makes a text's probabilities identical
alone and inside a padded batch: the backward direction starts at the text's own last token. The
module is written for `torch.jit.script` and the TorchScript-based ONNX exporter, which maps the
packed RNN to ONNX LSTM/GRU nodes with `sequence_lens`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CELLS = ("lstm", "gru")
HEADS = ("final", "attention")


class LstmEncoder(nn.Module):
    """Separate encoder classes per cell because LSTM and GRU return differently shaped states,
    and TorchScript needs one static type per module attribute."""

    def __init__(self, input_size: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.rnn = nn.LSTM(
            input_size, hidden, num_layers=layers, bidirectional=True, batch_first=True, dropout=dropout
        )

    def forward(self, x: Tensor, lengths: Tensor, total_length: int, packed: bool) -> tuple[Tensor, Tensor]:
        if packed:
            seq = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, (h_n, _) = self.rnn(seq)
            padded, _ = pad_packed_sequence(out, batch_first=True, total_length=total_length)
        else:
            padded, (h_n, _) = self.rnn(x)
        # h_n is [layers * 2, batch, hidden]; the last two rows are the top layer's directions.
        return padded, torch.cat([h_n[-2], h_n[-1]], dim=1)


class GruEncoder(nn.Module):
    def __init__(self, input_size: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.rnn = nn.GRU(
            input_size, hidden, num_layers=layers, bidirectional=True, batch_first=True, dropout=dropout
        )

    def forward(self, x: Tensor, lengths: Tensor, total_length: int, packed: bool) -> tuple[Tensor, Tensor]:
        if packed:
            seq = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, h_n = self.rnn(seq)
            padded, _ = pad_packed_sequence(out, batch_first=True, total_length=total_length)
        else:
            padded, h_n = self.rnn(x)
        return padded, torch.cat([h_n[-2], h_n[-1]], dim=1)


class SentimentNet(nn.Module):
    """token_ids [batch, time] int64, lengths [batch] int64 -> (probs [batch, classes],
    attention [batch, time]); with the `final` head the attention output is all zeros and the
    exported graph leaves it out (see `ProbsOnly`)."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden: int = 128,
        layers: int = 2,
        cell: str = "lstm",
        head: str = "final",
        dropout: float = 0.5,
        rnn_dropout: float = 0.3,
        embedding_dropout: float = 0.2,
        num_classes: int = 2,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if cell not in CELLS or head not in HEADS:
            raise ValueError(f"cell must be one of {CELLS} and head one of {HEADS}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        encoder = LstmEncoder if cell == "lstm" else GruEncoder
        self.encoder = encoder(embedding_dim, hidden, layers, rnn_dropout)
        self.use_attention = head == "attention"
        self.attention_score = nn.Linear(2 * hidden, 1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden, num_classes)

    def logits(self, token_ids: Tensor, lengths: Tensor, packed: bool = True) -> tuple[Tensor, Tensor]:
        """`packed=False` is only correct when every row is exactly `time` tokens long: training
        builds such batches because the CPU backward pass of a packed RNN is ~8x slower."""
        total_length = token_ids.size(1)
        x = self.embedding_dropout(self.embedding(token_ids))
        # pack_padded_sequence wants lengths on the CPU whatever the device of the data.
        outputs, final = self.encoder(x, lengths.cpu(), total_length, packed)
        if self.use_attention:
            positions = torch.arange(total_length, device=token_ids.device).unsqueeze(0)
            mask = positions < lengths.to(token_ids.device).unsqueeze(1)
            scores = self.attention_score(outputs).squeeze(2)
            # -inf (not a large negative) makes padded weights exactly 0, so a padded batch
            # and a single text give the same pooled vector.
            weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
            pooled = torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)
        else:
            weights = torch.zeros(token_ids.size(0), total_length, device=token_ids.device)
            pooled = final
        return self.classifier(self.dropout(pooled)), weights

    def forward(self, token_ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        logits, weights = self.logits(token_ids, lengths)
        return torch.softmax(logits, dim=1), weights


class ProbsOnly(nn.Module):
    """Export wrapper for the `final` head: the bundle then declares a single `probs` output."""

    def __init__(self, net: SentimentNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, token_ids: Tensor, lengths: Tensor) -> Tensor:
        probs, _ = self.net.forward(token_ids, lengths)
        return probs


def export_module(net: SentimentNet) -> nn.Module:
    """The module to hand to `write_bundle`: its outputs match the manifest's output specs."""
    return net if net.use_attention else ProbsOnly(net)
