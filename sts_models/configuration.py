"""Configurations of the three STS architectures.

Each configuration nests the configuration of its encoder (as `EncoderDecoderConfig` does), so a
saved model folder rebuilds the whole network offline, without the original encoder checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import ClassVar

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .errors import STSUserError
from .registry import PAIR_LOSSES, POOLING_MODES, SIAMESE_HEADS, SIAMESE_LOSSES


def option(default, help: str, choices=None):
    """A config field that the commands offer as `--NAME` (`sts_models.cli.arguments` reads `help` and `choices`)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def check_score_range(score_min: float, score_max: float) -> None:
    """Raise `STSUserError` (a `ValueError`) unless `[score_min, score_max]` is a finite range of positive width
    (an empty range would refuse every score, an infinite one would scale every score to 0)."""
    if not (math.isfinite(score_min) and math.isfinite(score_max)):
        raise STSUserError(f"score_min ({score_min}) and score_max ({score_max}) must be finite numbers")
    if not score_max > score_min:
        raise STSUserError(f"score_max ({score_max}) must be greater than score_min ({score_min})")


# Encoders whose position ids start after the padding index (RoBERTa's scheme): `max_position_embeddings` counts
# `pad_token_id + 1` positions no token takes (514 for 512 tokens), which max_seq_length may not use.
POSITIONS_AFTER_PADDING = frozenset(
    {"camembert", "data2vec-text", "esm", "ibert", "longformer", "luke", "mpnet", "roberta", "roberta-prelayernorm",
     "xlm-roberta", "xlm-roberta-xl", "xmod"}
)  # fmt: skip


def usable_positions(model_type: str | None, max_position_embeddings, pad_token_id) -> int | None:
    """The positions of an encoder that tokens can take (`max_position_embeddings`, less the padding offset of
    `POSITIONS_AFTER_PADDING` encoders); None where its config sets no number (XLNet's -1 included)."""
    positions = max_position_embeddings
    if isinstance(positions, bool) or not isinstance(positions, int) or positions < 1:
        return None
    if model_type in POSITIONS_AFTER_PADDING:
        positions -= (pad_token_id if isinstance(pad_token_id, int) else 0) + 1
    return positions


OPTION_TYPES = {"bool": (bool,), "int": (numbers.Integral,), "float": (numbers.Real,), "str": (str,), "dict": (dict,)}

LOSS_HELP = (
    "Training loss. bert, cross: mse (default), binary_cross_entropy or cosent; siamese: the loss decides the data "
    "shape (see docs/embeddings.md)."
)


