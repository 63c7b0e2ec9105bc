"""Export an STS model as a folder that sentence-transformers loads, built with sentence-transformers' own API.

    siamese (cosine head) -> `SentenceTransformer(folder)`: Transformer -> Pooling [-> Normalize]; `encode` gives
                             the embeddings of our `model.encode`
    bert (one order)      -> `CrossEncoder(folder)`: Transformer -> Pooling -> Dense (GELU) -> Dense (the logit);
                             `predict` gives sigmoid(logit) = our `model.predict(pairs)` mapped to 0-1

Both folders are `SentenceTransformer(modules=[...])` / `CrossEncoder(modules=[...])` saved with `.save`, which
writes `modules.json`, each module's config and weights, `config_sentence_transformers.json` and the model card.
They load without `trust_remote_code` and without sts_models installed; they need sentence-transformers >= 6 (whose
CrossEncoder reads a module list; older releases read only a sequence-classification model).

sentence-transformers is imported only inside the functions: importing sts_models never needs it.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable

import torch

from .artifacts import check_export_folder, written_whole
from .errors import STSUserError
from .model_card import hub_repo_id

SENTENCE_TRANSFORMER = "SentenceTransformer"
CROSS_ENCODER = "CrossEncoder"
# What `.save` writes beside the modules: the file that marks a folder as an earlier export.
MODEL_CONFIG_NAME = "config_sentence_transformers.json"


def st_modules():
    """`sentence_transformers.sentence_transformer.modules`. This file is copied beside a saved siamese model (its
    code imports it): a Hub repo's code is checked for the packages it imports, and sentence-transformers, which only
    the export needs, is reached through `import_module` (and the `try` below), so loading needs none of it."""
    import_sentence_transformers()
    return importlib.import_module("sentence_transformers.sentence_transformer.modules")


def import_sentence_transformers():
    """The `sentence_transformers` package, or an `ImportError` in one line that says what to install."""
    try:
        import sentence_transformers
    except ImportError:
        raise ImportError(
            "exporting to sentence-transformers needs the sentence-transformers package: "
            "pip install 'sentence-transformers>=6'"
        ) from None
    major = int(sentence_transformers.__version__.split(".")[0])
    if major < 6:
        raise ImportError(
            f"exporting to sentence-transformers needs sentence-transformers>=6 (a CrossEncoder of modules), found "
            f"{sentence_transformers.__version__}: pip install -U 'sentence-transformers>=6'"
        )
    return sentence_transformers


def export_kind(model) -> str:
    """`"SentenceTransformer"` or `"CrossEncoder"`: the class `model` exports to; `STSUserError` (one line) naming why
    when it has none."""
    config = model.config
    arch = getattr(config, "arch", "")
    if arch == "siamese":
        if config.head != "cosine":
            raise STSUserError(
                f"the siamese model has the {config.head!r} head, which a SentenceTransformer cannot hold: a "
                "SentenceTransformer scores a pair by the cosine of its embeddings. Only the cosine head exports"
            )
        return SENTENCE_TRANSFORMER
    if arch == "bert":
        if getattr(config, "symmetric", False):
            raise STSUserError(
                "cannot export a symmetric bert model to a CrossEncoder: symmetric models average both orders; "
                "CrossEncoder reads one"
            )
        return CROSS_ENCODER
    if arch == "cross":
        raise STSUserError(
            "the cross architecture has no sentence-transformers equivalent (its cross-attention layers between the "
            "two encoded sentences are no sentence-transformers module); export a siamese or bert model"
        )
    raise STSUserError(f"cannot export a model of arch {arch!r} to sentence-transformers; export siamese or bert")


def export_sentence_transformers(model, output_dir: str, overwrite: bool = False) -> str:
    """Write `model` to `output_dir` as a sentence-transformers folder; return the class that loads it.

    - `siamese` with the cosine head -> `"SentenceTransformer"`: `SentenceTransformer(output_dir).encode(sentences)`
      equals `model.encode(sentences)` (normalized when `config.normalize_embeddings`).
    - `bert` (not `symmetric`) -> `"CrossEncoder"`: `CrossEncoder(output_dir).predict(pairs)` equals
      `(model.predict(pairs) - score_min) / (score_max - score_min)`, the score on 0-1 (the sigmoid of the logit).

    Anything else (`cross`, the siamese mlp head, a symmetric bert model) is refused with an `STSUserError` in one
    line, before anything is written. So is an `output_dir` that holds files, unless they are an earlier
    sentence-transformers export and `overwrite` is true: the new one then replaces it. The folder is written beside `output_dir`
    and renamed into place at the end, so a failure leaves no half-written folder.
    """
    kind = export_kind(model)
    import_sentence_transformers()
    output_dir = os.path.abspath(os.fspath(output_dir))
    check_export_folder(output_dir, MODEL_CONFIG_NAME, overwrite, model.name_or_path)
    build = _save_sentence_transformer if kind == SENTENCE_TRANSFORMER else _save_cross_encoder
    _write_into_place(output_dir, lambda folder, staging: build(model, folder, staging))
    return kind


def save_sentence_transformer(model, folder: str) -> None:
    """Write `model` (an `STSSiameseModel` with the cosine head) as a SentenceTransformer folder
    (`export_sentence_transformers`, which refuses any other model). Like `SentenceTransformer.save`, it replaces an
    earlier export in `folder`; any other non-empty folder is refused."""
    if getattr(model.config, "arch", "") != "siamese":
        raise STSUserError(
            f"save_sentence_transformer writes siamese models; this one is {model.config.arch!r}: "
            "use export_sentence_transformers"
        )
    export_sentence_transformers(model, folder, overwrite=True)


def _write_into_place(output_dir: str, write: Callable[[str, str], None]) -> None:
    """Run `write(folder, staging)` on a new folder that replaces `output_dir` whole when it succeeds
    (`artifacts.written_whole`), with a scratch folder `staging` inside it, removed before the folder is renamed
    into place. On failure nothing changes at `output_dir`."""
    with written_whole(output_dir) as folder:
        staging = os.path.join(folder, ".staging")
        write(folder, staging)
        shutil.rmtree(staging)


def _transformer_module(model, staging: str, transformer_task: str = "feature-extraction"):
    """A sentence-transformers `Transformer` module holding `model`'s encoder (float32) and tokenizer, which
    truncates at `config.max_seq_length`. The module loads from a folder only: the encoder and tokenizer are saved
    to `staging` first."""
    Transformer = st_modules().Transformer
    from transformers.utils import logging as transformers_logging

    model.encoder.save_pretrained(staging)
    model.tokenizer.save_pretrained(staging)
    verbosity = transformers_logging.get_verbosity()
    # The encoder was saved without the pooler STS models drop (they never use it): transformers would warn that it
    # is newly initialized, and the folder saves that random pooler. It stays unused by the Pooling module
    # (docs/embeddings.md says so).
    transformers_logging.set_verbosity_error()
    try:
        return Transformer(
            staging,
            transformer_task=transformer_task,
            max_seq_length=model.config.max_seq_length,
            model_kwargs={"dtype": torch.float32},
        )
    finally:
        transformers_logging.set_verbosity(verbosity)


def _pooling_module(model):
    Pooling = st_modules().Pooling

    # sts_models.pooling's modes ("mean", "cls", "max") are sentence-transformers' modes of the same names
    return Pooling(model.hidden_size, pooling_mode=model.config.pooling)


def _dense_module(linear: torch.nn.Linear, activation: torch.nn.Module, output_name: str | None = None):
    """A sentence-transformers `Dense` module with the weights of `linear` (float32), then `activation`."""
    Dense = st_modules().Dense

    dense = Dense(
        linear.in_features,
        linear.out_features,
        bias=linear.bias is not None,
        activation_function=activation,
        module_output_name=output_name,
    )
    with torch.no_grad():
        dense.linear.weight.copy_(linear.weight.detach().float().cpu())
        if linear.bias is not None:
            dense.linear.bias.copy_(linear.bias.detach().float().cpu())
    return dense


def _card_data(model, card_class, kind: str):
    """sentence-transformers' model card data, with what our card knows (base model, name, language, license).
    `local_files_only`: writing the card looks nothing up on the Hub."""
    ours = getattr(model, "model_card_data", None)
    card = card_class(
        local_files_only=True,
        language=getattr(ours, "language", None),
        license=getattr(ours, "license", None),
        model_name=getattr(ours, "model_name", None)
        or f"{kind} exported from an sts-models '{model.config.arch}' model",
    )
    base_model = hub_repo_id(getattr(ours, "base_model", None) or model.config.encoder.name_or_path)
    if base_model:
        card.base_model = base_model  # a Hub id (a local path says nothing to the card's readers)
    card.add_tags("sts-models")
    return card


def _save_sentence_transformer(model, folder: str, staging: str) -> None:
    """The siamese encoder, pooling and (with `normalize_embeddings`) normalization, as a SentenceTransformer."""
    package, Normalize = import_sentence_transformers(), st_modules().Normalize
    SentenceTransformer, SentenceTransformerModelCardData = (
        package.SentenceTransformer,
        package.SentenceTransformerModelCardData,
    )

    modules = [_transformer_module(model, staging), _pooling_module(model)]
    if model.config.normalize_embeddings:
        modules.append(Normalize())
    exported = SentenceTransformer(
        modules=modules,
        device="cpu",
        similarity_fn_name="cosine",  # the cosine head's score
        model_card_data=_card_data(model, SentenceTransformerModelCardData, SENTENCE_TRANSFORMER),
    )
    exported.save(folder)


def _save_cross_encoder(model, folder: str, staging: str) -> None:
    """The bert model as a CrossEncoder: the joint encoder, pooling, and the regression head as two `Dense` modules
    (the hidden layer with its GELU, then the logit, written to "scores"); CrossEncoder's default sigmoid on one
    logit gives the 0-1 score. Dropout is dropped: it is off at inference."""
    package = import_sentence_transformers()
    CrossEncoder, CrossEncoderModelCardData = package.CrossEncoder, package.CrossEncoderModelCardData

    head = model.head
    # `Dense` saves its activation by class name: only a GELU with default arguments reloads as itself
    exact_gelu = type(head.activation) is torch.nn.GELU and head.activation.approximate == "none"
    if not exact_gelu or head.out_proj.out_features != 1:
        raise STSUserError(
            f"cannot export the bert model's head ({head.activation!r}, {head.out_proj.out_features} outputs): a "
            "CrossEncoder export expects the regression head of sts_models.heads (exact GELU, one logit)"
        )
    modules = [
        _transformer_module(model, staging),
        _pooling_module(model),
        _dense_module(head.dense, torch.nn.GELU()),
        _dense_module(head.out_proj, torch.nn.Identity(), output_name="scores"),
    ]
    exported = CrossEncoder(
        modules=modules,
        device="cpu",
        activation_fn=torch.nn.Sigmoid(),
        model_card_data=_card_data(model, CrossEncoderModelCardData, CROSS_ENCODER),
    )
    exported.save(folder)
