"""How an ONNX export is checked against the PyTorch model it came from: the pairs it is traced and checked on, and
the difference allowed (`onnx_export` runs the check on every graph it writes)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..configuration import STSRegressionConfig
from ..data_collator import DataCollatorForSentencePairs
from ..errors import STSUserError

if TYPE_CHECKING:
    from ..modeling_base import STSPreTrainedModel

# How far a float32 graph may be from PyTorch on the check batch (absolute, relative past an output of 1:
# `max_difference`); a fused graph further off than this is replaced by the unfused one.
FLOAT32_TOLERANCE = 1e-4
# Pairs traced and checked: lengths differ on each side and jointly, so every input is padded somewhere.
CHECK_PAIRS = [
    ("A man is playing a guitar on the stage tonight.", "Someone plays music."),
    ("A cat.", "A small black cat is sleeping on the warm windowsill in the sun."),
    ("Hello.", "Hi."),
]


def check_features(model: STSPreTrainedModel) -> dict:
    """Tokenized `CHECK_PAIRS`, padded (one dict of lists per column), the way `predict` batches them."""
    features = model.tokenize([a for a, _ in CHECK_PAIRS], [b for _, b in CHECK_PAIRS])
    if isinstance(model.config, STSRegressionConfig):
        features = {key: value for key, value in features.items() if not key.endswith("_swapped")}
    rows = [dict(zip(features, values)) for values in zip(*features.values())]
    batch = DataCollatorForSentencePairs.for_tokenizer(model.tokenizer)(rows)
    return {key: value.tolist() for key, value in batch.items()}


def max_difference(session, graph: dict) -> float:
    """How far the ONNX graph is from the PyTorch module, on the check batch and on its last row alone (another
    batch size and sequence length than traced): the largest absolute difference, measured relative to the output
    where that is above 1 (embeddings or logits in the hundreds round to more than FLOAT32_TOLERANCE); infinite
    where the graph gives NaN or infinity and PyTorch does not. PyTorch outputs that are not finite (weights of a
    run that diverged) are refused in one line: no graph could be checked against them."""
    worst = 0.0
    for rows in (slice(None), slice(-1, None)):
        inputs = {name: tensor[rows] for name, tensor in graph["inputs"].items()}
        for mask_name in [name for name in inputs if name.startswith("attention_mask")]:
            # cut each sequence to its longest row: the last row alone then has no padding at all
            suffix, length = mask_name[len("attention_mask") :], int(inputs[mask_name].sum(1).max())
            for field in ("input_ids", "attention_mask", "token_type_ids"):
                if field + suffix in inputs:
                    inputs[field + suffix] = inputs[field + suffix][:, :length]
        device = next(graph["module"].parameters()).device
        with torch.no_grad():
            expected = graph["module"](*(tensor.to(device) for tensor in inputs.values())).double().cpu().numpy()
        if not np.isfinite(expected).all():
            raise STSUserError(
                f"the model's own {graph['outputs'][0]} on the check pairs are not finite (NaN or infinity): its "
                "weights are not finite (a run that diverged?), so there is nothing to export"
            )
        # the graph's own inputs only: the exporter drops one the module never reads (`token_type_ids` of an encoder
        # without token types, e.g. DeBERTa-v3's)
        wanted = {node.name for node in session.get_inputs()}
        fed = {name: tensor.numpy() for name, tensor in inputs.items() if name in wanted}
        got = session.run(None, fed)[0].astype(np.float64)
        if not np.isfinite(got).all():
            return math.inf
        worst = max(worst, float((np.abs(got - expected) / np.maximum(1.0, np.abs(expected))).max()))
    return worst
