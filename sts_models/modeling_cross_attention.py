"""Cross-Attention (arch `cross`): each sentence's token states attend to the other's."""

from __future__ import annotations

import torch
from torch import nn
from transformers import initialization as init

from .configuration import STSCrossAttentionConfig
from .heads import RegressionHead, symmetric_features
from .losses import CoSENTLoss
from .modeling_base import STSModelOutput, STSPreTrainedModel
from .pooling import pool


class STSCrossAttentionModel(STSPreTrainedModel):
    """Encode both sentences, let each attend to the other (one shared multi-head attention, both
    directions, key padding masks), pool each side over its real tokens, regress over [|a-b|, a*b, a+b].
    Attention runs across the two sentences of each pair (batch first), never to padding.
    """

    config_class = STSCrossAttentionConfig
    main_input_name = "input_ids_1"

    def __init__(self, config: STSCrossAttentionConfig, encoder=None):
        super().__init__(config, encoder)
        num_heads = config.cross_attention_heads or config.encoder.num_attention_heads
        if self.hidden_size % num_heads:
            raise ValueError(
                f"cross_attention_heads={num_heads} does not divide the encoder hidden size {self.hidden_size}"
            )
        self.cross_attention = nn.MultiheadAttention(
            self.hidden_size, num_heads, dropout=config.classifier_dropout, batch_first=True
        )
        self.norm = nn.LayerNorm(self.hidden_size)
        self.head = RegressionHead(3 * self.hidden_size, config.head_hidden_size, config.classifier_dropout)
        self.cosine_skip = CosineSkip() if config.cosine_skip else None
        # the siamese `cosent` loss on the skip's cosine (no parameters)
        self.cosine_skip_loss = CoSENTLoss() if config.cosine_skip_loss_weight else None
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, CosineSkip):
            module.reset_parameters()

    def attend(self, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """Token states of one sentence, enriched with what they attend to in the other (residual + norm)."""
        attended, _ = self.cross_attention(queries, keys, keys, key_padding_mask=key_mask == 0, need_weights=False)
        return self.norm(queries + attended)

    def forward(
        self,
        input_ids_1: torch.Tensor,
        attention_mask_1: torch.Tensor,
        input_ids_2: torch.Tensor,
        attention_mask_2: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> STSModelOutput:
        states_1 = self.encoder_states(input_ids_1, attention_mask_1)
        states_2 = self.encoder_states(input_ids_2, attention_mask_2)
        pooled_1 = pool(self.attend(states_1, states_2, attention_mask_2), attention_mask_1, self.config.pooling)
        pooled_2 = pool(self.attend(states_2, states_1, attention_mask_1), attention_mask_2, self.config.pooling)
        logits = self.head.logit(symmetric_features(pooled_1, pooled_2))
        if self.cosine_skip is None:
            return self.regression_output(logits, labels)
        own_1 = pool(states_1, attention_mask_1, self.config.pooling)
        own_2 = pool(states_2, attention_mask_2, self.config.pooling)
        cosine = nn.functional.cosine_similarity(own_1.float(), own_2.float(), dim=-1)
        output = self.regression_output(logits + self.cosine_skip(cosine), labels)
        if output.loss is not None and self.cosine_skip_loss is not None:
            weight = self.config.cosine_skip_loss_weight
            own_1, own_2, labels = self.gather_for_loss(own_1, own_2, labels)
            output.loss = output.loss + weight * self.cosine_skip_loss([own_1, own_2], labels, None)
        return output


class CosineSkip(nn.Module):
    """`scale * cos + bias`: a bi-encoder's cosine as a logit. Starts at scale 10, bias -5, so that
    sigmoid(logit) spreads cosines 0..1 over scores 0.01..0.99 before any training."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.empty(()))
        self.bias = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.constant_(self.scale, 10.0)
        init.constant_(self.bias, -5.0)

    def forward(self, cosine: torch.Tensor) -> torch.Tensor:
        return self.scale * cosine + self.bias
