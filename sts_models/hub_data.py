"""Loading the splits of a Hub dataset (`datasets.load_dataset`), refused in one line where it cannot be loaded.
`sts_models.data.load_sts_dataset` checks their rows as it checks a local file's."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import datasets
from datasets import load_dataset

try:  # the names of `datasets`' file-format builders (a private name: the common ones where it is gone)
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES as FILE_BUILDERS
except ImportError:  # pragma: no cover - another `datasets`
    FILE_BUILDERS = ("arrow", "csv", "json", "pandas", "parquet", "text", "xml", "webdataset")

from .data_files import SPLIT_ALIASES
from .errors import STSUserError
from .hub import hub_reachable, hub_unreachable_reason

DEFAULT_DATASET = "mteb/stsbenchmark-sts"
# how to read data without the Hub: from the Python API (`load_sts_dataset`'s arguments), and from the commands
LOCAL_DATA_HINT = "pass a local STS-B folder as dataset_name or files as data_files={split: path}"
LOCAL_DATA_FLAGS = (
    "pass a local STS-B folder with --dataset_name (make train DATA=/path/to/stsbenchmark) or files with "
    "--train_file/--validation_file/--test_file"
)


def hub_dataset_splits(
    name: str, config_name: str | None, cache_dir: str | None, skip: Iterable[str] = ()
) -> dict[str, tuple[str, Iterator[tuple[str, dict]]]]:
    """`{split: (source, (where, row) of each row)}` of the Hub dataset `name`: its splits train, validation (or
    dev) and test, but those in `skip`."""
    if name in FILE_BUILDERS:  # `datasets` would read the working directory's files with it
        what = f"{name} names a file format of datasets (its builder of local files), not a dataset: pass the files"
        raise STSUserError(
            f"dataset_name {what} as data_files={{split: path}}",
            command_line=f"--dataset_name {what} with --train_file/--validation_file/--test_file",
        )
    # Offline (HF_HUB_OFFLINE=1 or HF_DATASETS_OFFLINE=1), `datasets` reads its cache at once; online, a Hub it
    # cannot reach would cost minutes of retries before failing: one quick probe first.
    offline = datasets.config.HF_HUB_OFFLINE
    if not offline and not hub_reachable():
        reason = f"dataset {name} could not be loaded: {hub_unreachable_reason()} (the datasets cache)"
        raise STSUserError(f"{reason}; {LOCAL_DATA_HINT}", command_line=f"{reason}; {LOCAL_DATA_FLAGS}")
    try:
        loaded = load_dataset(name, config_name, cache_dir=cache_dir)
    except (ConnectionError, FileNotFoundError) as error:  # DatasetNotFoundError is a FileNotFoundError
        reason = (
            "offline mode is on (HF_HUB_OFFLINE=1 or HF_DATASETS_OFFLINE=1) and it is not in the local datasets cache"
            if offline
            else " ".join(str(error).split())
        )
        reason = f"dataset {name} could not be loaded: {reason}"
        raise STSUserError(f"{reason}; {LOCAL_DATA_HINT}", command_line=f"{reason}; {LOCAL_DATA_FLAGS}") from None
    except Exception as error:  # noqa: BLE001 - data it cannot read, a builder's own errors: one line, as above
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise STSUserError(f"dataset {name} could not be loaded: {reason}") from None
    splits = {}
    for split_name, split in loaded.items():
        if split_name not in SPLIT_ALIASES or SPLIT_ALIASES[split_name] in skip:
            continue
        source = f"dataset {name} ({split_name})"
        records = ((f"{source}, row {index}", row) for index, row in enumerate(split))
        splits[SPLIT_ALIASES[split_name]] = source, records
    return splits
