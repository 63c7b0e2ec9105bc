"""Model cards (`README.md` beside the weights) written by `save_pretrained`, `push_to_hub` and `STSTrainer`.

The card is a `huggingface_hub.ModelCard`: Hub metadata (`huggingface_hub.ModelCardData`: `library_name: transformers`,
`pipeline_tag: sentence-similarity` with an example for the Hub's widget, tags of the arch, and a `model-index` of the
dev and test correlations as `EvalResult`s) over a markdown body.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import transformers
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import TrainerCallback
from transformers.modelcard import extract_hyperparameters_from_trainer

from .errors import HubPushError
from .hub import is_hub_id
from .model_card_data import METRIC_PREFIXES, STSModelCardData, read_back

ARCH_NAMES = {
    "bert": "BERT + Regression (cross-encoder)",
    "siamese": "Siamese bi-encoder",
    "cross": "Cross-Attention",
}
# Hub tags of each arch beyond `sts-models` and the arch id (the pipeline tag, sentence-similarity, says the task):
# `bert` reads a pair in one sequence (a cross-encoder); `siamese` embeds each sentence (a bi-encoder whose
# embeddings serve search); `cross` encodes each sentence and lets them attend to each other.
ARCH_TAGS = {
    "bert": ["cross-encoder"],
    "siamese": ["bi-encoder", "sentence-embeddings", "feature-extraction"],
    "cross": ["cross-attention"],
}
PIPELINE_TAG = "sentence-similarity"  # the task `import sts_models` registers with transformers' pipeline()
# The example of the Hub's sentence-similarity widget (what it sends to `pipeline("sentence-similarity")`)
WIDGET_EXAMPLE = {
    "source_sentence": "A man is playing a guitar.",
    "sentences": ["Someone is playing an instrument.", "A man is playing a flute.", "A woman is slicing an onion."],
}
# split of the data -> prefix of its metrics in the Trainer; the correlations that go to the Hub's model-index
MODEL_INDEX_METRICS = {
    "pearson": ("pearsonr", "Pearson correlation"),
    "spearman": ("spearmanr", "Spearman correlation"),
}


def _same_setting(value, default) -> bool:
    """`value` (from `TrainingArguments.to_dict`) means the field's `default` (empty is empty, "none" is [])."""
    if isinstance(default, str) and isinstance(value, bool):  # `bf16`: "false" (or "auto") parsed to a bool
        return default.lower() in ("true", "false") and value == (default.lower() == "true")
    return value == default or (not value and not default) or (default == "none" and value in ([], ["none"]))


def training_hyperparameters(trainer) -> dict[str, Any]:
    """The hyperparameters of a training run, as transformers' own card lists them (learning rate, batch sizes,
    seed, optimizer, schedule, epochs or steps), with the rates of `STSTrainingArguments` and the precision."""
    args = trainer.args
    hyperparameters = extract_hyperparameters_from_trainer(trainer)
    hyperparameters.pop("mixed_precision_training", None)  # said for fp16 only: the precision below says it
    optimizer = getattr(args.optim, "value", args.optim)  # (transformers writes the enum's repr)
    if "adam" in optimizer:
        optimizer += f", betas=({args.adam_beta1}, {args.adam_beta2}), epsilon={args.adam_epsilon}"
    hyperparameters["optimizer"] = optimizer + (f", {args.optim_args}" if args.optim_args else "")
    if getattr(args, "head_learning_rate", None) is not None:
        hyperparameters["head_learning_rate"] = args.head_learning_rate
    if getattr(args, "layerwise_lr_decay", 1.0) != 1.0:
        hyperparameters["layerwise_lr_decay"] = args.layerwise_lr_decay
    if args.weight_decay:
        hyperparameters["weight_decay"] = args.weight_decay
    hyperparameters["precision"] = "bf16 (mixed)" if args.bf16 else "fp16 (mixed)" if args.fp16 else "fp32"
    return hyperparameters


class ModelCardCallback(TrainerCallback):
    """Keeps the model's card data current: the hyperparameters of the run and the training arguments that differ
    from the defaults, and the metrics of the last evaluation or prediction. `STSTrainer` adds it."""

    def __init__(self, trainer) -> None:
        super().__init__()
        self.trainer = trainer

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is None:
            return
        # a model trained again is another model: not the earlier run's metrics, nor its name and repo
        card = model.model_card_data
        card.eval_metrics, card.model_id, card.model_name = {}, None, None
        source = card.loaded_from or model.name_or_path
        if hub_repo_id(source):  # a model of the Hub, trained on: the base of the one this run makes
            card.base_model = source
        if card.datasets is card.loaded_datasets:  # nor its data and teachers, where this run recorded none
            card.datasets, card.distillation = [], {}
        model.model_card_data.hyperparameters = training_hyperparameters(self.trainer)
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


