"""Parameter groups with their own learning rates, for the stock `Trainer` (`optimizer_cls_and_kwargs`).

The encoder is pretrained and the head starts from random weights: the head can take a larger learning
rate, and lower encoder layers (more general features) a smaller one (layer-wise learning-rate decay).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Trainer
from transformers.trainer_pt_utils import get_parameter_names

from .errors import STSUserError
from .modeling_base import STSPreTrainedModel, encoder_layers
from .training_args import STSTrainingArguments

# the names the Trainer keeps out of weight decay (biases and norms)
NO_DECAY_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


# The names under which encoders hold, on the model itself, a norm applied after their top layer (ModernBERT's
# `final_norm`, decoder-style embedding models' `norm`): it trains at the top layer's rate, not the embeddings'.
# A final norm nested deeper (XLM-RoBERTa-XL's `encoder.LayerNorm`) keeps the embeddings' rate.
FINAL_NORMS = ("final_norm", "final_layer_norm", "norm")


def parameter_learning_rates(
    model: STSPreTrainedModel, learning_rate: float, head_learning_rate: float | None, layerwise_lr_decay: float
) -> dict[str, float]:
    """Learning rate of each trainable parameter, by name.

    The top encoder layer gets `learning_rate`, each layer below it `layerwise_lr_decay` times the one
    above, the embeddings the lowest, and a norm the encoder applies after its top layer (`FINAL_NORMS`: ModernBERT's
    `final_norm`, ...) the top layer's;
    everything outside the encoder (heads, cross-attention) gets `head_learning_rate` (default `learning_rate`).
    """
    try:
        layers = encoder_layers(model.encoder) if layerwise_lr_decay != 1.0 else []
    except ValueError:  # an encoder whose layer list is not found (ALBERT shares one layer)
        raise STSUserError(
            f"--layerwise_lr_decay {layerwise_lr_decay}: the {type(model.encoder).__name__} encoder has no list of "
            "layers to decay down; leave it at 1.0"
        ) from None
    depth = {id(p): len(layers) - 1 - index for index, layer in enumerate(layers) for p in layer.parameters()}
    for name in FINAL_NORMS if layers else ():  # after the top layer, feeding the pooling: the top layer's rate
        module = getattr(model.encoder, name, None)
        depth.update({id(p): 0 for p in module.parameters()} if isinstance(module, nn.Module) else {})
    encoder_parameters = {id(p) for p in model.encoder.parameters()}
    rates = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if id(parameter) not in encoder_parameters:
            rates[name] = learning_rate if head_learning_rate is None else head_learning_rate
        else:  # embeddings and anything else outside the layers sit one step below the first layer
            rates[name] = learning_rate * layerwise_lr_decay ** depth.get(id(parameter), len(layers))
    return rates


def optimizer_cls_and_kwargs(
    model: STSPreTrainedModel, args: STSTrainingArguments
) -> tuple[type[torch.optim.Optimizer], dict] | None:
    """The optimizer `args.optim` names, over parameter groups with the learning rates above (from
    `args.head_learning_rate` and `args.layerwise_lr_decay`); None when every parameter trains at
    `args.learning_rate` (the Trainer's own optimizer then does the same)."""
    head_learning_rate, layerwise_lr_decay = args.head_learning_rate, args.layerwise_lr_decay
    if head_learning_rate is None and layerwise_lr_decay == 1.0:
        return None
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    decay = set(get_parameter_names(model, [nn.LayerNorm], NO_DECAY_PATTERNS))
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    parameters = dict(model.named_parameters())
    rates = parameter_learning_rates(model, args.learning_rate, head_learning_rate, layerwise_lr_decay)
    for name, rate in rates.items():
        groups.setdefault((rate, args.weight_decay if name in decay else 0.0), []).append(parameters[name])
    params = [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]
    return optimizer_cls, {**optimizer_kwargs, "params": params}
