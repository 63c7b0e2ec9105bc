"""The arch ids (`bert`, `siamese`, `cross`) and their registration with the Auto classes."""

from __future__ import annotations

from transformers import AutoConfig, AutoModel

from .modeling_base import STSPreTrainedModel
from .modeling_cross_attention import STSCrossAttentionModel
from .modeling_regression import STSRegressionModel
from .modeling_siamese import STSSiameseModel

ARCHITECTURES: dict[str, type[STSPreTrainedModel]] = {
    "bert": STSRegressionModel,
    "siamese": STSSiameseModel,
    "cross": STSCrossAttentionModel,
}


def get_model_class(arch: str) -> type[STSPreTrainedModel]:
    """The model class of an arch id."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown arch {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


def register_auto_classes() -> None:
    """Make `AutoConfig`/`AutoModel` know every STS model, and make `save_pretrained` write the code
    and `auto_map` so a saved folder also loads with `trust_remote_code=True` without this package."""
    for model_class in ARCHITECTURES.values():
        config_class = model_class.config_class
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        config_class.register_for_auto_class("AutoConfig")
        model_class.register_for_auto_class("AutoModel")