@contextmanager
def naming_repo(
    model, repo_id: str | None, tags: list[str] | None = None, folder: str | None = None
) -> Iterator[None]:
    """Inside, a push: the model's card data names the Hub repo `repo_id` (with `tags`), for the card that goes up.
    If it fails, the card data is as it was, and after a failed upload (`HubPushError`) the card the push wrote in
    `folder` is written again: no card names a repo the push left without the model."""
    data = model.model_card_data
    earlier = {item.name: getattr(data, item.name) for item in dataclasses.fields(data)}  # (`add_tags` makes a list)
    data.model_id = repo_id or data.model_id
    data.add_tags(tags)
    try:
        yield
    except BaseException as error:
        for name, value in earlier.items():  # and the name, language, ... the Trainer's push set
            setattr(data, name, value)
        if isinstance(error, HubPushError) and folder and os.path.isfile(os.path.join(folder, "README.md")):
            model.save_model_card(folder)
        raise


def hub_repo_id(name: str | None) -> str | None:
    """`name` when it can be a Hub repo id (`org/name` or `name`) and is no local path, else None."""
    return name if name and not os.path.exists(name) and is_hub_id(name) else None


def dataset_repo_id(data: STSModelCardData, entry: dict) -> str | None:
    """The Hub dataset id of a `datasets` entry, or None for local data. An entry read back from a saved card was
    placed when first saved (local data as an absolute path): it is not looked for in the working directory again."""
    if read_back(data, entry):
        return entry["source"] if is_hub_id(entry["source"]) else None
    return hub_repo_id(entry["source"])


def default_model_name(model) -> str:
    """The name of the model in the card's title and model-index, when none was given."""
    data = model.model_card_data
    if data.model_id:
        return data.model_id.split("/")[-1]
    base = os.path.basename(os.path.normpath(data.base_model)) if data.base_model else None
    return f"{type(model).__name__} on {base}" if base else type(model).__name__


def eval_results(data: STSModelCardData, model_name: str) -> list[EvalResult]:
    """Dev and test Pearson and Spearman correlations, for the Hub's model-index, where known with their data."""
    results = []
    for split, prefix in METRIC_PREFIXES.items():
        entry = next((d for d in data.datasets if d["split"] == split), None)
        if entry is None:
            continue
        dataset = dataset_repo_id(data, entry) or os.path.basename(os.path.normpath(entry["source"]))
        for metric, (metric_type, metric_name) in MODEL_INDEX_METRICS.items():
            value = data.eval_metrics.get(f"{prefix}_{metric}")
            # a NaN (the Spearman of a constant prediction) is no result: the Hub's model-index holds none (the
            # card's table still shows it)
            if value is not None and math.isfinite(value):
                results.append(
                    EvalResult(
                        task_type="sentence-similarity",
                        task_name="Semantic Textual Similarity",
                        dataset_type=dataset,
                        dataset_name=dataset,
                        dataset_config=entry.get("config"),
                        dataset_split=split,
                        metric_type=metric_type,
                        metric_name=metric_name,
                        metric_value=float(value),
                    )
                )
    return results


def card_data(model) -> ModelCardData:
    """The Hub metadata of the card: library (transformers, with the model's code), pipeline tag and widget, tags,
    base model, datasets and the model-index."""
    data = model.model_card_data
    model_name = data.model_name or default_model_name(model)
    datasets = sorted({source for d in data.datasets if (source := dataset_repo_id(data, d))})
    arch = model.config.arch
    return ModelCardData(
        model_name=model_name,
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=list(dict.fromkeys(["sts-models", arch, *ARCH_TAGS.get(arch, []), *data.tags])),
        base_model=hub_repo_id(data.base_model),
        datasets=datasets or None,
        language=data.language,
        license=data.license,
        eval_results=eval_results(data, model_name) or None,
        widget=[WIDGET_EXAMPLE],
    )


def _score_range(config) -> str:
    """The model's score range in words ("-1 to 1": a dash would read as a minus)."""
    return f"{config.score_min:g} to {config.score_max:g}"


