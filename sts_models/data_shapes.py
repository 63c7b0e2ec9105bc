"""Data shapes (`sts_models.registry.DATA_SHAPES`): recognizing a split's shape from its columns, and naming the
shapes and the missing columns in errors."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import STSUserError
from .registry import COLUMN_FLAGS, DATA_SHAPES


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
