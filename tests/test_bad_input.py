"""Bad input is refused, never read silently into wrong results (issue #12).

Each row of CLI_CASES runs `run_sts.py` in-process through `run_sts.cli` (the same one-line handler as
the command) and checks the exit status, that the last line of stderr is the one error line and matches
the row, and that the run wrote no results, no model weights and no checkpoint. Each row of API_CASES
calls the Python API and checks the exception and its one-line message. One test runs the script as a
subprocess, where the process boundary is the point; others check that only bad input and errors of the
file system become one line, and that a disk filling up mid-run leaves the checkpoints completed before
it (and nothing incomplete). The last tests reuse an output folder where that is allowed
(`--overwrite_output_dir`, `--resume_from_checkpoint true`, results beside the evaluated model).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import transformers
from safetensors import SafetensorError
from transformers import AutoModel, BertTokenizer

import sts_models
from sts_models import STSRegressionModel, STSSiameseConfig, STSSiameseModel
from sts_models.architectures import load_model
from sts_models.errors import STSInputError

from .conftest import REPO_ROOT, STSB_DIR, make_batch

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
PAIRS = [("A man is playing a guitar.", "A woman slices an onion.", 0.2), ("A dog runs.", "A dog is running.", 4.6)]


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


GOOD_TRAIN = jsonl(*({"sentence1": a, "sentence2": b, "score": s} for a, b, s in PAIRS))
TWO_SCORE_KEYS = '{"sentence1": "a", "sentence2": "b", "score": 1, "score": 4}\n'  # json.dumps cannot write it
LATIN_1 = "sentence1,sentence2,score\nA man plays.,A dog runs.,1\nA café opens.,A dog runs.,2\n".encode("latin-1")


def damaged_copies(source: str, root: Path, name: str) -> dict[str, str]:
    """Copies of a model folder whose weights are cut in half or garbage, or without config or weights."""
    copies = {}
    for damage in ("truncated", "garbage", "no_config", "no_weights"):
        copy = root / f"{name}-{damage}"
        shutil.copytree(source, copy)
        weights = copy / "model.safetensors"
        if damage == "truncated":
            weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        elif damage == "garbage":
            weights.write_bytes(b"not a safetensors file")
        else:
            (copy / "config.json" if damage == "no_config" else weights).unlink()
        copies[f"{name}_{damage}"] = str(copy)
    return copies


@pytest.fixture(scope="module")
def folders(tiny_encoder_dir, tmp_path_factory) -> dict[str, str]:
    """The tiny encoder, copies of it without tokenizer files or with a tokenizer of special tokens alone,
    a saved `bert` model, a copy of it without tokenizer files, and damaged copies of both (`damaged_copies`)."""
    root = tmp_path_factory.mktemp("bad-input")
    no_tokenizer = root / "encoder-without-tokenizer"
    shutil.copytree(tiny_encoder_dir, no_tokenizer)
    for name in TOKENIZER_FILES:
        (no_tokenizer / name).unlink(missing_ok=True)
    specials_only = root / "encoder-with-empty-tokenizer"
    shutil.copytree(no_tokenizer, specials_only)
    # what `BertTokenizer(vocab_file=...)` writes in transformers 5: the vocab file ignored, 5 special tokens
    BertTokenizer().save_pretrained(specials_only)
    saved = root / "saved-bert"
    STSRegressionModel.from_encoder(tiny_encoder_dir).save_pretrained(saved)
    saved_no_tokenizer = root / "saved-bert-without-tokenizer"
    shutil.copytree(saved, saved_no_tokenizer)
    for name in TOKENIZER_FILES:
        (saved_no_tokenizer / name).unlink(missing_ok=True)
    return {
        "encoder": tiny_encoder_dir,
        "no_tokenizer": str(no_tokenizer),
        "specials_only": str(specials_only),
        "saved": str(saved),
        "saved_no_tokenizer": str(saved_no_tokenizer),
        "stsb": str(STSB_DIR),
        **damaged_copies(tiny_encoder_dir, root, "encoder"),
        **damaged_copies(str(saved), root, "saved"),
    }


@dataclass(frozen=True)
class CLICase:
    """`argv` and `message` are formatted with the folders (and `tmp`, `out`); `files` (path under tmp:
    content, text or bytes) are written first, `train.jsonl` holding two good pairs unless a row replaces it;
    `patch` makes a library call fail (with pytest's monkeypatch)."""

    id: str
    argv: str
    message: str
    files: tuple[tuple[str, str | bytes], ...] = ()
    status: int = 1
    setup: Callable[[Path, dict], None] | None = None
    patch: Callable[[pytest.MonkeyPatch], None] | None = None


TRAIN = "--arch bert --model_name_or_path {encoder} --do_train --eval_strategy no --load_best_model_at_end false"
TRAIN_FILE = f"{TRAIN} --train_file {{tmp}}/train.jsonl --output_dir {{out}}"


def saved_model_with_results(tmp: Path, folders: dict) -> None:
    shutil.copytree(folders["saved"], tmp / "out")
    (tmp / "out" / "all_results.json").write_text('{"test_spearman": 0.9}')


def disk_full_from_write(write: int, raises: str = "OSError") -> Callable[[pytest.MonkeyPatch], None]:
    """A patch: from its `write`-th model weights file on, the disk is full (a part is written, then ENOSPC).

    `raises="SafetensorError"` fails as safetensors' writer does on a real full disk (checked on a full tmpfs):
    with a `SafetensorError`, not an OSError; the disk then reads as full too."""

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        save_file, writes = transformers.modeling_utils.safe_save_file, []

        def save_until_full(tensors, filename, metadata=None):
            writes.append(filename)
            if len(writes) < write:
                return save_file(tensors, filename, metadata=metadata)
            Path(filename).write_bytes(b"\0" * 64)
            if raises == "SafetensorError":
                monkeypatch.setattr(sys.modules["run_sts"], "disk_full", lambda path: True)
                raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", save_until_full)

    return patch


def saved_model(damage: str) -> str:
    return f"--model_name_or_path {{saved_{damage}}} --test_file {{tmp}}/train.jsonl --do_predict --output_dir {{out}}"


EVAL = "--validation_file {tmp}/train.jsonl --do_eval"


CLI_CASES = [
    # 1. a model or encoder folder without tokenizer files
    CLICase(
        "encoder-without-tokenizer-files",
        "--arch siamese --model_name_or_path {no_tokenizer} --train_file {tmp}/train.jsonl --do_train "
        "--output_dir {out}",
        "{no_tokenizer} has no tokenizer files: BertTokenizer reads tokenizer.json or vocab.txt, and the folder "
        "has neither",
    ),
    CLICase(
        "saved-model-without-tokenizer-files",
        "--model_name_or_path {saved_no_tokenizer} --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        "{saved_no_tokenizer} has no tokenizer files",
    ),
    CLICase(
        "tokenizer-of-special-tokens-only",
        f"{TRAIN} --model_name_or_path {{specials_only}} --train_file {{tmp}}/train.jsonl --output_dir {{out}}",
        "the tokenizer of {specials_only} holds only its 5 special tokens, no vocabulary",
    ),
    # 2. reusing an output folder
    CLICase(
        "output-dir-not-empty",
        TRAIN_FILE,
        r"--output_dir {out} is not empty \(all_results.json, modeling_siamese.py\): pass --overwrite_output_dir",
        files=(("out/all_results.json", "{}"), ("out/modeling_siamese.py", "")),
    ),
    CLICase(
        "output-dir-holds-a-checkpoint",
        TRAIN_FILE,
        r"is not empty \(checkpoint-2\): pass --resume_from_checkpoint true to resume from checkpoint-2, "
        "--overwrite_output_dir",
        files=(("out/checkpoint-2/trainer_state.json", "{}"),),
    ),
    CLICase(
        "resume-without-a-checkpoint",
        f"{TRAIN_FILE} --resume_from_checkpoint true",
        "--resume_from_checkpoint true: no checkpoint-N folder in {out}",
    ),
    CLICase(
        "resume-from-a-missing-folder",
        f"{TRAIN_FILE} --resume_from_checkpoint {{tmp}}/nowhere",
        "--resume_from_checkpoint: checkpoint folder not found: {tmp}/nowhere",
    ),
    CLICase(
        "overwrite-would-delete-the-checkpoint-to-resume",
        f"{TRAIN_FILE} --resume_from_checkpoint true --overwrite_output_dir",
        "--overwrite_output_dir would delete {out}/checkpoint-2, the checkpoint to resume from",
        files=(("out/checkpoint-2/trainer_state.json", "{}"),),
    ),
    CLICase(
        "predict-beside-another-runs-results",
        "--model_name_or_path {out} --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        r"--output_dir {out} already holds the results of another run \(all_results.json\): pass "
        "--overwrite_output_dir to replace them",
        setup=saved_model_with_results,
    ),
    CLICase(
        "predict-into-another-runs-folder",
        "--model_name_or_path {saved} --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        r"--output_dir {out} is not empty \(predict_results.tsv\)",
        files=(("out/predict_results.tsv", "index\n"),),
    ),
    # 3. silent misreads
    CLICase(
        "two-score-columns-csv",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        r"{tmp}/train.csv, line 1: column\(s\) \['score'\] appear more than once",
        files=(("train.csv", "sentence1,sentence2,score,score\na,b,1,4\n"),),
    ),
    CLICase(
        "two-score-keys-jsonl",
        TRAIN_FILE,
        "{tmp}/train.jsonl, line 2: column 'score' appears twice",
        files=(("train.jsonl", GOOD_TRAIN.splitlines()[0] + "\n" + TWO_SCORE_KEYS),),
    ),
    CLICase(
        "score-true",
        TRAIN_FILE,
        "{tmp}/train.jsonl, line 1: score True is not a number",
        files=(("train.jsonl", jsonl({"sentence1": "a", "sentence2": "b", "score": True})),),
    ),
    CLICase(
        "score-column-typo",
        f"{TRAIN_FILE} --score_column scor",
        r"{tmp}/train.jsonl, line 1: no column 'scor' to read as 'score' \(--score_column\); "
        r"found columns \['sentence1', 'sentence2', 'score'\]",
    ),
    CLICase(
        "score-column-not-in-the-file",
        TRAIN_FILE.replace("train.jsonl", "train.csv") + " --score_column similarity",
        r"{tmp}/train.csv, line 2: no column 'similarity' to read as 'score' \(--score_column\)",
        files=(("train.csv", "sentence1,sentence2,gold\na,b,1\n"),),
    ),
    CLICase(
        "one-column-for-two-flags",
        f"{TRAIN_FILE} --sentence1_column text --sentence2_column text",
        "--sentence1_column and --sentence2_column both name column 'text'",
    ),
    CLICase(
        "empty-sentence",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        "{tmp}/train.csv, line 3: column 'sentence2' is empty",
        files=(("train.csv", "sentence1,sentence2,score\na man,a dog,1\nA cat.,,2\n"),),
    ),
    CLICase(
        "whitespace-only-sentence",
        TRAIN_FILE,
        r"{tmp}/train.jsonl, line 3: column 'sentence1' is empty \(only whitespace\)",
        files=(("train.jsonl", GOOD_TRAIN + jsonl({"sentence1": " \t", "sentence2": "b", "score": 2})),),
    ),
    CLICase(
        "max-seq-length-zero",
        f"{TRAIN_FILE} --max_seq_length 0",
        "max_seq_length must be a positive number of tokens, got 0",
    ),
    CLICase(
        "max-seq-length-zero-on-a-saved-model",
        "--model_name_or_path {saved} --max_seq_length 0 --test_file {tmp}/train.jsonl --do_predict "
        "--output_dir {out}",
        "max_seq_length must be a positive number of tokens, got 0",
    ),
    CLICase(
        "max-seq-length-beyond-the-encoder",
        f"{TRAIN_FILE} --max_seq_length 4096",
        r"max_seq_length 4096 is more than the 128 positions of the encoder \(bert\)",
    ),
    CLICase(
        "max-seq-length-without-room-for-text",
        f"{TRAIN_FILE} --max_seq_length 4",
        "max_seq_length 4 leaves no room for text: the tokenizer adds 3 special tokens to each pair",
    ),
    CLICase(
        "num-train-epochs-zero",
        f"{TRAIN_FILE} --num_train_epochs 0",
        "--num_train_epochs 0 with --do_train trains nothing and would save the untrained model",
    ),
    CLICase("max-train-samples-zero", f"{TRAIN_FILE} --max_train_samples 0", "--max_train_samples 0 keeps no example"),
    # 4. options that do not fit the architecture, the loss or the data
    CLICase(
        "freeze-layers-beyond-the-encoder",
        f"{TRAIN_FILE} --freeze_layers 3",
        "freeze_layers=3 but the encoder has only 2 layers",
    ),
    CLICase("freeze-layers-negative", f"{TRAIN_FILE} --freeze_layers -1", "freeze_layers must be >= 0, got -1"),
    CLICase(
        "symmetric-on-siamese",
        f"{TRAIN_FILE} --arch siamese --symmetric",
        "symmetric=True does not apply to the siamese arch: it is an option of bert",
    ),
    CLICase(
        "mlp-head-on-bert",
        f"{TRAIN_FILE} --head mlp",
        "head='mlp' does not apply to the bert arch: it is an option of siamese",
    ),
    CLICase(
        "siamese-option-on-a-saved-bert-model",
        "--model_name_or_path {saved} --normalize_embeddings --test_file {tmp}/train.jsonl --do_predict "
        "--output_dir {out}",
        "normalize_embeddings=True does not apply to the bert arch: it is an option of siamese",
    ),
    CLICase(
        "triplet-loss-on-bert",
        f"{TRAIN_FILE} --loss triplet",
        r"loss of the 'bert' architecture must be one of \('mse', 'binary_cross_entropy', 'cosent'\), got 'triplet'",
    ),
    CLICase(
        "mlp-head-with-cosent-loss",
        f"{TRAIN_FILE} --arch siamese --head mlp --loss cosent",
        "loss 'cosent' does not fit head 'mlp': the mlp head trains with loss 'mse'",
    ),
    CLICase(
        "cosine-skip-loss-weight-without-cosine-skip",
        f"{TRAIN_FILE} --arch cross --cosine_skip_loss_weight 0.5",
        "cosine_skip_loss_weight=0.5 needs cosine_skip=True",
    ),
    CLICase(
        "option-of-another-loss",
        f"{TRAIN_FILE} --arch siamese --loss contrastive --loss_scale 10",
        r"loss 'contrastive' takes no option scale \(its options: margin, distance\)",
    ),
    CLICase(
        "softmax-loss-on-scored-pairs",
        f"{TRAIN_FILE} --arch siamese --loss softmax",
        r"loss 'softmax' of the siamese model needs columns \[sentence1, sentence2, label\] \(labelled_pairs\); "
        r"the train data has columns \['sentence1', 'sentence2', 'score'\] \(scored_pairs\)",
    ),
    CLICase(
        "train-batch-size-zero",
        f"{TRAIN_FILE} --per_device_train_batch_size 0",
        "--per_device_train_batch_size must be a positive integer, got 0",
    ),
    CLICase(
        "train-batch-size-negative",
        f"{TRAIN_FILE} --per_device_train_batch_size -1",
        "--per_device_train_batch_size must be a positive integer, got -1",
    ),
    CLICase(
        "eval-batch-size-zero",
        f"{TRAIN_FILE} {EVAL} --per_device_eval_batch_size 0",
        "--per_device_eval_batch_size must be a positive integer, got 0",
    ),
    CLICase(
        "gradient-accumulation-steps-zero",
        f"{TRAIN_FILE} --gradient_accumulation_steps 0",
        "--gradient_accumulation_steps must be a positive integer, got 0",
    ),
    CLICase(
        "max-eval-samples-zero",
        f"{TRAIN_FILE} {EVAL} --max_eval_samples 0",
        "--max_eval_samples 0 keeps no example",
    ),
    CLICase(
        "learning-rate-nan",
        f"{TRAIN_FILE} --learning_rate nan",
        "--learning_rate must be a finite number >= 0, got nan",
    ),
    CLICase(
        "learning-rate-inf",
        f"{TRAIN_FILE} --learning_rate inf",
        "--learning_rate must be a finite number >= 0, got inf",
    ),
    CLICase(
        "learning-rate-negative",
        f"{TRAIN_FILE} --learning_rate -0.001",
        "--learning_rate must be a finite number >= 0, got -0.001",
    ),
    CLICase(
        "head-learning-rate-nan",
        f"{TRAIN_FILE} --head_learning_rate nan",
        "--head_learning_rate must be a finite number >= 0, got nan",
    ),
    CLICase(
        "layerwise-lr-decay-zero",
        f"{TRAIN_FILE} --layerwise_lr_decay 0",
        r"--layerwise_lr_decay must be in \(0, 1\], got 0.0",
    ),
    CLICase(
        "score-min-equals-score-max",
        f"{TRAIN_FILE} --score_min 5 --score_max 5",
        r"score_max \(5.0\) must be greater than score_min \(5.0\)",
    ),
    CLICase(
        "score-min-above-score-max",
        f"{TRAIN_FILE} --score_min 6 --score_max 5",
        r"score_max \(5.0\) must be greater than score_min \(6.0\)",
    ),
    CLICase(
        "score-max-infinite",
        f"{TRAIN_FILE} --score_max inf",
        r"score_min \(0.0\) and score_max \(inf\) must be finite numbers",
    ),
    CLICase(
        "max-seq-length-negative",
        f"{TRAIN_FILE} --max_seq_length -1",
        "max_seq_length must be a positive number of tokens, got -1",
    ),
    CLICase(
        "metric-for-best-model-misspelt",
        f"{TRAIN_FILE} {EVAL} --eval_strategy epoch --load_best_model_at_end true --metric_for_best_model spearmn",
        r"--metric_for_best_model 'spearmn' is none of the metrics evaluation reports: "
        r"\['loss', 'pearson', 'spearman', 'mse'\]",
    ),
    CLICase(
        "unknown-flag",
        f"{TRAIN_FILE} --lerning_rate 1e-4",
        r"unrecognized argument --lerning_rate \(did you mean --learning_rate\?\)",
    ),
    # 5. run files
    CLICase(
        "config-file-with-an-unknown-key",
        "{tmp}/run.yaml",
        r"{tmp}/run.yaml: unknown option 'lerning_rate' \(did you mean learning_rate\?\)",
        files=(("run.yaml", "arch: bert\nlerning_rate: 1.0e-4\noutput_dir: out\n"),),
    ),
    CLICase(
        "config-file-of-malformed-yaml",
        "{tmp}/run.yaml",
        r"{tmp}/run.yaml, line 3: invalid YAML \(expected ',' or '\]', but got ':'\)",
        files=(("run.yaml", "arch: bert\nmodel_name_or_path: [unclosed\ndo_train: true\n"),),
    ),
    CLICase(
        "config-file-not-a-mapping",
        "{tmp}/run.yaml",
        "{tmp}/run.yaml: expected a mapping of option names to values, got list",
        files=(("run.yaml", "- arch\n- bert\n"),),
    ),
    CLICase(
        "config-file-of-malformed-json",
        "{tmp}/run.json",
        r"{tmp}/run.json, line 2: invalid JSON \(Expecting property name enclosed in double quotes\)",
        files=(("run.json", '{"arch": "bert",\n}\n'),),
    ),
    # 6. data files
    CLICase(
        "latin-1-csv",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        r"{tmp}/train.csv, line 3: not UTF-8 \(byte 0xe9 at character 6\); save the file as UTF-8",
        files=(("train.csv", LATIN_1),),
    ),
    CLICase(
        "latin-1-jsonl",
        TRAIN_FILE,
        r"{tmp}/train.jsonl, line 3: not UTF-8 \(byte 0xe9 at character 19\)",
        files=(
            (
                "train.jsonl",
                GOOD_TRAIN.encode() + '{"sentence1": "café", "sentence2": "b", "score": 1}\n'.encode("latin-1"),
            ),
        ),
    ),
    CLICase(
        "train-file-is-a-folder",
        TRAIN_FILE.replace("train.jsonl", "data"),
        r"{tmp}/data is a folder, not a data file \(csv, tsv, json or jsonl\)",
        files=(("data/train.jsonl", GOOD_TRAIN),),
    ),
    # 7. damaged model and encoder folders
    CLICase(
        "saved-model-with-truncated-weights",
        saved_model("truncated"),
        r"{saved_truncated}/model.safetensors is damaged or not a safetensors file \(Error while deserializing "
        "header: incomplete metadata, file not fully covered\\)",
    ),
    CLICase(
        "saved-model-with-garbage-weights",
        saved_model("garbage"),
        "{saved_garbage}/model.safetensors is damaged or not a safetensors file",
    ),
    CLICase(
        "saved-model-without-config",
        saved_model("no_config"),
        "{saved_no_config} has no config.json: not a saved model or encoder folder",
    ),
    CLICase(
        "saved-model-without-weights",
        saved_model("no_weights"),
        "{saved_no_weights} has no model weights: model.safetensors is missing",
    ),
    CLICase(
        "encoder-with-truncated-weights",
        f"{TRAIN_FILE} --model_name_or_path {{encoder_truncated}}",
        "{encoder_truncated}/model.safetensors is damaged or not a safetensors file",
    ),
    CLICase(
        "encoder-with-garbage-weights",
        f"{TRAIN_FILE} --model_name_or_path {{encoder_garbage}}",
        "{encoder_garbage}/model.safetensors is damaged or not a safetensors file",
    ),
    CLICase(
        "encoder-without-config",
        f"{TRAIN_FILE} --model_name_or_path {{encoder_no_config}}",
        "{encoder_no_config} has no config.json",
    ),
    CLICase(
        "encoder-without-weights",
        f"{TRAIN_FILE} --model_name_or_path {{encoder_no_weights}}",
        "{encoder_no_weights} has no model weights: model.safetensors is missing",
    ),
    # 8. the output folder
    CLICase(
        "output-dir-is-a-file",
        f"{TRAIN_FILE} --output_dir {{tmp}}/results.txt",
        "--output_dir {tmp}/results.txt is a file, not a folder",
        files=(("results.txt", "notes"),),
    ),
    CLICase(
        "disk-full-while-saving-a-checkpoint",
        f"{TRAIN_FILE} --max_steps 1 --save_strategy steps --save_steps 1",
        "--output_dir {out}: No space left on device writing {out}/checkpoint-1/model.safetensors; removed the "
        "incomplete checkpoint-1$",
        patch=disk_full_from_write(1),
    ),
    CLICase(
        "disk-full-as-safetensors-reports-it",
        f"{TRAIN_FILE} --max_steps 1 --save_strategy steps --save_steps 1",
        "--output_dir {out}: No space left on device writing the outputs; removed the incomplete checkpoint-1$",
        patch=disk_full_from_write(1, raises="SafetensorError"),
    ),
    CLICase(
        "load-best-model-without-evaluation",
        f"{TRAIN_FILE} --load_best_model_at_end true",
        "--load_best_model_at_end requires the save and eval strategy to match",
    ),
    CLICase("fp16-and-bf16", f"{TRAIN_FILE} --fp16 --bf16", "At most one of fp16 and bf16 can be True, but not both"),
    CLICase(
        "bf16-unknown-value", f"{TRAIN_FILE} --bf16 sometimes", "--bf16: expected true, false or auto, got 'sometimes'"
    ),
    # errors that held before issue #12, kept here so that they keep holding
    CLICase(
        "train-file-not-found",
        TRAIN_FILE.replace("train.jsonl", "missing.csv"),
        "data file not found: {tmp}/missing.csv",
    ),
    CLICase(
        "missing-column",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        r"{tmp}/train.csv: missing column\(s\) \['sentence2'\]",
        files=(("train.csv", "sentence1,text_b,score\na,b,1\n"),),
    ),
    CLICase(
        "score-not-a-number",
        TRAIN_FILE.replace("train.jsonl", "train.csv"),
        "{tmp}/train.csv, line 2: score 'n/a' is not a number",
        files=(("train.csv", "sentence1,sentence2,score\na,b,n/a\n"),),
    ),
    CLICase(
        "score-outside-the-range",
        f"{TRAIN_FILE} --score_max 4",
        r"{tmp}/train.jsonl, line 2: score 4.6 is outside the score range \[0.0, 4.0\]",
    ),
    CLICase(
        "do-eval-without-dev-data",
        f"{TRAIN_FILE} --do_eval",
        r"--do_eval needs a validation split; found splits \['train'\]",
    ),
    CLICase(
        "saved-model-of-another-arch",
        "--arch siamese --model_name_or_path {saved} --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        "{saved} holds a 'bert' model, not '--arch siamese'",
    ),
    CLICase(
        "model-folder-not-found",
        "--arch bert --model_name_or_path ./nowhere --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        "model folder not found: ./nowhere",
    ),
    CLICase(
        "hub-dataset-unreachable",
        "--arch bert --model_name_or_path {encoder} --do_predict --output_dir {out}",
        "dataset mteb/stsbenchmark-sts could not be loaded",
    ),
    CLICase(
        "loss-does-not-fit-the-data",
        "--arch siamese --loss batch_hard_triplet --model_name_or_path {encoder} --train_file {tmp}/train.jsonl "
        "--do_train --output_dir {out}",
        r"loss 'batch_hard_triplet' of the siamese model needs columns \[sentence, label\] \(labelled_sentences\); "
        r"the train data has columns \['anchor', 'positive'\] \(positive_pairs\)",
        files=(("train.jsonl", jsonl({"anchor": "a man", "positive": "a person"})),),
    ),
    CLICase("config-file-not-found", "{tmp}/run.yaml --output_dir {out}", "config file not found: {tmp}/run.yaml"),
    CLICase("unknown-arch", "--arch lstm --output_dir {out}", r"argument --arch: invalid choice: 'lstm'", status=2),
]


def success_files(folder: Path) -> dict[str, int]:
    """Files under `folder` that would look like a finished run: results, weights, checkpoints."""
    if not folder.exists():
        return {}
    looks_done = ("*results.json", "predict_results.tsv", "*.safetensors", "*.bin", "trainer_state.json")
    return {
        str(path.relative_to(folder)): path.stat().st_mtime_ns
        for pattern in looks_done
        for path in folder.rglob(pattern)
    }


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda case: case.id)
def test_cli_refuses_bad_input(case, run_sts_module, folders, tmp_path, capsys, monkeypatch):
    values = {**folders, "tmp": str(tmp_path), "out": str(tmp_path / "out")}
    for name, content in (("train.jsonl", GOOD_TRAIN),) + case.files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content, encoding="utf-8")
    if case.setup:
        case.setup(tmp_path, folders)
    if case.patch:
        case.patch(monkeypatch)
    before, existed = success_files(tmp_path / "out"), (tmp_path / "out").exists()
    argv = [token.format(**values) for token in case.argv.split()]
    try:
        status = run_sts_module.cli(argv)
    except SystemExit as exit:  # argparse
        status = exit.code
    stderr = capsys.readouterr().err
    assert status == case.status, stderr[-3000:]
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    if case.status == 1:
        assert last_line.startswith("run_sts.py: error: ")
    escaped = {name: re.escape(value) for name, value in values.items()}
    assert re.search(case.message.format(**escaped), last_line), last_line
    assert success_files(tmp_path / "out") == before  # nothing new, nothing rewritten
    assert existed or not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def predict_call(batch_size):
    return lambda f: STSRegressionModel.from_encoder(f["encoder"]).predict([PAIRS[0][:2]], batch_size=batch_size)


