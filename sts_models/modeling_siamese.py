"""Siamese bi-encoder (arch `siamese`): one shared encoder, each sentence embedded on its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .configuration import STSSiameseConfig
from .heads import RegressionHead, symmetric_features
from .inference import SentenceEncoder
from .losses import build_loss
from .modeling_base import STSModelOutput, STSPreTrainedModel
from .pooling import pool
from .sentence_transformers_export import save_sentence_transformer
from .sentence_transformers_settings import sentence_transformers_settings


def batch_data_shape(num_inputs: int, labels: torch.Tensor | None) -> str:
    """The data shape of a batch, from how many sentence inputs it has and its labels."""
    if num_inputs == 1:
        return "labelled_sentences"
    if num_inputs == 3:
        return "triplets"
    if labels is None:
        return "positive_pairs"
    return "scored_pairs" if labels.is_floating_point() else "labelled_pairs"


@dataclass
class SiameseModelOutput(STSModelOutput):
    """`STSModelOutput` plus the pooled embeddings of both sentences (with `output_embeddings=True`)."""

    embeddings_1: torch.FloatTensor | None = None
    embeddings_2: torch.FloatTensor | None = None


class STSSiameseModel(SentenceEncoder, STSPreTrainedModel):
    """Embeds each sentence to u and v, then scores cos(u, v) (`head="cosine"`) or an MLP over
    [|u-v|, u*v, u+v] (`head="mlp"`). Both heads are symmetric: score(a, b) == score(b, a).

    `predict` maps the cosine head's raw cosine, which spans -1 to 1, as it maps a 0-1 score, without clipping:
    a pair whose embeddings point apart scores below `score_min` (a cosine of -0.1 is -0.5 on STS-B's 0-5).
    Clipping would tie all such pairs at `score_min` and change their Spearman correlation.

    Besides scored pairs, it trains on the other data shapes of `sts_models.registry.DATA_SHAPES`
    (labelled pairs, positive pairs, triplets, labelled sentences) with the loss in `config.loss`.
    """

    config_class = STSSiameseConfig
    main_input_name = "input_ids_1"

    def __init__(self, config: STSSiameseConfig, encoder=None):
        super().__init__(config, encoder)
        self.head = (
            RegressionHead(3 * self.hidden_size, config.head_hidden_size, config.classifier_dropout)
            if config.head == "mlp"
            else None
        )
        self.loss_fct = build_loss(config.loss, self.hidden_size, config.num_labels, **(config.loss_kwargs or {}))
        self.post_init()

    @classmethod
    def from_encoder(
        cls, encoder_name_or_path: str, tokenizer_name_or_path: str | None = None, **config_options
    ) -> STSSiameseModel:
        """`STSPreTrainedModel.from_encoder`; on a sentence-transformers checkpoint, its pooling, `max_seq_length`
        and normalization are the defaults (`sentence_transformers_settings`), so the model embeds as that one
        does until it is trained; `config_options` given explicitly win."""
        defaults = sentence_transformers_settings(encoder_name_or_path)
        return super().from_encoder(encoder_name_or_path, tokenizer_name_or_path, **{**defaults, **config_options})

    @property
    def data_shapes(self) -> tuple[str, ...]:
        return self.loss_fct.data_shapes

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled sentence embeddings `(batch, hidden)`."""
        return pool(self.encoder_states(input_ids, attention_mask), attention_mask, self.config.pooling)

    def score(self, embeddings_1: torch.Tensor, embeddings_2: torch.Tensor) -> torch.Tensor:
        """Similarity of two batches of embeddings, on the 0-1 training scale; the cosine head's raw cosine goes
        down to -1 (not clipped, see the class docstring)."""
        if self.head is None:  # in float32, also under bf16/fp16 autocast
            return F.cosine_similarity(embeddings_1.float(), embeddings_2.float(), dim=-1)
        return self.head(symmetric_features(embeddings_1, embeddings_2))

    def forward(
        self,
        input_ids_1: torch.Tensor,
        attention_mask_1: torch.Tensor,
        input_ids_2: torch.Tensor | None = None,
        attention_mask_2: torch.Tensor | None = None,
        input_ids_3: torch.Tensor | None = None,
        attention_mask_3: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_loss: bool = True,
        output_embeddings: bool = False,
    ) -> SiameseModelOutput:
        """Inputs 1, 2, 3 are the columns of the batch's data shape (e.g. anchor, positive, negative).

        `scores` holds the pair scores of inputs 1 and 2 (none for single sentences). Training refuses a batch
        the loss does not train on (e.g. float labels, which make scored pairs, for a loss of labelled
        pairs). In evaluation, scored pairs the loss does not train on get the pair loss (MSE), so
        evaluating on STS data works whatever the training loss.
        Positive pairs and triplets need no labels for their loss (`return_loss=False` skips it).
        """
        inputs = [(input_ids_1, attention_mask_1), (input_ids_2, attention_mask_2), (input_ids_3, attention_mask_3)]
        embeddings = [self.embed(ids, mask) for ids, mask in inputs if ids is not None]
        scores = self.score(embeddings[0], embeddings[1]) if len(embeddings) > 1 else None
        shape = batch_data_shape(len(embeddings), labels)
        if return_loss and self.training and shape not in self.loss_fct.data_shapes:
            labels_kind = "" if labels is None else f" ({labels.dtype} labels)"
            raise ValueError(
                f"loss {self.config.loss!r} trains on {self.loss_fct.data_shapes}, not on {shape}{labels_kind}"
            )
        loss = None
        if return_loss and shape in (*self.loss_fct.data_shapes, "scored_pairs"):
            # (batch, columns, hidden), so that one gather keeps each example's columns together
            stacked, labels, pair_scores = self.gather_for_loss(torch.stack(embeddings, dim=1), labels, scores)
            if shape in self.loss_fct.data_shapes:
                loss = self.loss_fct(list(stacked.unbind(1)), labels, pair_scores)
            else:
                loss = self.compute_loss(pair_scores, labels)
        return SiameseModelOutput(
            loss=loss,
            scores=scores,
            embeddings_1=embeddings[0] if output_embeddings else None,
            embeddings_2=embeddings[1] if output_embeddings and len(embeddings) > 1 else None,
        )

    def embedding_scores(self, embeddings_1: np.ndarray, embeddings_2: np.ndarray) -> np.ndarray:
        """Float32 scores on the 0-1 training scale of pairs of embeddings from `encode` (not normalized)."""
        with self.inference_mode():
            # the MLP head's weights may be float16/bf16 (`model.half()`); the cosine head computes in float32
            dtype = torch.float32 if self.head is None else next(self.head.parameters()).dtype
            first, second = (torch.from_numpy(e).to(self.device, dtype) for e in (embeddings_1, embeddings_2))
            return self.score(first, second).float().cpu().numpy()

    def embed_batch(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        """Float32 embeddings of one padded batch from `sorted_batches`, on the CPU."""
        return self.embed(**batch).float().cpu().numpy()

    def save_sentence_transformer(self, folder: str) -> None:
        """Write a folder that `sentence_transformers.SentenceTransformer(folder)` loads, with the same
        encoder, tokenizer, pooling and normalization (cosine head only)."""
        save_sentence_transformer(self, folder)
