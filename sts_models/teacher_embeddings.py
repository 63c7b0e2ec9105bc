"""Teachers' sentence embeddings, cached: one safetensors file per teacher, sentences and precision.

The silver pairs' neighbour search (`distillation.silver_labels`) and the in-batch similarities of a siamese student
(`distillation.teacher_sentence_embeddings`) read the same files, so a teacher embeds the training sentences once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time

import numpy as np
import safetensors
import safetensors.numpy
import torch
from huggingface_hub import constants

from .artifacts import partial_file
from .errors import STSUserError
from .inference import SentenceEncoder
from .pooling import pool

logger = logging.getLogger(__name__)


def fingerprint(parts) -> str:
    """The SHA-256 hex digest of the strings `parts` joined: the cache files' keys."""
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def default_cache_dir() -> str:
    """`$HF_HOME/sts_models/silver`: where silver labels and teacher embeddings are cached by default."""
    return os.path.join(constants.HF_HOME, "sts_models", "silver")


def teacher_device(use_cpu: bool = False) -> str:
    """Where teachers embed and label: the CPU with `use_cpu` (the run's `--use_cpu`), else the GPU when there is
    one, else the CPU."""
    return "cuda" if torch.cuda.is_available() and not use_cpu else "cpu"


def sentence_embeddings(model, sentences: list[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalized embeddings of `sentences` by `model`: a siamese model's own `encode`, else its encoder's
    token states pooled as the model pools them (a pair model still embeds single sentences this way)."""
    if isinstance(model, SentenceEncoder):
        return model.encode(sentences, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=True)
    embeddings = np.empty((len(sentences), model.hidden_size), dtype=np.float32)
    features = model.tokenize_sentences(sentences)
    with model.inference_mode():
        for index, batch in model.sorted_batches(features, batch_size):
            states = model.encoder_states(batch["input_ids"], batch["attention_mask"])
            pooled = pool(states, batch["attention_mask"], getattr(model.config, "pooling", "mean"))
            embeddings[index] = pooled.float().cpu().numpy()
    embeddings /= np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)
    return embeddings


def embeddings_digest(embeddings: np.ndarray) -> str:
    """The SHA-256 of an embedding matrix's bytes, recorded in its cache file to tell damage."""
    return hashlib.sha256(np.ascontiguousarray(embeddings).tobytes()).hexdigest()


def cached_sentence_embeddings(
    path: str,
    folder_key: str,
    sentences: list[str],
    load,
    cache_dir: str | None = None,
    batch_size: int = 64,
    bf16: bool = False,
    use_cpu: bool = False,
) -> tuple[np.ndarray, dict]:
    """The teacher in folder `path`'s L2-normalized embeddings of `sentences` (`sentence_embeddings`), from the cache
    (a safetensors file per teacher, sentences and precision) when it embedded the same sentences before, else
    computed by the model `load()` gives (on `teacher_device(use_cpu)`), under bf16 autocast if `bf16`; and what was done (`cache_file`,
    `embedding_seconds`, `reused`). The silver pairs' neighbours and the in-batch similarities share these files.
    `folder_key`: `artifacts.folder_fingerprint(path)`, which reads every weight file, so the caller that has it
    already passes it on."""
    key = fingerprint([folder_key])  # the name a cache of this teacher alone had before the files were per teacher
    name = f"embeddings-{key[:16]}-{fingerprint([json.dumps(sentences)])[:16]}{'-bf16' if bf16 else ''}.safetensors"
    cache_file = os.path.join(cache_dir or default_cache_dir(), name)
    if os.path.isfile(cache_file):
        try:
            with safetensors.safe_open(cache_file, framework="np") as cached:
                info = json.loads(cached.metadata()["info"])
                embeddings = cached.get_tensor("embeddings")
            seconds = info["embedding_seconds"]
            if embeddings.ndim != 2 or embeddings.shape[0] != len(sentences) or embeddings.dtype != np.float32:
                raise ValueError(
                    f"{embeddings.dtype} embeddings of shape {embeddings.shape}, not {len(sentences)} rows"
                )
            if info["sha256"] != embeddings_digest(embeddings):
                raise ValueError("its embeddings are not those it was written with (the file was damaged)")
            logger.info(f"Teacher embeddings read from the cache {cache_file}")
            return embeddings, {"cache_file": cache_file, "embedding_seconds": seconds, "reused": True}
        except (safetensors.SafetensorError, OSError, KeyError, TypeError, ValueError) as error:
            logger.warning(f"Embedding again: the cache file {cache_file} cannot be read ({error})")
    start = time.perf_counter()
    device = teacher_device(use_cpu)
    model = load().to(device)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        embeddings = sentence_embeddings(model, sentences, batch_size).astype(np.float32)
    if not np.isfinite(embeddings).all():  # a teacher whose weights diverged: nothing to neighbour by
        raise STSUserError(f"the teacher {path} gives non-finite embeddings (NaN or infinity): it cannot teach")
    info = {
        "teacher": path,
        "sentences": len(sentences),
        "embedding_seconds": round(time.perf_counter() - start, 2),
        "sha256": embeddings_digest(embeddings),
    }
    os.makedirs(os.path.dirname(cache_file) or ".", exist_ok=True)
    with partial_file(cache_file) as partial:  # each process its own partial file, renamed into place whole
        safetensors.numpy.save_file({"embeddings": embeddings}, partial, metadata={"info": json.dumps(info)})
    logger.info(f"The teacher {path} embedded {len(sentences)} sentences in {info['embedding_seconds']:.1f} s")
    return embeddings, {"cache_file": cache_file, "embedding_seconds": info["embedding_seconds"], "reused": False}