def encode_call(batch_size):
    return lambda f: STSSiameseModel.from_encoder(f["encoder"]).encode(["a man", "a dog"], batch_size=batch_size)


def siamese(folders) -> STSSiameseModel:
    return STSSiameseModel.from_encoder(folders["encoder"])


def float_labels_with_contrastive_loss(folders):
    model = STSSiameseModel.from_encoder(folders["encoder"], loss="contrastive").train()
    batch = make_batch(model, PAIRS, labels=[1.0, 0.0])  # scores, where the loss needs integer class labels
    return model(**batch)


@dataclass(frozen=True)
class APICase:
    id: str
    call: Callable[[dict], object]
    message: str
    error: type[Exception] = STSInputError


API_CASES = [
    APICase("from-encoder-without-tokenizer-files", lambda f: STSSiameseModel.from_encoder(f["no_tokenizer"]),
            "encoder-without-tokenizer has no tokenizer files: BertTokenizer reads tokenizer.json or vocab.txt"),
    APICase("saved-model-without-tokenizer-files",
            lambda f: AutoModel.from_pretrained(f["saved_no_tokenizer"]).predict([PAIRS[0][:2]]),
            "saved-bert-without-tokenizer has no tokenizer files"),
    APICase("tokenizer-of-special-tokens-only", lambda f: STSSiameseModel.from_encoder(f["specials_only"]),
            "holds only its 5 special tokens, no vocabulary"),
    APICase("predict-batch-size-negative", predict_call(-1), "batch_size must be a positive integer, got -1"),
    APICase("predict-batch-size-zero", predict_call(0), "batch_size must be a positive integer, got 0"),
    APICase("encode-batch-size-negative", encode_call(-1), "batch_size must be a positive integer, got -1"),
    APICase("encode-batch-size-zero", encode_call(0), "batch_size must be a positive integer, got 0"),
    APICase("semantic-search-top-k-zero",
            lambda f: sts_models.search.semantic_search(torch.ones(1, 4), torch.ones(3, 4), top_k=0),
            "top_k must be a positive integer, got 0"),
    APICase("float-labels-with-a-contrastive-loss", float_labels_with_contrastive_loss,
            r"loss 'contrastive' trains on \('labelled_pairs',\), not on scored_pairs \(torch.float32 labels\)",
            ValueError),
    APICase("config-max-seq-length-zero", lambda f: STSSiameseConfig(max_seq_length=0),
            "max_seq_length must be a positive number of tokens, got 0", ValueError),
    APICase("from-pretrained-max-seq-length-zero", lambda f: AutoModel.from_pretrained(f["saved"], max_seq_length=0),
            "max_seq_length must be a positive number of tokens, got 0", ValueError),
    APICase("encode-none-among-sentences", lambda f: siamese(f).encode(["A man plays.", None]),
            r"sentences\[1\] must be a string, got None"),
    APICase("encode-a-number", lambda f: siamese(f).encode(123),
            "sentences must be a string or a list of strings, got int 123"),
    APICase("predict-a-non-pair", lambda f: siamese(f).predict([PAIRS[0][:2], ("A dog runs.",)]),
            r"sentence_pairs\[1\] must be a pair of strings, got \('A dog runs.',\)"),
    APICase("load-model-with-an-option-of-another-arch", lambda f: load_model("cross", f["encoder"], head="mlp"),
            "head='mlp' does not apply to the cross arch: it is an option of siamese"),
    APICase("load-data-with-an-empty-score-range",
            lambda f: sts_models.data.load_sts_dataset(f["stsb"], score_range=(5.0, 5.0)),
            r"score_max \(5.0\) must be greater than score_min \(5.0\)"),
]  # fmt: skip


