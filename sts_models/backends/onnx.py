"""ONNX Runtime serving of an exported STS model (see `onnx_export` for the export and what a folder holds).

    from sts_models.backends.onnx import ORTSTSModel, export_onnx

    export_onnx(model, "model-onnx", quantize="int8")
    onnx_model = ORTSTSModel.from_pretrained("model-onnx")
    onnx_model.predict([("A man plays a guitar.", "Someone plays an instrument.")])

The loops (`predict`, `encode`, search) are `sts_models.inference`'s, around ONNX Runtime sessions.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from typing import Sequence

import numpy as np
import torch
from transformers import AutoConfig, PreTrainedTokenizerBase
from transformers.utils import CONFIG_NAME

from ..artifacts import check_file_checksum
from ..configuration import STSConfig, STSCrossAttentionConfig, STSRegressionConfig, STSSiameseConfig
from ..errors import STSUserError
from ..inference import PairScorer, SentenceEncoder, split_swapped
from ..tokenization import load_tokenizer
from .onnx_export import (
    FORMAT_VERSION,
    HEAD_FILE,
    MODEL_FILE,
    ONNX_CONFIG_NAME,
    QUANTIZATIONS,
    _session,
    export_onnx,
    import_onnx_dependencies,
)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * values))  # the logistic function, without overflow


class ORTSTSModel(PairScorer):
    """An exported STS model served by ONNX Runtime, with the PyTorch model's `predict` (and, for `siamese`,
    `encode`, `similarity`, `semantic_search`, `paraphrase_mining`): the loops of `sts_models.inference`, around
    ONNX Runtime sessions.

    `ORTSTSModel.from_pretrained(folder)` returns the class of the folder's architecture, as `AutoModel` does.
    """

    config_class: type[STSConfig] = STSConfig
    graph_files: tuple[str, ...] = (MODEL_FILE,)  # the graphs of the export that this class runs
    device = torch.device("cpu")  # where `sorted_batches` puts batches before they go to ONNX Runtime

    def __init__(self, config: STSConfig, sessions: dict, tokenizer: PreTrainedTokenizerBase, onnx_config: dict):
        self.config = config
        self.sessions = sessions
        self.tokenizer = tokenizer
        self.onnx_config = onnx_config

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        providers: str | Sequence[str] | None = None,
        session_options=None,
    ) -> ORTSTSModel:
        """Load a folder written by `export_onnx`, once each graph file is checked against the checksum that
        `onnx_config.json` recorded (a damaged or swapped file is refused in one line naming it).

        Args:
            pretrained_model_name_or_path: the local folder.
            providers: ONNX Runtime execution providers, in order of preference (or one, as a string); default CPU.
            session_options: an `onnxruntime.SessionOptions` (threads, ...); default ONNX Runtime's, which
                apply all graph optimizations.
        """
        import_onnx_dependencies()
        folder = str(pretrained_model_name_or_path)
        onnx_config_path = os.path.join(folder, ONNX_CONFIG_NAME)
        if not os.path.isfile(onnx_config_path):
            raise STSUserError(f"{folder} is not an exported ONNX model: it has no {ONNX_CONFIG_NAME}")
        with open(onnx_config_path, encoding="utf-8") as handle:
            try:
                onnx_config = json.load(handle)
            except json.JSONDecodeError as error:
                raise STSUserError(
                    f"{onnx_config_path} is not valid JSON ({error.msg}, line {error.lineno})"
                ) from None
            except UnicodeDecodeError as error:
                raise STSUserError(
                    f"{onnx_config_path} is not UTF-8 text (byte {error.start + 1}): export the model again"
                ) from None
        if not isinstance(onnx_config, dict):
            raise STSUserError(f"{onnx_config_path} is not an export record (a JSON object): export the model again")
        version = onnx_config.get("format_version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise STSUserError(f"{onnx_config_path}: format_version {version!r} is no number: export the model again")
        if version > FORMAT_VERSION:
            raise STSUserError(f"{folder} was exported by a newer sts-models; upgrade to load it")
        if not isinstance(onnx_config.get("files"), dict):
            raise STSUserError(f"{onnx_config_path} lists no graph files (no files entry): export the model again")
        for name, entry in onnx_config["files"].items():  # exports made before checksums were recorded have none
            path = os.path.join(folder, name)
            if isinstance(entry, dict) and "checksum" in entry and os.path.isfile(path):
                check_file_checksum(path, entry["checksum"], onnx_config_path, "export the model again")
        config_path = os.path.join(folder, CONFIG_NAME)
        if not os.path.isfile(config_path):
            raise STSUserError(f"{folder} has no {CONFIG_NAME} beside its graphs: export the model again")
        try:
            config = AutoConfig.from_pretrained(folder)
        except (OSError, ValueError) as error:
            reason = " ".join(str(error).split())
            raise STSUserError(
                f"{config_path} cannot be read as a model config ({reason}): export the model again"
            ) from None
        model_class = next(
            (
                c
                for c in (ORTSTSRegressionModel, ORTSTSSiameseModel, ORTSTSCrossAttentionModel)
                if isinstance(config, c.config_class)
            ),
            None,
        )
        if model_class is None:
            raise STSUserError(f"{folder} holds a {type(config).__name__}, not an STS model config")
        if onnx_config.get("arch", config.arch) != config.arch:  # a config.json copied from another export
            raise STSUserError(
                f"{config_path} is a '{config.arch}' model's config, and the graphs of {folder} a "
                f"'{onnx_config['arch']}' model's ({ONNX_CONFIG_NAME}): export the model again"
            )
        if cls is not ORTSTSModel and not issubclass(model_class, cls):
            raise STSUserError(f"{folder} holds a '{config.arch}' model, not one for {cls.__name__}")
        missing = [name for name in model_class.graph_files if name not in onnx_config["files"]]
        if missing:
            raise STSUserError(
                f"{onnx_config_path} lists no {missing[0]}, which a '{config.arch}' model runs: export the model again"
            )
        sessions = {
            name: _session(os.path.join(folder, name), providers, session_options) for name in onnx_config["files"]
        }
        tokenizer = load_tokenizer(folder, config=config.encoder)  # refuses a folder without its tokenizer files
        return model_class(config, sessions, tokenizer, onnx_config)

    def __repr__(self) -> str:
        precision = self.onnx_config.get("quantize") or "float32"
        return f"{type(self).__name__}(arch={self.config.arch!r}, {precision}, files={list(self.sessions)})"

    @property
    def hidden_size(self) -> int:
        return self.config.encoder.hidden_size

    def _run(self, name: str, batch: dict) -> np.ndarray:
        """Run one graph on the batch entries it takes (torch tensors or arrays, by input name)."""
        session = self.sessions[name]
        feed = {}
        for node in session.get_inputs():
            value = batch[node.name]
            feed[node.name] = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        return session.run(None, feed)[0]

    def inference_mode(self):
        return nullcontext()


class ORTSTSRegressionModel(ORTSTSModel):
    """arch `bert` on ONNX Runtime: `[CLS] s1 [SEP] s2 [SEP]`, both orders averaged when `config.symmetric`."""

    config_class = STSRegressionConfig
    encodes_pairs_jointly = True

    def batch_scores(self, batch: dict) -> np.ndarray:
        plain, swapped = split_swapped(batch)
        if swapped is None:
            return _sigmoid(self._run(MODEL_FILE, plain))
        if all(plain[key].shape == swapped[key].shape for key in plain):
            # both orders have the same length (as usual): one run over the two stacked batches
            logits, logits_swapped = np.split(
                self._run(MODEL_FILE, {k: torch.cat([plain[k], swapped[k]]) for k in plain}), 2
            )
        else:
            logits, logits_swapped = self._run(MODEL_FILE, plain), self._run(MODEL_FILE, swapped)
        return _sigmoid((logits + logits_swapped) / 2)


class ORTSTSCrossAttentionModel(ORTSTSModel):
    """arch `cross` on ONNX Runtime: the whole pair graph, both padding masks as inputs."""

    config_class = STSCrossAttentionConfig

    def batch_scores(self, batch: dict) -> np.ndarray:
        return self._run(MODEL_FILE, batch)


class ORTSTSSiameseModel(SentenceEncoder, ORTSTSModel):
    """arch `siamese` on ONNX Runtime: `encode` runs the embedding graph; pairs are scored by the head graph
    on the embeddings of their distinct sentences, each encoded once."""

    graph_files = (MODEL_FILE, HEAD_FILE)

    config_class = STSSiameseConfig

    def model_fingerprint(self) -> str | None:
        """The fingerprint of the PyTorch model this was exported from (recorded in `onnx_config.json`; the same
        quantity as its `model_fingerprint()`): an index built by either one serves the other."""
        return (self.onnx_config.get("source") or {}).get("fingerprint")

    def embed_batch(self, batch: dict) -> np.ndarray:
        return self._run(MODEL_FILE, batch)

    def embedding_scores(self, embeddings_1: np.ndarray, embeddings_2: np.ndarray) -> np.ndarray:
        return self._run(HEAD_FILE, {"embeddings_1": embeddings_1, "embeddings_2": embeddings_2})


__all__ = [
    "ONNX_CONFIG_NAME",
    "QUANTIZATIONS",
    "ORTSTSCrossAttentionModel",
    "ORTSTSModel",
    "ORTSTSRegressionModel",
    "ORTSTSSiameseModel",
    "export_onnx",
    "import_onnx_dependencies",
]
