"""What a local model or encoder folder must hold before transformers reads it: its config, and weights as
safetensors (a pickle runs code when it is loaded), undamaged. The loaders (`load_model`, `from_pretrained`,
`from_encoder`) check a folder here first, to refuse it in one line naming what is wrong.

This file is copied beside the weights with the model code (`save_pretrained`): it imports only its siblings.
"""

from __future__ import annotations

import os

from safetensors import SafetensorError, safe_open
from transformers.utils import (
    CONFIG_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
)

from .errors import STSUserError

# The file an ONNX export (`sts_models.backends.onnx.export_onnx`) records its graphs in, beside the STS config.
ONNX_CONFIG_NAME = "onnx_config.json"


def check_model_folder(path: str) -> None:
    """Refuse a local model or encoder folder without its config, without weights, or with a damaged
    safetensors file, in one line naming what is wrong (instead of transformers' "Unrecognized model" or a
    safetensors header error). An ONNX export (`sts-models export-onnx`) is named as one: PyTorch cannot load it."""
    if not os.path.isdir(path):
        return
    if not os.path.isfile(os.path.join(path, CONFIG_NAME)):
        raise STSUserError(
            f"{path} has no {CONFIG_NAME}: not a saved model or encoder folder (save_pretrained writes one)"
        )
    if os.path.isfile(os.path.join(path, ONNX_CONFIG_NAME)):
        raise STSUserError(
            f"{path} is an ONNX export ({ONNX_CONFIG_NAME}), not a PyTorch model: load it with "
            "sts_models.backends.onnx.ORTSTSModel.from_pretrained (sts-models predict reads it too)"
        )
    weights = sorted(name for name in os.listdir(path) if name.endswith(".safetensors"))
    if not weights and not os.path.isfile(os.path.join(path, SAFE_WEIGHTS_INDEX_NAME)):
        pickled = [name for name in (WEIGHTS_NAME, WEIGHTS_INDEX_NAME) if os.path.isfile(os.path.join(path, name))]
        if pickled:  # a pickle runs code when loaded: only safetensors weights are read
            raise STSUserError(
                f"{path} holds its weights as {pickled[0]} (a pickle), and sts-models loads safetensors only: save "
                f"them as {SAFE_WEIGHTS_NAME} (from_pretrained with use_safetensors=False, then save_pretrained, in an "
                "environment you trust)"
            )
        raise STSUserError(f"{path} has no model weights: {SAFE_WEIGHTS_NAME} is missing")
    for name in weights:
        try:
            with safe_open(os.path.join(path, name), framework="pt"):
                pass
        except SafetensorError as error:
            raise STSUserError(
                f"{os.path.join(path, name)} is damaged or not a safetensors file ({error}): copy or save it again"
            ) from None
