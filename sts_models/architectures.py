"""The arch ids (`bert`, `siamese`, `cross`) and their registration with the Auto classes."""

from __future__ import annotations

import json
import logging
import os

import transformers
from transformers import AutoConfig, AutoModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.utils import CONFIG_NAME

from .errors import STSUserError, plain_encoder
from .hub import is_hub_id, resolve_model_name_or_path
from .losses import LOSSES, loss_option_names
from .model_folder import check_model_folder
from .modeling_base import STSPreTrainedModel
from .modeling_cross_attention import STSCrossAttentionModel
from .modeling_regression import STSRegressionModel
from .modeling_siamese import STSSiameseModel
from .pipeline import register_pipeline

logger = logging.getLogger(__name__)

ARCHITECTURES: dict[str, type[STSPreTrainedModel]] = {
    "bert": STSRegressionModel,
    "siamese": STSSiameseModel,
    "cross": STSCrossAttentionModel,
}
# the `model_type` a saved STS model's config.json names -> its arch id
MODEL_TYPES: dict[str, str] = {
    model_class.config_class.model_type: arch for arch, model_class in ARCHITECTURES.items()
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
    register_pipeline(STSPreTrainedModel)  # pipeline("sentence-similarity", model=...)


def check_options_fit(model_class: type[STSPreTrainedModel], config_options: dict) -> None:
    """Refuse an option of another architecture (e.g. `symmetric` for a `siamese` model), naming the one it
    belongs to."""
    known = model_class.config_class.option_names()
    for name, value in config_options.items():
        if name not in known:
            owners = [arch for arch, other in ARCHITECTURES.items() if name in other.config_class.option_names()]
            given = f"{name}={value!r}"
            if name == "loss_kwargs":  # as the command line gives them
                given = " ".join(f"--loss_{key} {option}" for key, option in value.items())
            raise STSUserError(
                f"{given} does not apply to the {model_class.config_class.arch} arch: it is an option of "
                f"{' and '.join(owners) or 'no arch'}"
            )


def with_saved_loss_options(saved_config, options: dict) -> dict:
    """`options` over a saved siamese model's loss options: an option left out keeps its saved value, and a saved one
    that a new `loss` takes no part of is dropped (and logged), instead of all being replaced by those given."""
    saved_kwargs = getattr(saved_config, "loss_kwargs", None) or {}
    loss = options.get("loss") or saved_config.loss
    if not saved_kwargs or loss not in LOSSES:  # an unknown loss: the config refuses it in one line
        return options
    kept = {name: value for name, value in saved_kwargs.items() if name in loss_option_names(loss)}
    if len(kept) < len(saved_kwargs):
        dropped = ", ".join(f"{name}={value!r}" for name, value in saved_kwargs.items() if name not in kept)
        logger.info(f"The saved model's loss options {dropped} are dropped: loss {loss!r} takes none of them")
    return {**options, "loss_kwargs": {**kept, **(options.get("loss_kwargs") or {})} or None}


def check_model_type(path: str, saved: dict[str, str]) -> None:
    """Refuse a local folder whose config.json names a `model_type` that neither transformers nor this package
    knows, in one line naming it (transformers would ask whether to run the folder's own code, or fail unnamed)."""
    config_file = os.path.join(path, CONFIG_NAME)
    if not os.path.isfile(config_file):
        return
    try:
        with open(config_file, encoding="utf-8") as handle:
            model_type = json.load(handle).get("model_type")
    except (OSError, ValueError, AttributeError) as error:
        raise STSUserError(f"{config_file} is not a JSON object of a model config ({error})") from None
    if model_type is not None and model_type not in saved and model_type not in CONFIG_MAPPING_NAMES:
        raise STSUserError(
            f"{config_file}: model_type {model_type!r} is none that transformers {transformers.__version__} or "
            f"sts-models knows (an STS model is one of {', '.join(saved)}); upgrade transformers if it is newer"
        )


def read_config(path: str):
    """`AutoConfig.from_pretrained(path)`, never running a folder's own code; one line for a config.json with a field
    of the wrong shape (e.g. `"encoder": "bert"`), where transformers fails with a traceback."""
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=False)
    except (TypeError, AttributeError, KeyError) as error:
        raise STSUserError(f"{path}: its {CONFIG_NAME} cannot be read ({type(error).__name__}: {error})") from None


def saved_config(model_name_or_path: str):
    """The config of the saved STS model at `model_name_or_path`, or None for a plain encoder (reads its config only,
    never running a folder's own code)."""
    config = read_config(resolve_model_name_or_path(model_name_or_path))
    return config if config.model_type in MODEL_TYPES else None


def saved_config_or_none(model_name_or_path: str):
    """`saved_config`, or None also where the folder or Hub id cannot be read (`load_model` then names why)."""
    try:
        return saved_config(model_name_or_path)
    except (STSUserError, OSError, ValueError):
        return None


def saved_arch(model_name_or_path: str) -> str | None:
    """The arch of the saved STS model at `model_name_or_path`, or None for a plain encoder (`saved_config`)."""
    config = saved_config(model_name_or_path)
    return config.arch if config is not None else None


def load_model(arch: str | None, model_name_or_path: str, **config_options) -> STSPreTrainedModel:
    """A saved STS model of arch `arch` (options override its config), or a new one around any
    pretrained encoder. `None` options are left at their defaults. A Hub id resolves as in
    `from_encoder` (`sts_models.hub.resolve_model_name_or_path`).

    Bad input raises `STSUserError`: a missing folder, one without its config or weights or with damaged
    weights, a Hub id that cannot be reached, an arch that does not match the saved model, options of another
    arch or that the model refuses (the config's `ValueError`), a folder without tokenizer files.
    """
    config_options = {key: value for key, value in config_options.items() if value is not None}
    path = resolve_model_name_or_path(model_name_or_path)
    check_model_folder(path)
    saved = MODEL_TYPES
    check_model_type(path, saved)
    try:
        # never the custom code of a folder's `auto_map` (nor a prompt asking whether to run it)
        saved_config = read_config(path)
        model_type = saved_config.model_type
        if model_type in saved and arch is not None and saved[model_type] != arch:
            raise STSUserError(f"{path} holds a '{saved[model_type]}' model, not '--arch {arch}'")
        if model_type not in saved and arch is None:
            raise plain_encoder(
                path,
                f"choose an architecture with --arch {{{','.join(ARCHITECTURES)}}} to build one on it (a flag of "
                "sts-models train and export-onnx)",
            )
        check_options_fit(get_model_class(saved.get(model_type, arch)), config_options)
        if model_type in saved:
            config_options = with_saved_loss_options(saved_config, config_options)
            model = AutoModel.from_pretrained(path, trust_remote_code=False, **config_options)
            if is_hub_id(model_name_or_path) and not os.path.isdir(model_name_or_path):
                model.model_card_data.loaded_from = model_name_or_path  # the base of a model trained on from it
        else:
            model = get_model_class(arch).from_encoder(model_name_or_path, **config_options)
        # Load the tokenizer now (a folder without tokenizer files is refused before any work) and check
        # that max_seq_length leaves it room for text.
        model.sequence_length(pair=model.encodes_pairs_jointly)
    except STSUserError:
        raise
    except (ValueError, OSError) as error:  # an option the config or the model refuses, a file it lacks: named
        raise STSUserError(" ".join(str(error).split())) from None
    return model