class STSConfig(PretrainedConfig):
    """Options shared by every STS architecture.

    Args:
        encoder: configuration of the pretrained encoder (a `PretrainedConfig` or its dict).
        pooling: how token states become one vector: `"mean"`, `"cls"` or `"max"`.
        freeze_layers: freeze the embeddings and the first `freeze_layers` encoder layers.
        score_min, score_max: range of the gold scores (0-5 for STS-B). Models train on scores
            scaled to 0-1 and `predict` maps back to this range.
        max_seq_length: tokens kept per sequence (per pair for the `bert` arch).
        head_hidden_size: width of the hidden layer of regression heads.
        classifier_dropout: dropout before and inside regression heads.
        gather_across_devices: in multi-process training, gather the embeddings, scores and labels of
            every process before the loss, so in-batch losses (`cosent`, `angle`,
            `multiple_negatives_ranking`, the batch triplet losses and the `cosent` pair loss) compare
            each example with the whole global batch, not only its process's slice. One step then equals
            a single-process step on the global batch. No effect in a single process.
    """

    arch: ClassVar[str] = ""
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: PretrainedConfig | dict | None = None
    pooling: str = option("mean", "How token states become one vector.", POOLING_MODES)
    freeze_layers: int = option(0, "Freeze the embeddings and the first N encoder layers.")
    score_min: float = 0.0
    score_max: float = 5.0
    max_seq_length: int = option(128, "Tokens kept per sequence (per pair for the bert arch).")
    head_hidden_size: int = 256
    classifier_dropout: float = 0.1
    initializer_range: float = 0.02
    gather_across_devices: bool = option(
        False,
        "Multi-process training: in-batch losses see the whole global batch, gathered from every process "
        "(see docs/distributed.md).",
    )

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.set_defaults()
        self.check_options()

    def set_defaults(self) -> None:
        """Fill the options whose default depends on others."""

    def check_options(self) -> None:
        """Raise `ValueError`, naming the option, for options that do not make sense together.

        Runs when the config is built and again when a model is built on it, since `from_pretrained`
        sets the options passed to it after the config is built (e.g. `max_seq_length=0` on a saved model).
        """
        self.check_types()
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        check_score_range(self.score_min, self.score_max)
        if self.freeze_layers < 0:
            raise ValueError(f"freeze_layers must be >= 0, got {self.freeze_layers}")
        self.check_max_seq_length()

    def check_max_seq_length(self) -> None:
        """Raise `STSUserError` (a `ValueError`) unless `max_seq_length` is a positive number of tokens that the
        encoder has positions for. Checked when the model is built, and again whenever inputs are tokenized
        (`sequence_length`): a value set on a loaded model's config would otherwise fail deep inside the encoder on a
        long input."""
        length = self.max_seq_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            # 0 would not truncate at all (the tokenizer reads max_length=0 as no limit)
            raise STSUserError(f"max_seq_length must be a positive number of tokens, got {length!r}")
        encoder = self.encoder
        positions = usable_positions(
            encoder.model_type,
            getattr(encoder, "max_position_embeddings", None),
            getattr(encoder, "pad_token_id", None),
        )
        if positions is not None and length > positions:
            raise STSUserError(
                f"max_seq_length {length} is more than the {positions} positions of the encoder "
                f"({self.encoder.model_type})"
            )

    def check_types(self) -> None:
        """Raise `ValueError` for an option of the wrong type (e.g. `"score_max": "5"` in an edited config.json),
        which would fail later in a traceback far from its cause. A `float` option takes an `int` too, and each takes
        NumPy's numbers."""
        declared_here = set().union(*(vars(klass).get("__annotations__", {}) for klass in type(self).__mro__))
        for config_field in dataclasses.fields(self):
            kinds = str(config_field.type).replace(" ", "").split("|")
            if config_field.name not in declared_here or not set(kinds) <= {*OPTION_TYPES, "None"}:
                continue  # transformers' own fields, and the nested encoder config
            value = getattr(self, config_field.name)
            if value is None and "None" in kinds:
                continue
            allowed = tuple(kind for name in kinds if name != "None" for kind in OPTION_TYPES[name])
            if not isinstance(value, allowed) or (isinstance(value, bool) and "bool" not in kinds):
                raise ValueError(f"{config_field.name} must be of type {' or '.join(kinds)}, got {value!r}")

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """The options a model of this config takes (`from_encoder(..., **options)`, `from_pretrained`): the
        config's fields, and `num_labels`."""
        return frozenset(field.name for field in dataclasses.fields(cls)) | {"num_labels"}

    @property
    def hidden_size(self) -> int:
        """The encoder's width, for tools that read `config.hidden_size` (DeepSpeed's `"auto"` bucket sizes)."""
        return self.encoder.hidden_size

    def to_unit_range(self, score):
        """Map a gold score from `[score_min, score_max]` to the 0-1 range the model trains on."""
        return (score - self.score_min) / (self.score_max - self.score_min)

    def from_unit_range(self, value):
        """Map a model output on the 0-1 scale back to `[score_min, score_max]`."""
        return self.score_min + value * (self.score_max - self.score_min)


class STSPairScorerConfig(STSConfig):
    """Options of the architectures that score a pair with a regression head (`bert`, `cross`).

    Args:
        loss: `"mse"` on the 0-1 score; `"binary_cross_entropy"` on the score's logit (the loss of
            sentence-transformers' `CrossEncoder`; it keeps learning where the sigmoid saturates); or
            `"cosent"`: binary cross-entropy plus the CoSENT ranking loss over the batch's logits, which
            rewards ordering pairs right rather than fitting each score.
    """

    loss: str = option("mse", LOSS_HELP, PAIR_LOSSES)

    def check_options(self) -> None:
        super().check_options()
        if self.loss not in PAIR_LOSSES:
            raise ValueError(f"loss of the '{self.arch}' architecture must be one of {PAIR_LOSSES}, got {self.loss!r}")