@pytest.mark.parametrize("case", API_CASES, ids=lambda case: case.id)
def test_api_refuses_bad_input(case, folders):
    with pytest.raises(case.error, match=case.message) as raised:
        case.call(folders)
    assert "\n" not in str(raised.value)


def test_the_command_exits_with_one_error_line(folders, tmp_path):
    """Across the process boundary: exit status 1, the error as the last line of stderr, no traceback."""
    (tmp_path / "train.jsonl").write_text(GOOD_TRAIN, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_sts.py"), "--arch", "siamese", "--model_name_or_path",
         folders["no_tokenizer"], "--train_file", str(tmp_path / "train.jsonl"), "--do_train",
         "--output_dir", str(tmp_path / "out")],
        capture_output=True, text=True, env=dict(os.environ), timeout=600,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"run_sts.py: error: {folders['no_tokenizer']} has no tokenizer files: BertTokenizer reads tokenizer.json "
        "or vocab.txt, and the folder has neither. Save the tokenizer beside the model"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("error", [TypeError("a programming error"), KeyError("a missing key")], ids=repr)
def test_the_command_keeps_the_traceback_of_other_errors(run_sts_module, monkeypatch, error):
    """Only bad input, a missing extra and errors of the file system become one line; a bug keeps its traceback."""

    def fail(argv):
        raise error

    monkeypatch.setattr(run_sts_module, "main", fail)
    with pytest.raises(type(error)):
        run_sts_module.cli([])


