"""Masked pooling of token states into one vector per sequence."""

from __future__ import annotations

import torch


def pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Pool `(batch, seq, dim)` token states over the tokens that `attention_mask` keeps.

    Padding never contributes, so a sentence pools to the same vector whatever the batch padding.
    """
    if mode == "cls":
        return hidden_states[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
    if mode == "mean":
        return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    if mode == "max":
        lowest = torch.finfo(hidden_states.dtype).min
        return hidden_states.masked_fill(mask == 0, lowest).max(dim=1).values
    raise ValueError(f"Unknown pooling mode {mode!r}; expected 'mean', 'cls' or 'max'")
