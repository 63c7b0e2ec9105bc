"""Scoring heads shared by the architectures."""

from __future__ import annotations

import torch
from torch import nn


def symmetric_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[|u-v|, u*v, u+v]: the pair features of Sentence-BERT, made order-independent, so that
    score(a, b) == score(b, a)."""
    return torch.cat([(u - v).abs(), u * v, u + v], dim=-1)


class RegressionHead(nn.Module):
    """Dropout, a hidden layer and one linear output: a similarity on the 0-1 scale (sigmoid)."""

    def __init__(self, in_features: int, hidden_size: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(in_features, hidden_size)
        self.activation = nn.GELU()
        self.out_proj = nn.Linear(hidden_size, 1)

    def logit(self, features: torch.Tensor) -> torch.Tensor:
        """The score before the sigmoid, `(batch,)`: what a binary cross-entropy loss reads."""
        hidden = self.activation(self.dense(self.dropout(features)))
        return self.out_proj(self.dropout(hidden)).squeeze(-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logit(features).float())  # float32 also under bf16/fp16 autocast