def test_the_command_reports_a_file_system_error_in_one_line(run_sts_module, monkeypatch, capsys):
    def fail(argv):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/train.csv")

    monkeypatch.setattr(run_sts_module, "main", fail)
    assert run_sts_module.cli([]) == 1
    assert capsys.readouterr().err == "run_sts.py: error: [Errno 13] Permission denied: '/data/train.csv'\n"


def test_a_full_disk_keeps_the_checkpoints_written_before(
    run_sts_module, tiny_encoder_dir, tmp_path, monkeypatch, capsys
):
    """The disk fills up while the second checkpoint is written: that checkpoint goes, the first one stays
    whole, and the run resumes from it once there is room."""
    data, out = tmp_path / "pairs.jsonl", tmp_path / "out"
    data.write_text(GOOD_TRAIN, encoding="utf-8")
    argv = ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--train_file", str(data), "--do_train",
            "--per_device_train_batch_size", "1", "--max_steps", "2", "--eval_strategy", "no",
            "--load_best_model_at_end", "false", "--save_strategy", "steps", "--save_steps", "1",
            "--save_total_limit", "5", "--output_dir", str(out)]  # fmt: skip
    with monkeypatch.context() as patch:
        disk_full_from_write(2)(patch)
        assert run_sts_module.cli(argv) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"run_sts.py: error: --output_dir {out}: No space left on device writing "
        f"{out}/checkpoint-2/model.safetensors; "
        "removed the incomplete checkpoint-2; kept checkpoint-1 (--resume_from_checkpoint true resumes from the last)"
    )
    assert os.listdir(out) == ["checkpoint-1"]
    assert json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())["global_step"] == 1

    run_sts_module.main([*argv, "--resume_from_checkpoint", "true"])
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
    assert {"model.safetensors", "all_results.json", "checkpoint-1", "checkpoint-2"} <= set(os.listdir(out))


