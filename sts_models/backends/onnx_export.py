"""Export an STS model to ONNX for ONNX Runtime (`sts_models.backends.onnx` serves it), optionally in int8.

What is exported, per architecture (dynamic batch and sequence axes everywhere):

- `siamese`: `model.onnx`, tokens -> pooled sentence embedding (`encode`), and `head.onnx`, two embeddings ->
  pair score (cosine or the MLP head; always float32, it is tiny);
- `bert`: `model.onnx`, one joint sequence -> the head's logit; `symmetric` models run it on both orders and
  average the logits, as the PyTorch model does;
- `cross`: `model.onnx`, both sentences with their padding masks -> pair score.

The folder also holds `config.json`, the tokenizer and `onnx_config.json` (what was exported, from which model,
how, the checksum of each graph, and how far it is from PyTorch on a check batch), so it loads on its own.

The graphs come from `torch.onnx.export`'s TorchScript exporter with eager attention, in standard ONNX operators:
the BERT graph whose attention ONNX Runtime's fusions recognize (the dynamo exporter's graph keeps attention
unfused and ran slower). ONNX Runtime fuses it when it loads it; `optimize=True` fuses it ahead of time with
`onnxruntime.transformers.optimizer` instead (ONNX Runtime's own operators; not faster on CPU in our
measurements). `quantize="int8"` is ONNX Runtime's dynamic quantization (`onnxruntime.quantization.quantize_dynamic`):
int8 weights per channel, symmetric, on 7 bits (`reduce_range`), activations quantized at run time. Only the
architecture files' public methods are traced; none of them knows about ONNX.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from ..artifacts import check_export_folder, file_checksum, model_fingerprint, write_json, written_whole
from ..configuration import STSConfig, STSCrossAttentionConfig, STSRegressionConfig, STSSiameseConfig
from ..errors import STSUserError
from ..model_folder import ONNX_CONFIG_NAME
from ..modeling_base import STSPreTrainedModel, evaluation_mode
from ..modeling_siamese import STSSiameseModel
from .onnx_check import FLOAT32_TOLERANCE, check_features, max_difference
from .onnx_quantize import check_quantization_options, quantize_graph

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
HEAD_FILE = "head.onnx"
QUANTIZATIONS = ("int8",)
OPSET = 17
FORMAT_VERSION = 1
INSTALL_HINT = "pip install 'sts-models[onnx]'"


def import_onnx_dependencies():
    """`onnx` and `onnxruntime`, or one ImportError that says which extra installs them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"ONNX export and serving need {error.name or 'onnx'}: {INSTALL_HINT}") from None
    return onnx, onnxruntime


