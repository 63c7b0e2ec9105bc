"""The embedding settings a sentence-transformers model folder records, as the siamese config's defaults.

A sentence-transformers checkpoint (e.g. `sentence-transformers/all-MiniLM-L6-v2`, BGE, E5) is a transformers
encoder plus `modules.json`: its pooling (`1_Pooling/config.json`), its token limit (`sentence_bert_config.json`)
and whether it normalizes (a `Normalize` module). `STSSiameseModel.from_encoder` takes these as the defaults of
`pooling`, `max_seq_length` and `normalize_embeddings`, so that a model built on the checkpoint embeds as
sentence-transformers does; options given explicitly win. Modules the siamese model does not hold (`Dense`, ...),
lowercasing before a cased tokenizer and a default prompt are named in a warning: its embeddings differ there.
"""

from __future__ import annotations

import json
import logging
import os

from huggingface_hub import try_to_load_from_cache

from .configuration import usable_positions
from .hub import bundled_model_path, resolve_model_name_or_path
from .registry import POOLING_MODES

logger = logging.getLogger(__name__)

# sentence-transformers' pooling flags -> our pooling modes (the modes it has that we lack are left out)
POOLING_FLAGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}
# the module types the siamese model holds: the encoder, its pooling, and normalization
HELD_MODULES = ("Transformer", "Pooling", "Normalize")


def _read_json(folder: str, name: str):
    """A JSON file of a local model folder, or of a Hub model id (downloaded, as transformers finds a model's
    files: `cached_file`); None where it is missing or cannot be fetched (the config's defaults then stand)."""
    from transformers.utils import cached_file

    try:
        path = cached_file(
            folder, name, _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False
        )
    except (OSError, ValueError):
        return None
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        logger.warning(f"{name} of {folder} cannot be read: its sentence-transformers settings are not used")
        return None


def _pooling(config: dict) -> str | None:
    mode = config.get("pooling_mode")  # newer sentence-transformers write one name
    modes = [mode] if isinstance(mode, str) else [ours for flag, ours in POOLING_FLAGS.items() if config.get(flag)]
    others = [
        key for key, value in config.items() if key.startswith("pooling_mode_") and value and key not in POOLING_FLAGS
    ]
    if len(modes) == 1 and modes[0] in POOLING_MODES and not others:
        return modes[0]
    logger.warning(f"sentence-transformers pooling {config} has no single equivalent among {POOLING_MODES}")
    return None


def _max_seq_length(folder: str, loaded: str) -> int | None:
    """The token limit sentence-transformers truncates at (its `Transformer` module): `sentence_bert_config.json`'s
    `max_seq_length`, else the tokenizer's `model_max_length` capped at the encoder's positions (all of them where the
    tokenizer sets no limit). Held to the positions tokens can take (`usable_positions`, of the config in `loaded`,
    the folder the model is read from), where sentence-transformers would fail on a longer input; None where the
    folder's value is no positive number of tokens."""
    config = _read_json(loaded, "config.json") or {}
    positions = config.get("max_position_embeddings")
    usable = usable_positions(config.get("model_type"), positions, config.get("pad_token_id"))
    length = (_read_json(folder, "sentence_bert_config.json") or {}).get("max_seq_length")
    if length is None:
        length = (_read_json(folder, "tokenizer_config.json") or {}).get("model_max_length", usable)
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        return None
    return length if usable is None else min(length, usable)


def _tokenizer_lowercases(folder: str) -> bool:
    """Whether the folder's tokenizer lowercases text itself: `do_lower_case` in its config where set, else a
    lowercasing normalizer in its `tokenizer.json` (a `BertNormalizer` with `lowercase`, or a `Lowercase` step)."""
    configured = (_read_json(folder, "tokenizer_config.json") or {}).get("do_lower_case")
    if isinstance(configured, bool):  # (transformers applies it over the normalizer's)
        return configured

    def lowercases(normalizer) -> bool:
        if not isinstance(normalizer, dict):
            return False
        steps = normalizer.get("normalizers") or []
        return (
            normalizer.get("type") == "Lowercase" or normalizer.get("lowercase") is True or any(map(lowercases, steps))
        )

    return lowercases((_read_json(folder, "tokenizer.json") or {}).get("normalizer"))


def _warn_unapplied(name_or_path: str, folder: str) -> None:
    """A warning for each setting sentence-transformers applies to the text before its tokenizer that the siamese
    model does not: lowercasing (`do_lower_case`, where the tokenizer keeps case) and a default prompt."""
    lowercase = (_read_json(folder, "sentence_bert_config.json") or {}).get("do_lower_case") is True
    if lowercase and not _tokenizer_lowercases(folder):
        logger.warning(
            f"{name_or_path} lowercases sentences before its cased tokenizer (do_lower_case in "
            "sentence_bert_config.json), which the siamese model does not: lowercase them yourself, or its embeddings "
            "of text with capitals differ from sentence-transformers'"
        )
    settings = _read_json(folder, "config_sentence_transformers.json") or {}
    prompt = settings.get("default_prompt_name")
    if prompt:
        text = (settings.get("prompts") or {}).get(prompt)
        shown = f"{prompt!r}" + (f" ({text!r})" if text is not None else "")
        logger.warning(
            f"{name_or_path} puts its prompt {shown} before every sentence (default_prompt_name), which "
            "the siamese model does not: prepend it yourself, or its embeddings differ from sentence-transformers'"
        )


def _offline_modules(model_id: str, snapshot: str) -> tuple[str, list | None]:
    """For a Hub id read offline from `snapshot` (the local cache's, which holds the files that were fetched, maybe
    not `modules.json`): the bundled copy's folder and modules where it has them; else the snapshot, with a warning
    where the cache cannot tell whether the model has a `modules.json` at all."""
    bundled = bundled_model_path(model_id)
    if bundled is not None and os.path.isfile(os.path.join(bundled, "modules.json")):
        return bundled, _read_json(bundled, "modules.json")
    if try_to_load_from_cache(model_id, "modules.json") is None:  # neither cached nor known to be missing
        logger.warning(
            f"{model_id}: its cached copy {snapshot} has no modules.json, so whether it is a sentence-transformers "
            "model with its own pooling and token limit cannot be told offline; the config's defaults are used"
        )
    return snapshot, None


def sentence_transformers_settings(name_or_path: str) -> dict:
    """`pooling`, `max_seq_length` and `normalize_embeddings` as the sentence-transformers folder (or Hub id)
    `name_or_path` records them; `{}` for a plain transformers checkpoint."""
    folder = loaded = resolve_model_name_or_path(name_or_path)
    modules = _read_json(folder, "modules.json")
    if modules is None and folder != name_or_path and not os.path.isdir(name_or_path):
        folder, modules = _offline_modules(name_or_path, folder)
    if not isinstance(modules, list):
        return {}
    settings = {}
    kinds = {module.get("type", "").rsplit(".", 1)[-1]: module.get("path", "") for module in modules}
    if "Pooling" in kinds:
        pooling = _pooling(_read_json(folder, f"{kinds['Pooling']}/config.json") or {})
        if pooling is not None:
            settings["pooling"] = pooling
    length = _max_seq_length(folder, loaded)
    if length is not None:
        settings["max_seq_length"] = length
    settings["normalize_embeddings"] = "Normalize" in kinds
    _warn_unapplied(name_or_path, folder)
    others = [kind for kind in kinds if kind not in HELD_MODULES]
    if others:
        logger.warning(
            f"{name_or_path} has sentence-transformers modules that the siamese model does not hold "
            f"({', '.join(others)}): its embeddings differ from that model's"
        )
    return settings