class STSRegressionConfig(STSPairScorerConfig):
    """BERT + Regression (arch `bert`): both sentences in one sequence, pooled, a regression head.

    Args:
        symmetric: read every pair in both orders and average the two logits, so that
            score(a, b) == score(b, a) in training and prediction (twice the compute per pair).
    """

    model_type = "sts_regression"
    arch: ClassVar[str] = "bert"

    symmetric: bool = option(False, "bert: read every pair in both orders and average the two logits.")


class STSSiameseConfig(STSConfig):
    """Siamese bi-encoder (arch `siamese`).

    Args:
        head: `"cosine"` scores cos(u, v), so the embeddings serve search too; `"mlp"` regresses
            over the symmetric features [|u-v|, u*v, u+v].
        normalize_embeddings: L2-normalize the pooled embeddings returned by `encode`.
        loss: training loss, named after its sentence-transformers class in snake_case; it decides
            the data shape the model trains on (see `sts_models.losses`). Defaults to `mse` for the
            `mlp` head and `cosine_similarity` for the `cosine` head; every loss but `mse` trains the
            embeddings through the cosine head.
        loss_kwargs: options of the loss (`margin`, `scale`, `distance`, `symmetric`).
    """

    model_type = "sts_siamese"
    arch: ClassVar[str] = "siamese"

    head: str = option("cosine", "Siamese head.", SIAMESE_HEADS)
    normalize_embeddings: bool = option(False, "Siamese: L2-normalize `encode` output.")
    loss: str | None = option(None, LOSS_HELP, tuple(SIAMESE_LOSSES))
    loss_kwargs: dict | None = None

    def set_defaults(self) -> None:
        super().set_defaults()
        if self.loss is None:
            self.loss = "mse" if self.head == "mlp" else "cosine_similarity"

    def check_options(self) -> None:
        super().check_options()
        if self.head not in SIAMESE_HEADS:
            raise ValueError(f"head must be one of {SIAMESE_HEADS}, got {self.head!r}")
        if self.loss not in SIAMESE_LOSSES:
            raise ValueError(f"loss must be one of {tuple(SIAMESE_LOSSES)}, got {self.loss!r}")
        if (self.loss == "mse") != (self.head == "mlp"):
            raise ValueError(
                f"loss {self.loss!r} does not fit head {self.head!r}: the mlp head trains with loss 'mse', "
                "every other loss trains the embeddings through the cosine head"
            )


class STSCrossAttentionConfig(STSPairScorerConfig):
    """Cross-Attention (arch `cross`).

    Args:
        cross_attention_heads: heads of the attention between the two sentences; defaults to the
            encoder's number of attention heads.
        cosine_skip: add a learned multiple of cos(u, v), the cosine of each sentence's own pooled
            states (before cross-attention), to the head's logit. The model then starts from what a
            sentence-embedding encoder already knows (its zero-shot bi-encoder score) and the
            cross-attention and head learn the correction.
        cosine_skip_loss_weight: with `cosine_skip`, add this multiple of the CoSENT ranking loss of the
            skip's own cosine (scale 20, as the siamese `cosent` loss) to the training loss, so the two
            sentences' own embeddings keep ranking pairs by themselves. 0 (default) trains the skip only
            through the combined score.
    """

    model_type = "sts_cross_attention"
    arch: ClassVar[str] = "cross"

    cross_attention_heads: int | None = None
    cosine_skip: bool = option(
        False, "cross: add a learned multiple of the cosine of the two sentences' own embeddings to the score."
    )
    cosine_skip_loss_weight: float = option(
        0.0, "cross, with --cosine_skip: weight of a CoSENT loss on the two sentences' own cosine."
    )

    def check_options(self) -> None:
        super().check_options()
        if self.cosine_skip_loss_weight < 0 or (self.cosine_skip_loss_weight and not self.cosine_skip):
            raise ValueError(
                f"cosine_skip_loss_weight={self.cosine_skip_loss_weight} needs cosine_skip=True and a weight >= 0"
            )


__all__ = ["STSConfig", "STSPairScorerConfig", "STSRegressionConfig", "STSSiameseConfig", "STSCrossAttentionConfig"]
