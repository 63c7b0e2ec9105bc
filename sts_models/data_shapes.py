"""Data shapes (`sts_models.registry.DATA_SHAPES`): recognizing a split's shape from its columns, naming the
shapes and the missing columns in errors, and whether a model's loss can learn from a split (its shape, its class
labels)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import STSUserError
from .registry import COLUMN_FLAGS, DATA_SHAPES

if TYPE_CHECKING:
    from datasets import Dataset


def describe_shapes(names: Iterable[str], shapes: dict[str, tuple[str, ...]] = DATA_SHAPES) -> str:
    """'[sentence1, sentence2, score] (scored_pairs) or ...', for error messages."""
    return " or ".join(f"[{', '.join(shapes[name])}] ({name})" for name in names)


def detect_data_shape(
    columns: Iterable[str],
    where: str,
    data_shape: str | None = None,
    shapes: dict[str, tuple[str, ...]] = DATA_SHAPES,
) -> str:
    """The first data shape of `shapes` whose columns are all present (only `data_shape`, when given).

    Otherwise the error names the columns missing from the closest shapes (each shape that misses the fewest).
    """
    columns = list(columns)
    candidates = [data_shape] if data_shape else list(shapes)
    missing = {shape: [name for name in shapes[shape] if name not in columns] for shape in candidates}
    for shape in candidates:
        if not missing[shape]:
            return shape
    fewest = min(len(names) for names in missing.values())
    closest = [shape for shape in candidates if len(missing[shape]) == fewest]
    described = " or ".join(f"{missing[shape]} of {describe_shapes([shape], shapes)}" for shape in closest)
    # the shapes (closest first) whose missing columns `--NAME_column` flags can read from columns of other names
    renamable = [
        shape
        for shape in sorted(candidates, key=lambda shape: len(missing[shape]))
        if set(missing[shape]) <= set(COLUMN_FLAGS)
        and len([name for name in columns if name not in shapes[shape]]) >= len(missing[shape])
    ]
    # the hint names `load_sts_dataset`'s column_mapping; the commands', their flags
    if renamable:
        names = missing[renamable[0]]
        lead = f"For {describe_shapes(renamable[:1], shapes)}, name the columns to read as {names} with "
        hint = lead + "column_mapping={column: name}"
        flags_hint = lead + ", ".join(f"--{name}_column" for name in names)
    else:
        hint = "Add or rename the columns in the data"
        flags_hint = hint + "; no --NAME_column flag can supply them"
    problem = f"{where}: missing column(s) {described}; found columns {columns}. "
    shapes_doc = " (docs/embeddings.md lists every data shape)"
    raise STSUserError(problem + hint + shapes_doc, command_line=problem + flags_hint + shapes_doc)


def check_data_fits_model(dataset: Dataset, model, split: str) -> str:
    """The data shape of `dataset`, after checking `model` (its loss) can learn from it."""
    shape = detect_data_shape(dataset.column_names, split)
    if shape not in model.data_shapes:
        loss = getattr(model.config, "loss", "mse")
        raise STSUserError(
            f"loss {loss!r} of the {model.config.arch} model needs columns {describe_shapes(model.data_shapes)}; "
            f"the {split} data has columns {dataset.column_names} ({shape})"
        )
    return shape


# the class labels each loss reads: softmax's classes 0..num_labels-1, the contrastive losses' similar (1) or not (0)
BINARY_LABEL_LOSSES = ("contrastive", "online_contrastive")


def check_values_fit_model(splits: dict[str, Dataset], model) -> None:
    """Refuse class labels the model's loss has no class for, in every split as read. (Gold scores are checked
    against the model's score range as the data is read: `run_sts.py` reads it with the model's own range,
    `DataArguments.take_score_range_of`.)"""
    for split, dataset in splits.items():
        if detect_data_shape(dataset.column_names, split) != "scored_pairs":
            check_split_labels(dataset, model, split)


def check_split_labels(dataset: Dataset, model, split: str) -> None:
    if "label" in dataset.column_names:
        loss = getattr(model.config, "loss", None)
        classes = (
            range(2) if loss in BINARY_LABEL_LOSSES else range(model.config.num_labels) if loss == "softmax" else None
        )
        for row, label in enumerate(dataset["label"] if classes is not None else (), start=1):
            if label not in classes:
                raise STSUserError(
                    f"the {split} data: label {label} of row {row} is not one of the classes of loss {loss!r} "
                    f"(0 to {len(classes) - 1}"
                    + (": the classes of its softmax classifier" if loss == "softmax" else "")
                    + (", learnt from the train labels" if loss == "softmax" and not model.name_or_path else "")
                    + ")"
                )
