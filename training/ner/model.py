"""BiLSTM-CRF tagger (Lample et al. 2016; Ma & Hovy 2016): word + casing + char-CNN features,
a BiLSTM over packed sequences, and emission scores. The CRF sits outside the exported module:
the bundle carries the network up to the emissions plus the CRF scores as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from training.ner.crf import CRF


@dataclass
class ModelConfig:
    vocab_size: int
    num_chars: int
    num_cases: int
    num_tags: int
    word_dim: int = 50
    case_dim: int = 8
    char_dim: int = 30
    char_filters: int = 50
    char_kernel: int = 3
    hidden: int = 200
    dropout: float = 0.5
    use_chars: bool = True

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Emitter(nn.Module):
    """word_ids, case_ids [B, T]; char_ids [B, T, C]; lengths [B] -> emissions [B, T, tags]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.use_chars = cfg.use_chars
        self.char_filters = cfg.char_filters if cfg.use_chars else 0
        self.word_emb = nn.Embedding(cfg.vocab_size, cfg.word_dim, padding_idx=0)
        self.case_emb = nn.Embedding(cfg.num_cases, cfg.case_dim, padding_idx=0)
        # padding_idx keeps the pad char at zero, so a conv window reaching past a word's end sees
        # the same zeros whatever the batch's char width is.
        self.char_emb = nn.Embedding(cfg.num_chars, cfg.char_dim, padding_idx=0)
        self.char_conv = nn.Conv1d(
            cfg.char_dim, cfg.char_filters, cfg.char_kernel, padding=cfg.char_kernel // 2
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(
            cfg.word_dim + cfg.case_dim + self.char_filters, cfg.hidden, batch_first=True, bidirectional=True
        )
        self.proj = nn.Linear(2 * cfg.hidden, cfg.num_tags)

    def char_features(self, char_ids: torch.Tensor) -> torch.Tensor:
        b, t, c = char_ids.shape
        flat = char_ids.reshape(b * t, c)
        conv: torch.Tensor = self.char_conv(self.char_emb(flat).transpose(1, 2))  # [B*T, F, C]
        present = (flat > 0).unsqueeze(1)
        # Pad positions must never win the max-pool, or the feature would depend on batch width.
        pooled = conv.masked_fill(~present, -1e4).max(dim=2).values
        has_chars = present.to(conv.dtype).amax(dim=2)  # [B*T, 1]; 0 for padded words
        return (pooled * has_chars).reshape(b, t, -1)

    def forward(
        self, word_ids: torch.Tensor, case_ids: torch.Tensor, char_ids: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        feats = [self.word_emb(word_ids), self.case_emb(case_ids)]
        if self.use_chars:
            feats.append(self.char_features(char_ids))
        x = self.dropout(torch.cat(feats, dim=2))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=word_ids.size(1))
        emissions: torch.Tensor = self.proj(self.dropout(out))
        return emissions


class Tagger(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.emitter = Emitter(cfg)
        self.crf = CRF(cfg.num_tags)

    def loss(self, feeds: dict[str, torch.Tensor], tags: torch.Tensor) -> torch.Tensor:
        emissions = self.emitter(feeds["word_ids"], feeds["case_ids"], feeds["char_ids"], feeds["lengths"])
        mask = torch.arange(tags.size(1)).unsqueeze(0) < feeds["lengths"].unsqueeze(1)
        return self.crf.nll(emissions, tags, mask)
