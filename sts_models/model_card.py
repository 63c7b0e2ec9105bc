"""Model cards (`README.md` beside the weights) written by `save_pretrained` and `push_to_hub`."""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from typing import Any

import torch
import transformers
from transformers import TrainerCallback

ARCH_NAMES = {
    "bert": "BERT + Regression (cross-encoder)",
    "siamese": "Siamese bi-encoder",
    "cross": "Cross-Attention",
}


@dataclass
class ModelCardData:
    """What the card says beyond the config: filled by `from_encoder`, `run_sts.py` and `ModelCardCallback`."""

    model_id: str | None = None
    base_model: str | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)  # {"split", "source", "size", "shape"}
    eval_metrics: dict[str, float] = field(default_factory=dict)
    training_arguments: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


def _same_setting(value, default) -> bool:
    """`value` (from `TrainingArguments.to_dict`) means the field's `default` (empty is empty, "none" is [])."""
    return value == default or (not value and not default) or (default == "none" and value in ([], ["none"]))


class ModelCardCallback(TrainerCallback):
    """Keeps the model's card data current: training arguments that differ from the defaults, and the
    metrics of the last evaluation or prediction."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            # (a second TrainingArguments instance would reset the accelerate state: compare to field defaults)
            defaults = {f.name: f.default for f in dataclasses.fields(args) if f.default is not dataclasses.MISSING}
            model.model_card_data.training_arguments = {
                name: value
                for name, value in args.to_dict().items()
                if defaults.get(name) is not None  # fields defaulting to None are derived in __post_init__
                and not _same_setting(value, defaults[name])
                and name not in ("output_dir", "logging_dir")
            }

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if model is not None and metrics:
            model.model_card_data.eval_metrics.update(metrics)

    on_predict = on_evaluate  # test_* metrics go to the card the same way


def _front_matter(model, data: ModelCardData) -> str:
    metadata = {
        "library_name": "sts-models",
        "pipeline_tag": "sentence-similarity",
        "tags": ["sts-models", "sentence-similarity", "semantic-textual-similarity", model.config.arch, *data.tags],
    }
    if data.base_model:
        metadata["base_model"] = data.base_model
    hub_datasets = [
        d["source"] for d in data.datasets if "/" in d["source"] and not d["source"].startswith((".", "/"))
    ]
    if hub_datasets:
        metadata["datasets"] = sorted(set(hub_datasets))
    lines = ["---"] + [f"{key}: {json.dumps(value)}" for key, value in metadata.items()] + ["---"]
    return "\n".join(lines)


def _table(rows: list[tuple[str, Any]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines)


def _usage(model, model_id: str) -> str:
    pair = '("A man is playing a guitar.", "Someone plays an instrument.")'
    lines = [
        "```python",
        "import sts_models  # pip install sts-models; or pass trust_remote_code=True without it",
        "from transformers import AutoModel",
        "",
        f'model = AutoModel.from_pretrained("{model_id}")',
        f"scores = model.predict([{pair}])  # on {model.config.score_min:g}-{model.config.score_max:g}",
    ]
    if model.config.arch == "siamese":
        lines += [
            'embeddings = model.encode(["A man is playing a guitar.", "A woman slices an onion."])',
            'hits = model.semantic_search(["Who plays music?"], ["A man is playing a guitar.", "A woman slices an onion."], top_k=1)',
        ]
    return "\n".join(lines + ["```"])


def generate_model_card(model) -> str:
    """The card of `model` (any STS architecture) as markdown with Hub metadata."""
    config, data = model.config, model.model_card_data
    model_id = data.model_id or "path/to/model"
    details = [
        ("Architecture", f"{ARCH_NAMES[config.arch]} (`{type(model).__name__}`, arch `{config.arch}`)"),
        ("Base model", f"`{data.base_model}`" if data.base_model else f"a `{config.encoder.model_type}` encoder"),
        ("Pooling", config.pooling),
        ("Score range", f"{config.score_min:g}-{config.score_max:g} (trained on 0-1)"),
        ("Max sequence length", config.max_seq_length),
        ("Frozen encoder layers", config.freeze_layers),
    ]
    if config.arch == "siamese":
        details += [
            ("Head", config.head),
            ("Loss", f"`{config.loss}`" + (f" {json.dumps(config.loss_kwargs)}" if config.loss_kwargs else "")),
            ("Embedding dimension", model.hidden_size),
            ("Normalized embeddings", config.normalize_embeddings),
        ]
    else:
        details.append(("Loss", "`mse` (mean squared error on the 0-1 scale)"))
    sections = [
        _front_matter(model, data),
        f"# {ARCH_NAMES[config.arch]} for semantic textual similarity",
        f"A [sts-models](https://github.com/sts-models/sts-models) model that scores how similar two sentences are "
        f"in meaning, on {config.score_min:g}-{config.score_max:g}.",
        "## Model details",
        _table(details, ("property", "value")),
        "## Training data",
        "\n".join(f"- {d['split']}: `{d['source']}`, {d['size']:,} examples ({d['shape']})" for d in data.datasets)
        or "Not recorded.",
        "## Evaluation",
        _table(
            sorted((k, f"{v:.4f}" if isinstance(v, float) else v) for k, v in data.eval_metrics.items()),
            ("metric", "value"),
        )
        if data.eval_metrics
        else "No evaluation recorded.",
        "## Usage",
        _usage(model, model_id),
        "## Training arguments",
        _table(sorted((k, f"`{v}`") for k, v in data.training_arguments.items()), ("argument", "value"))
        if data.training_arguments
        else "Not recorded (default `TrainingArguments` or trained outside `Trainer`).",
        "## Framework versions",
        f"- Python {platform.python_version()}, PyTorch {torch.__version__}, Transformers {transformers.__version__}",
    ]
    return "\n\n".join(sections) + "\n"
