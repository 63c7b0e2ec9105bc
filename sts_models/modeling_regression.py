"""BERT + Regression (arch `bert`): a cross-encoder reading `[CLS] s1 [SEP] s2 [SEP]`."""

from __future__ import annotations

import torch

from .configuration import STSRegressionConfig
from .heads import RegressionHead
from .modeling_base import STSModelOutput, STSPreTrainedModel
from .pooling import pool


class STSRegressionModel(STSPreTrainedModel):
    """Both sentences in one sequence, so every layer attends across the pair; pooled, then regressed.

    The original notebook fed only `sentence1` here, which is why it scored 0.21 Pearson.
    """

    config_class = STSRegressionConfig
    main_input_name = "input_ids"
    encodes_pairs_jointly = True

    def __init__(self, config: STSRegressionConfig, encoder=None):
        super().__init__(config, encoder)
        self.head = RegressionHead(self.hidden_size, config.head_hidden_size, config.classifier_dropout)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> STSModelOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder_states(input_ids, attention_mask, token_type_ids)
        logits = self.head(pool(hidden, attention_mask, self.config.pooling))
        return STSModelOutput(loss=self.compute_loss(logits, labels), logits=logits)