class _Embedder(nn.Module):
    """siamese: tokens -> pooled sentence embedding (before any normalization, as `STSSiameseModel.embed`)."""

    def __init__(self, model: STSSiameseModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model.embed(input_ids, attention_mask)


class _SiameseHead(nn.Module):
    """siamese: two batches of embeddings -> pair score on the 0-1 training scale (`STSSiameseModel.score`)."""

    def __init__(self, model: STSSiameseModel):
        super().__init__()
        self.model = model

    def forward(self, embeddings_1, embeddings_2):
        return self.model.score(embeddings_1, embeddings_2)


class _PairLogits(nn.Module):
    """bert: one joint sequence -> the regression head's logit (`STSRegressionModel.pair_logits`)."""

    def __init__(self, model, with_token_type_ids: bool):
        super().__init__()
        self.model = model
        self.with_token_type_ids = with_token_type_ids

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return self.model.pair_logits(input_ids, attention_mask, token_type_ids if self.with_token_type_ids else None)


class _PairScores(nn.Module):
    """cross: both sentences and their padding masks -> pair score on the 0-1 scale (the model's forward)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids_1, attention_mask_1, input_ids_2, attention_mask_2):
        return self.model(input_ids_1, attention_mask_1, input_ids_2, attention_mask_2).scores


@contextmanager
def _eager_attention(model: STSPreTrainedModel) -> Iterator[None]:
    """The encoder on eager attention while tracing (the graph ONNX Runtime's BERT fusion recognizes),
    its own implementation restored after."""
    previous = model.encoder.config._attn_implementation
    try:
        if previous != "eager" and hasattr(model.encoder, "set_attn_implementation"):
            model.encoder.set_attn_implementation("eager")
        yield
    finally:
        if model.encoder.config._attn_implementation != previous and previous is not None:
            model.encoder.set_attn_implementation(previous)


def _separate_key_and_value(module: nn.MultiheadAttention, args: tuple, kwargs: dict):
    """Forward pre-hook: pass `nn.MultiheadAttention` a copy of `value` when it is `key` (and of `key` when it
    is `query`). Its packed projection for that case reads back a size the TorchScript tracer records as a
    constant, so the graph would only run at the traced key length; with distinct tensors it projects key
    and value separately, with the same weights and the same result."""
    names = ("query", "key", "value")
    tensors = [args[i] if i < len(args) else kwargs.get(name) for i, name in enumerate(names)]
    if tensors[2] is not None and tensors[2] is tensors[1]:
        tensors[2] = tensors[2] * 1.0
    if tensors[1] is not None and tensors[1] is tensors[0]:
        tensors[1] = tensors[1] * 1.0
    positional = min(len(args), 3)
    kwargs = {**kwargs, **{name: tensors[i] for i, name in enumerate(names) if name in kwargs}}
    return (*tensors[:positional], *args[3:]), kwargs


@contextmanager
def _traceable(model: nn.Module) -> Iterator[None]:
    """`_separate_key_and_value` on every `nn.MultiheadAttention` of `model` while it is traced."""
    hooks = [
        module.register_forward_pre_hook(_separate_key_and_value, with_kwargs=True)
        for module in model.modules()
        if isinstance(module, nn.MultiheadAttention)
    ]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


@contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence what tracing a transformers model always says (tracer, deprecation and opset notes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=r".*advanced indexing in opset.*")
        yield


def _graphs(model: STSPreTrainedModel, features: dict) -> list[dict]:
    """What to export for `model`: one entry per ONNX file (module, input names and example inputs, outputs,
    dynamic axes, and whether ONNX Runtime's transformer fusion and int8 apply to it).

    The wrapper modules are put in eval mode: the exporter restores the mode it found on the wrapper, and a new
    module's is training, which would switch the model's dropout on."""
    batch = {key: torch.tensor(value) for key, value in features.items()}
    config = model.config
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    if isinstance(config, STSSiameseConfig):
        ids, mask = batch["input_ids_1"], batch["attention_mask_1"]
        with torch.no_grad():
            embeddings = model.embed(ids.to(model.device), mask.to(model.device)).float().cpu()
        return [
            dict(
                file=MODEL_FILE,
                module=_Embedder(model).eval(),
                inputs={"input_ids": ids, "attention_mask": mask},
                outputs=["sentence_embedding"],
                axes={**axes, "sentence_embedding": {0: "batch"}},
                encoder=True,
            ),
            dict(
                file=HEAD_FILE,
                module=_SiameseHead(model).eval(),
                inputs={"embeddings_1": embeddings, "embeddings_2": embeddings.flip(0)},
                outputs=["scores"],
                axes={"embeddings_1": {0: "batch"}, "embeddings_2": {0: "batch"}, "scores": {0: "batch"}},
                encoder=False,
            ),
        ]
    if isinstance(config, STSRegressionConfig):
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            inputs["token_type_ids"] = batch["token_type_ids"]
            axes["token_type_ids"] = {0: "batch", 1: "sequence"}
        return [
            dict(
                file=MODEL_FILE,
                module=_PairLogits(model, "token_type_ids" in inputs).eval(),
                inputs=inputs,
                outputs=["logits"],
                axes={**axes, "logits": {0: "batch"}},
                encoder=True,
            )
        ]
    if isinstance(config, STSCrossAttentionConfig):
        inputs = {key: batch[key] for key in ("input_ids_1", "attention_mask_1", "input_ids_2", "attention_mask_2")}
        axes = {key: {0: "batch", 1: f"sequence{key[-2:]}"} for key in inputs}
        return [
            dict(
                file=MODEL_FILE,
                module=_PairScores(model).eval(),
                inputs=inputs,
                outputs=["scores"],
                axes={**axes, "scores": {0: "batch"}},
                encoder=True,
            )
        ]
    raise TypeError(f"Cannot export {type(model).__name__}: not an STS model")


def _session(path: str, providers: str | Sequence[str] | None = None, session_options=None):
    _, ort = import_onnx_dependencies()
    if isinstance(providers, str):  # one provider (`list` would split its name into letters)
        providers = [providers]
    if session_options is not None and not isinstance(session_options, ort.SessionOptions):
        raise STSUserError(
            f"session_options must be an onnxruntime.SessionOptions, got {type(session_options).__name__} (set its "
            "attributes, e.g. options.intra_op_num_threads = 1)"
        )
    options = session_options if session_options is not None else ort.SessionOptions()
    if not os.path.isfile(path):
        raise STSUserError(f"ONNX graph not found: {path}")
    state = ort.capi.onnxruntime_pybind11_state
    try:
        return ort.InferenceSession(path, options, providers=list(providers or ["CPUExecutionProvider"]))
    except (state.InvalidProtobuf, state.InvalidGraph, state.InvalidArgument, state.Fail) as error:  # damaged, 0 bytes
        raise STSUserError(f"{path} cannot be loaded by ONNX Runtime: {' '.join(str(error).split())[:300]}") from None


@contextmanager
def _temporary_files_in(folder: str) -> Iterator[None]:
    """`tempfile`'s default folder set to `folder` for the block: ONNX Runtime's optimizer and quantizer make
    temporary folders of their own (`tempfile.TemporaryDirectory()`, tens of MB), which a killed export would
    otherwise leave in the system's temporary folder."""
    previous, tempfile.tempdir = tempfile.tempdir, folder
    try:
        yield
    finally:
        tempfile.tempdir = previous


def _fuse(source: str, target: str, encoder_config) -> dict:
    """ONNX Runtime's offline BERT fusion of `source` into `target`; the fused operators it made."""
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        source,
        model_type="bert",
        num_heads=getattr(encoder_config, "num_attention_heads", 0) or 0,
        hidden_size=getattr(encoder_config, "hidden_size", 0) or 0,
        opt_level=0,  # only the portable fusions; ONNX Runtime applies its machine-specific ones at load
    )
    fused.save_model_to_file(target)
    return {name: count for name, count in fused.get_fused_operator_statistics().items() if count}


def _has_external_data(path: str) -> bool:
    """Whether the ONNX graph at `path` keeps weights in external data files (read without loading them)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    return any(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in graph.initializer)


def _config_dict(config: STSConfig) -> dict:
    """The model's config without `auto_map`: the ONNX folder has no model code to point to."""
    content = config.to_dict()
    content.pop("auto_map", None)
    return content


def export_onnx(
    model: STSPreTrainedModel,
    save_directory: str | os.PathLike,
    quantize: str | None = None,
    optimize: bool = False,
    quantization_options: dict | None = None,
    overwrite: bool = False,
) -> str:
    """Export `model` to ONNX in `save_directory`, which `ORTSTSModel.from_pretrained` then serves. The folder is
    written whole or not at all (`sts_models.artifacts.written_whole`).

    Args:
        model: a float32 `STSRegressionModel`, `STSSiameseModel` or `STSCrossAttentionModel` with its tokenizer.
        save_directory: the folder to write: new, empty, or (with `overwrite`) an earlier export, which the new
            one replaces whole (`artifacts.written_whole`). The model's own folder and any other folder are refused.
        quantize: `None` for float32, or `"int8"` for dynamic int8 quantization of the encoder graph.
        optimize: fuse the encoder ahead of time with ONNX Runtime's transformer optimizer (its own operators);
            by default ONNX Runtime optimizes the standard graph when it loads it (as fast or faster on CPU). A
            fused graph that strays from PyTorch on the check batch is replaced by the unfused one, with a warning.
        quantization_options: keyword arguments for `onnxruntime.quantization.quantize_dynamic`, over the
            defaults (QInt8 weights, `per_channel=True`, `reduce_range=True`, symmetric weights). Their
            `extra_options` are added to the default ones; an argument `quantize_dynamic` does not take is refused.
        overwrite: replace an earlier export in `save_directory`.

    Returns:
        `save_directory`, as a string.
    """
    onnx, ort = import_onnx_dependencies()
    if quantize not in (None, *QUANTIZATIONS):
        raise STSUserError(f"quantize must be None or one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if not isinstance(model, STSPreTrainedModel):
        raise STSUserError(f"export_onnx needs an STS model, got {type(model).__name__}")
    if model.dtype != torch.float32:
        raise STSUserError(f"export a float32 model (this one is {model.dtype}): call model.float() first")
    check_quantization_options(quantize, quantization_options)
    save_directory = str(save_directory)
    check_export_folder(save_directory, ONNX_CONFIG_NAME, overwrite, model.name_or_path)
    with written_whole(save_directory) as folder:
        _write_export(model, folder, quantize, optimize, quantization_options, onnx, ort)
    logger.info(f"ONNX model written to {save_directory}")
    return save_directory


def _write_export(model, save_directory: str, quantize, optimize, quantization_options, onnx, ort) -> None:
    features = check_features(model)
    record = {
        "format_version": FORMAT_VERSION,
        "arch": model.config.arch,
        "quantize": quantize,
        "optimize": optimize,
        "exporter": "torch.onnx.export (TorchScript, eager attention)",
        "opset": OPSET,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "onnxruntime_version": ort.__version__,
        "source": {"name_or_path": model.name_or_path or None, "fingerprint": model_fingerprint(model)},
        "files": {},
    }
    with (
        tempfile.TemporaryDirectory(dir=save_directory) as scratch,  # inside the folder being written: never left
        _temporary_files_in(scratch),  # ONNX Runtime's fusion and quantization write theirs there too
        evaluation_mode(model),
        _eager_attention(model),
        _traceable(model),
        _quiet_export(),
    ):
        for graph in _graphs(model, features):
            name = graph["file"]
            traced = os.path.join(scratch, name)
            torch.onnx.export(
                graph["module"],
                tuple(tensor.to(model.device) for tensor in graph["inputs"].values()),
                traced,
                dynamo=False,
                input_names=list(graph["inputs"]),
                output_names=graph["outputs"],
                dynamic_axes=graph["axes"],
                opset_version=OPSET,
                do_constant_folding=True,
            )
            if _has_external_data(traced):  # (the exporter's way past protobuf's 2 GB limit)
                raise STSUserError(
                    f"the exported {name} keeps its weights in files beside the graph, as ONNX does for models over "
                    "2 GB, and export_onnx writes single-file graphs only: not written"
                )
            session = _session(traced)  # its inputs: those of the module it reads (the exporter drops the rest)
            inputs = [node.name for node in session.get_inputs()]
            entry = {"inputs": inputs, "outputs": graph["outputs"], "fused_operators": {}}
            entry["max_abs_diff_float32"] = max_difference(session, graph)
            if entry["max_abs_diff_float32"] > FLOAT32_TOLERANCE:
                raise STSUserError(
                    f"the exported {name} is {entry['max_abs_diff_float32']:.2e} from PyTorch on the check pairs, "
                    f"past the float32 tolerance of {FLOAT32_TOLERANCE:g}: not written"
                )
            current = traced
            if optimize and graph["encoder"]:
                fused_path = os.path.join(scratch, f"fused_{name}")
                fused = _fuse(traced, fused_path, model.config.encoder)
                difference = max_difference(_session(fused_path), graph)
                if difference <= FLOAT32_TOLERANCE:
                    current, entry["fused_operators"], entry["max_abs_diff_float32"] = fused_path, fused, difference
                else:
                    logger.warning(f"ONNX Runtime's fusion moved {name} {difference:.2e} from PyTorch: kept unfused")
            if quantize == "int8" and graph["encoder"]:
                quantized = os.path.join(scratch, f"int8_{name}")
                quantize_graph(current, quantized, quantization_options, pre_process=current == traced)
                entry["max_abs_diff_int8"] = max_difference(_session(quantized), graph)
                if not math.isfinite(entry["max_abs_diff_int8"]):
                    raise STSUserError(f"the int8 {name} gives NaN or infinity on the check pairs: not written")
                current = quantized
            shutil.copyfile(current, os.path.join(save_directory, name))
            entry["bytes"] = os.path.getsize(os.path.join(save_directory, name))
            entry["checksum"] = file_checksum(os.path.join(save_directory, name))  # checked by from_pretrained
            record["files"][name] = entry
    with open(os.path.join(save_directory, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(_config_dict(model.config), handle, indent=2, sort_keys=True)
    model.tokenizer.save_pretrained(save_directory)
    write_json(os.path.join(save_directory, ONNX_CONFIG_NAME), record, indent=2)