# Reusing an output folder where it is allowed: nothing of the earlier run stays beside the new run's files.

PAIRS_4 = jsonl(*({"sentence1": a, "sentence2": b, "score": s} for a, b, s in PAIRS * 2))


def test_overwriting_leaves_nothing_of_the_earlier_run(run_sts_module, tiny_encoder_dir, tmp_path):
    """The issue's case: a siamese train+predict, then a bert train+eval into the same folder."""
    data, out = tmp_path / "pairs.jsonl", tmp_path / "out"
    data.write_text(PAIRS_4, encoding="utf-8")
    common = ["--model_name_or_path", tiny_encoder_dir, "--train_file", str(data), "--num_train_epochs", "1",
              "--do_train", "--output_dir", str(out)]  # fmt: skip
    run_sts_module.main(
        ["--arch", "siamese", *common, "--per_device_train_batch_size", "2", "--eval_strategy", "no",
         "--load_best_model_at_end", "false", "--test_file", str(data), "--do_predict"]
    )  # fmt: skip
    assert {"predict_results.tsv", "modeling_siamese.py", "checkpoint-2"} <= set(os.listdir(out))
    (out / "notes.txt").write_text("the user's own file")

    run_sts_module.main(
        ["--arch", "bert", *common, "--per_device_train_batch_size", "4", "--validation_file", str(data),
         "--do_eval", "--overwrite_output_dir"]
    )  # fmt: skip
    names = set(os.listdir(out))
    results = json.loads((out / "all_results.json").read_text())
    assert "eval_spearman" in results and not [key for key in results if key.startswith("test_")]
    assert not names & {"predict_results.tsv", "test_results.json", "modeling_siamese.py", "checkpoint-2"}
    assert {"modeling_regression.py", "checkpoint-1", "notes.txt"} <= names
    assert json.loads((out / "config.json").read_text())["model_type"] == "sts_regression"


