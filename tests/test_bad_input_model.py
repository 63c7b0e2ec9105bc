"""Bad model folders and Hub ids are refused, never loaded silently into wrong results (issue #12).

Each row of MODEL_CASES runs `run_sts.py` in-process through `run_sts.cli` (the same one-line handler as
the command) with a model or encoder folder that is missing, has no tokenizer files, a tokenizer of special
tokens alone, no config, no weights or damaged safetensors weights (the `folders` fixture), or that holds
another architecture than `--arch` or the options of another arch. It checks the exit status, that the last
line of stderr is the one error line and matches the row, and that the run wrote no results, no model
weights and no checkpoint (`check_cli_refusal` in `bad_input_cases.py`). One test runs the script as a
subprocess, where the process boundary is the point.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .bad_input_cases import GOOD_TRAIN, TRAIN, TRAIN_FILE, CLICase, check_cli_refusal, folders  # noqa: F401
from .conftest import REPO_ROOT


def saved_model(damage: str) -> str:
    return f"--model_name_or_path {{saved_{damage}}} --test_file {{tmp}}/train.jsonl --do_predict --output_dir {{out}}"


def saved_with_config(**fields):
    """A `setup` writing {tmp}/edited: the saved `bert` model with `fields` of its config.json replaced (a field
    given as a dict is merged into the one saved)."""

    def setup(tmp: Path, saved_folders: dict) -> None:
        shutil.copytree(saved_folders["saved"], tmp / "edited")
        path = tmp / "edited" / "config.json"
        config = json.loads(path.read_text())
        for name, value in fields.items():
            config[name] = {**config[name], **value} if isinstance(value, dict) else value
        path.write_text(json.dumps(config))

    return setup


def saved_with_damaged(name: str):
    """A `setup` writing {tmp}/edited: the saved `bert` model with its file `name` no longer valid JSON."""

    def setup(tmp: Path, saved_folders: dict) -> None:
        shutil.copytree(saved_folders["saved"], tmp / "edited")
        (tmp / "edited" / name).write_text("{not json")

    return setup


EDITED = "--model_name_or_path {tmp}/edited --test_file {tmp}/train.jsonl --do_predict --output_dir {out}"

MODEL_CASES = [
    # a config.json edited by hand: fields of the wrong type or shape, or that no longer fit the weights
    CLICase(
        "config-encoder-not-a-mapping",
        EDITED,
        r"{tmp}/edited: its config.json cannot be read \(AttributeError: ",
        setup=saved_with_config(encoder="bert"),
    ),
    CLICase(
        "config-field-of-the-wrong-type",
        EDITED,
        "score_max must be of type float, got '5'",
        setup=saved_with_config(score_max="5"),
    ),
    CLICase(
        "config-that-does-not-fit-the-weights",
        EDITED,
        "{tmp}/edited: the shapes of its weights do not fit its config.json",
        setup=saved_with_config(encoder={"intermediate_size": 40}),
    ),
    # model and encoder folders without a usable tokenizer
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
        "saved-model-with-a-damaged-tokenizer-json",
        EDITED,
        r"{tmp}/edited/tokenizer.json is not valid JSON \(Expecting property name enclosed in double quotes: line 1 "
        r"column 2 \(char 1\)\): save the tokenizer beside the model again",
        setup=saved_with_damaged("tokenizer.json"),
    ),
    CLICase(
        "saved-model-with-a-damaged-tokenizer-config",
        EDITED,
        r"{tmp}/edited/tokenizer_config.json is not valid JSON",
        setup=saved_with_damaged("tokenizer_config.json"),
    ),
    CLICase(
        "tokenizer-of-special-tokens-only",
        f"{TRAIN} --model_name_or_path {{specials_only}} --train_file {{tmp}}/train.jsonl --output_dir {{out}}",
        "the tokenizer of {specials_only} holds only its 5 special tokens, no vocabulary",
    ),
    # damaged or missing model and encoder folders
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
        "saved-model-with-pickled-weights",
        saved_model("pickled"),
        r"{saved_pickled} holds its weights as pytorch_model.bin \(a pickle\), and sts-models loads safetensors only",
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
    CLICase(
        "encoder-with-pickled-weights",
        f"{TRAIN_FILE} --model_name_or_path {{encoder_pickled}}",
        r"{encoder_pickled} holds its weights as pytorch_model.bin \(a pickle\), and sts-models loads safetensors",
    ),
    CLICase(
        "model-folder-not-found",
        "--arch bert --model_name_or_path ./nowhere --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        "model folder not found: ./nowhere",
    ),
    # another architecture: a saved model of another arch, options and losses of another arch
    CLICase(
        "saved-model-of-another-arch",
        "--arch siamese --model_name_or_path {saved} --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        "{saved} holds a 'bert' model, not '--arch siamese'",
    ),
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
]


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda case: case.id)
def test_cli_refuses_bad_models(case, run_sts_module, folders, tmp_path, capsys, monkeypatch):  # noqa: F811
    check_cli_refusal(case, run_sts_module, folders, tmp_path, capsys, monkeypatch)


def test_the_command_exits_with_one_error_line(folders, tmp_path):  # noqa: F811
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


def test_pickled_weights_are_never_unpickled(folders):  # noqa: F811
    from transformers import AutoModel

    import sts_models

    saved, encoder = Path(folders["saved_pickled"]), Path(folders["encoder_pickled"])
    refused = r"holds its weights as pytorch_model.bin \(a pickle\), and sts-models loads safetensors only"
    with pytest.raises(sts_models.errors.STSUserError, match=f"^{saved} {refused}"):
        AutoModel.from_pretrained(saved)  # an STS model's from_pretrained reads safetensors only
    with pytest.raises(sts_models.errors.STSUserError, match=f"^{encoder} {refused}"):
        sts_models.STSRegressionModel.from_encoder(str(encoder))
    assert not (saved / "UNPICKLED").exists() and not (encoder / "UNPICKLED").exists()
