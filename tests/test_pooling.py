from __future__ import annotations

import pytest
import torch

from sts_models.pooling import pool


def test_pooling_ignores_padded_tokens():
    states = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(pool(states, mask, "mean"), torch.tensor([[2.0, 1.0]]))
    torch.testing.assert_close(pool(states, mask, "max"), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(pool(states, mask, "cls"), torch.tensor([[1.0, -2.0]]))


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="Unknown pooling"):
        pool(torch.zeros(1, 2, 2), torch.ones(1, 2), "sum")