def test_resuming_and_evaluating_in_place(run_sts_module, tiny_encoder_dir, tmp_path):
    """`--resume_from_checkpoint true` continues from the folder's last checkpoint, dropping the earlier
    results; a later evaluation of the saved model in its own folder replaces only the results."""
    data, out = tmp_path / "pairs.jsonl", tmp_path / "out"
    data.write_text(PAIRS_4, encoding="utf-8")
    common = ["--arch", "cross", "--model_name_or_path", tiny_encoder_dir, "--train_file", str(data), "--do_train",
              "--per_device_train_batch_size", "2", "--eval_strategy", "no", "--load_best_model_at_end", "false",
              "--save_strategy", "steps", "--save_steps", "1", "--save_total_limit", "5", "--output_dir", str(out)]  # fmt: skip
    run_sts_module.main([*common, "--max_steps", "2", "--test_file", str(data), "--do_predict"])
    assert "test_spearman" in json.loads((out / "all_results.json").read_text())
    first_steps = [(out / f"checkpoint-{step}" / "model.safetensors").stat().st_mtime_ns for step in (1, 2)]

    run_sts_module.main([*common, "--max_steps", "3", "--resume_from_checkpoint", "true"])
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 3
    # steps 1 and 2 were not run again: their checkpoints are the first run's
    assert [(out / f"checkpoint-{step}" / "model.safetensors").stat().st_mtime_ns for step in (1, 2)] == first_steps
    assert "test_spearman" not in json.loads((out / "all_results.json").read_text())
    assert not (out / "predict_results.tsv").exists()

    weights = (out / "model.safetensors").stat().st_mtime_ns
    evaluate = ["--model_name_or_path", str(out), "--test_file", str(data), "--do_predict", "--output_dir", str(out)]
    run_sts_module.main([*evaluate, "--overwrite_output_dir"])
    assert set(json.loads((out / "all_results.json").read_text())) >= {"test_spearman", "test_samples"}
    assert "train_loss" not in json.loads((out / "all_results.json").read_text())
    assert (out / "model.safetensors").stat().st_mtime_ns == weights and (out / "checkpoint-3").is_dir()
