"""The data a model card is written from (`STSModelCardData`), kept beside the weights (`sts_model_card.json`) so
that a loaded model saved or pushed again keeps its card: what a run trained and evaluated on, its metrics and
hyperparameters. `sts_models.model_card` writes the card from it."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from .artifacts import file_written_whole

METRIC_PREFIXES = {"validation": "eval", "test": "test"}  # the metrics of a split: eval_spearman, ...
DATASET_KEYS = {"split", "source", "size", "shape"}  # what the card says of each split of the data
UNSAVED = {"saved": False}  # the metadata of an `STSModelCardData` field that `save_card_data` leaves out


@dataclass
class STSModelCardData:
    """What the card says beyond the config: filled by `from_encoder`, `run_sts.py`, `ModelCardCallback` and
    `STSTrainer.create_model_card` (whose `language`, `license`, `tags` and `model_name` land here)."""

    model_id: str | None = None
    model_name: str | None = None
    base_model: str | None = None
    language: str | list[str] | None = None
    license: str | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)  # DATASET_KEYS, and "config" for a Hub dataset
    eval_metrics: dict[str, float] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    training_arguments: dict[str, Any] = field(default_factory=dict)
    distillation: dict[str, Any] = field(default_factory=dict)  # the teachers, the silver pairs, the options
    tags: list[str] = field(default_factory=list)
    # The `datasets` read back with the card data, by identity (not saved): a training run that records none of its
    # own (`run_sts.py` records it, a script's own STSTrainer does not) must not report its metrics as results on
    # these (`ModelCardCallback`)
    loaded_datasets: list[dict[str, Any]] | None = field(default=None, repr=False, compare=False, metadata=UNSAVED)
    # The Hub id the model was read from where its `name_or_path` is a local copy (the cache, offline): the
    # `base_model` of a model trained on from it (`ModelCardCallback`)
    loaded_from: str | None = field(default=None, repr=False, compare=False, metadata=UNSAVED)

    def add_tags(self, tags: str | list[str] | None) -> None:
        self.tags = sorted(set(self.tags) | set([tags] if isinstance(tags, str) else tags or []))


# Beside README.md: the card's data, which `from_pretrained` reads back, so that a loaded model saved or pushed again
# keeps its card (its metrics, data and hyperparameters) instead of an empty one.
CARD_DATA_NAME = "sts_model_card.json"


def saved_fields() -> set[str]:
    """The fields of `STSModelCardData` that `save_card_data` writes and `load_card_data` reads."""
    return {item.name for item in dataclasses.fields(STSModelCardData) if item.metadata.get("saved", True)}


def local_source(name: str) -> str:
    """A source of data as the card records it: an existing local file or folder as an absolute path, which no later
    working directory takes for a Hub id (the data loader reads an existing folder as local); anything else as it
    is (a Hub dataset id)."""
    return os.path.abspath(name) if os.path.exists(name) else name


def save_card_data(data: STSModelCardData, folder: str) -> None:
    saved = {name: value for name, value in dataclasses.asdict(data).items() if name in saved_fields()}
    # entries read back from a saved card were placed when first saved: a Hub id among them stays one, whatever
    # folders the working directory holds now
    saved["datasets"] = [
        {**copy, "source": local_source(copy["source"])}
        if _is_dataset_entry(copy) and not read_back(data, entry)
        else copy
        for entry, copy in zip(data.datasets, saved["datasets"])
    ]
    with file_written_whole(os.path.join(folder, CARD_DATA_NAME)) as handle:
        json.dump(saved, handle, indent=2, sort_keys=True, default=str)


def load_card_data(name_or_path: str, **location) -> STSModelCardData | None:
    """The card data `save_card_data` wrote beside the model in a folder or Hub repo (`location`: `revision`,
    `subfolder`, ... as `from_pretrained` took them); None where there is none (or it cannot be read)."""
    from transformers.utils import cached_file

    try:
        path = cached_file(
            name_or_path,
            CARD_DATA_NAME,
            **location,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        if path is None:
            return None
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
        known = saved_fields()
        data = STSModelCardData(**{name: value for name, value in saved.items() if name in known})
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    shapes = (
        isinstance(data.datasets, list)
        and all(_is_dataset_entry(d) for d in data.datasets)
        and all(
            isinstance(value, dict)
            for value in (data.eval_metrics, data.hyperparameters, data.training_arguments, data.distillation)
        )
        and all(isinstance(value, (int, float)) for value in data.eval_metrics.values())
        and isinstance(data.tags, list)
        and all(isinstance(tag, str) for tag in data.tags)
    )
    if not shapes:
        return None  # an edited file: the card starts afresh rather than fail to be written
    data.loaded_datasets = data.datasets  # the earlier run's data, by identity
    return data


def _is_dataset_entry(entry) -> bool:
    """A split of the data as the card records it (`DATASET_KEYS`, and `config` or None), each of its type."""
    return (
        isinstance(entry, dict)
        and DATASET_KEYS <= set(entry)
        and all(isinstance(entry[key], str) for key in ("split", "source", "shape"))
        and isinstance(entry["size"], int)
        and not isinstance(entry["size"], bool)
        and isinstance(entry.get("config"), (str, type(None)))
    )


def read_back(data: STSModelCardData, entry: dict) -> bool:
    """Whether a `datasets` entry was read back from a saved card (`loaded_datasets`), rather than recorded since."""
    return any(entry is loaded for loaded in data.loaded_datasets or [])


def record_datasets(data: STSModelCardData, entries: list[dict], trained: bool) -> None:
    """Put a run's data `entries` (one per split it read) on the card. A training run's replace the card's; a run that
    only evaluates replaces the entries of the splits it read, and drops their metrics (measured on the data it
    replaces), keeping what the model was trained on."""
    if not trained:
        read = {entry["split"] for entry in entries}
        measured = tuple(f"{METRIC_PREFIXES[split]}_" for split in read if split in METRIC_PREFIXES)
        data.eval_metrics = {name: value for name, value in data.eval_metrics.items() if not name.startswith(measured)}
        entries = [entry for entry in data.datasets if entry["split"] not in read] + entries
    data.datasets = entries
