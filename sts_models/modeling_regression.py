"""BERT + Regression (arch `bert`): a cross-encoder reading `[CLS] s1 [SEP] s2 [SEP]`."""

from __future__ import annotations

import torch

from .configuration import STSRegressionConfig
from .heads import RegressionHead
from .modeling_base import STSModelOutput, STSPreTrainedModel
from .pooling import pool


class STSRegressionModel(STSPreTrainedModel):
    """Both sentences in one sequence, so every layer attends across the pair; pooled, then regressed."""

    config_class = STSRegressionConfig
    main_input_name = "input_ids"
    encodes_pairs_jointly = True

    def __init__(self, config: STSRegressionConfig, encoder=None):
        super().__init__(config, encoder)
        self.head = RegressionHead(self.hidden_size, config.head_hidden_size, config.classifier_dropout)
        self.post_init()

    def pair_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder_states(input_ids, attention_mask, token_type_ids)
        return self.head.logit(pool(hidden, attention_mask, self.config.pooling))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        input_ids_swapped: torch.Tensor | None = None,
        attention_mask_swapped: torch.Tensor | None = None,
        token_type_ids_swapped: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> STSModelOutput:
        """`*_swapped` inputs (the pairs in reverse order, from `tokenize` when `config.symmetric`) are
        scored too and the two logits averaged."""
        if input_ids_swapped is None:
            return self.regression_output(self.pair_logits(input_ids, attention_mask, token_type_ids), labels)
        inputs = (input_ids, attention_mask, token_type_ids)
        swapped = (input_ids_swapped, attention_mask_swapped, token_type_ids_swapped)
        if input_ids.shape == input_ids_swapped.shape and all(
            (a is None) == (b is None) for a, b in zip(inputs, swapped)
        ):
            # both orders have the same length: one encoder call over the two stacked batches
            stacked = [None if a is None else torch.cat([a, b]) for a, b in zip(inputs, swapped)]
            logits, logits_swapped = self.pair_logits(*stacked).chunk(2)
        else:
            logits, logits_swapped = self.pair_logits(*inputs), self.pair_logits(*swapped)
        return self.regression_output((logits + logits_swapped) / 2, labels)