def _table(rows: list[tuple[str, Any]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines)


def _usage(model, model_id: str) -> str:
    pair = '("A man is playing a guitar.", "Someone plays an instrument.")'
    lines = [
        "```python",
        "import sts_models  # pip install sts-models; or pass trust_remote_code=True without it",
        "from transformers import AutoModel, pipeline",
        "",
        f'model = AutoModel.from_pretrained("{model_id}")',
        f"scores = model.predict([{pair}])  # on {_score_range(model.config)}",
    ]
    if model.config.arch == "siamese":
        lines.append('embeddings = model.encode(["A man is playing a guitar.", "A woman slices an onion."])')
    if getattr(model.config, "head", None) == "cosine":  # search ranks by cosine: the mlp head's models refuse it
        lines.append(
            'hits = model.semantic_search(["Who plays music?"], ["A man is playing a guitar.", "A woman slices an onion."], top_k=1)'
        )
    lines += [
        "",
        "# or the sentence-similarity pipeline (the Hub widget's input): one score per sentence",
        f'pipe = pipeline("{PIPELINE_TAG}", model="{model_id}")',
        f"scores = pipe({json.dumps(WIDGET_EXAMPLE)})",
    ]
    return "\n".join(lines + ["```"])


def _loss(config) -> str:
    """The training loss the config sets, with its options."""
    loss = f"`{config.loss}`"
    if getattr(config, "loss_kwargs", None):
        loss += f" {json.dumps(config.loss_kwargs)}"
    if getattr(config, "cosine_skip_loss_weight", 0.0):
        loss += f" + {config.cosine_skip_loss_weight:g} × CoSENT of the cosine skip"
    return loss


def _details(model) -> list[tuple[str, Any]]:
    config, data = model.config, model.model_card_data
    details = [
        ("Architecture", f"{ARCH_NAMES[config.arch]} (`{type(model).__name__}`, arch `{config.arch}`)"),
        ("Base model", f"`{data.base_model}`" if data.base_model else f"a `{config.encoder.model_type}` encoder"),
        ("Pooling", config.pooling),
        ("Score range", f"{_score_range(config)} (trained on 0 to 1)"),
        ("Max sequence length", config.max_seq_length),
        ("Frozen encoder layers", config.freeze_layers),
        ("Loss", _loss(config)),
    ]
    if config.arch == "siamese":
        details += [
            ("Head", config.head),
            ("Embedding dimension", model.hidden_size),
            ("Normalized embeddings", config.normalize_embeddings),
        ]
    elif config.arch == "bert":
        details.append(("Symmetric (both orders of a pair)", config.symmetric))
    elif config.arch == "cross":
        details.append(("Cosine skip", config.cosine_skip))
    return details


def _body(model, model_name: str) -> str:
    config, data = model.config, model.model_card_data
    sections = [
        f"# {model_name}",
        f"A [sts-models](https://github.com/sts-models/sts-models) {ARCH_NAMES[config.arch]} model that scores how "
        f"similar two sentences are in meaning, on {_score_range(config)}.",
        "## Model details",
        _table(_details(model), ("property", "value")),
        "## Training data",
        "\n".join(
            f"- {d['split']}: `{d['source']}`{' (' + d['config'] + ')' if d.get('config') else ''}, {d['size']:,} "
            f"examples ({d['shape']})"
            for d in data.datasets
        )
        or "Not recorded.",
        *(
            ["## Distillation", _table(sorted((k, f"`{v}`") for k, v in data.distillation.items()), ("", "value"))]
            if data.distillation
            else []
        ),  # fmt: skip
        "## Evaluation",
        _table(
            sorted(
                (k, f"{v:.4f}" if isinstance(v, float) else v)
                for k, v in data.eval_metrics.items()
                if not k.endswith(("_runtime", "_per_second"))  # speed of this machine, not of the model
            ),
            ("metric", "value"),
        )
        if data.eval_metrics
        else "No evaluation recorded.",
        "## Usage",
        _usage(model, data.model_id or "path/to/model"),
        "## Training hyperparameters",
        _table([(k, f"`{v}`") for k, v in data.hyperparameters.items()], ("hyperparameter", "value"))
        if data.hyperparameters
        else "Not recorded (trained outside `STSTrainer` and `run_sts.py`, or not trained).",
        "## Training arguments that differ from the defaults",
        _table(sorted((k, f"`{v}`") for k, v in data.training_arguments.items()), ("argument", "value"))
        if data.training_arguments
        else "Not recorded.",
        "## Framework versions",
        f"- Python {platform.python_version()}, PyTorch {torch.__version__}, Transformers {transformers.__version__}",
    ]
    return "\n\n".join(sections) + "\n"


def generate_model_card(model) -> ModelCard:
    """The card of `model` (any STS architecture): Hub metadata (`.data`) over a markdown body (`.text`)."""
    metadata = card_data(model)
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n{_body(model, metadata.model_name)}")
