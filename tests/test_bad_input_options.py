"""Bad command-line options and run files are refused, never read silently into wrong results (issue #12).

Each row of OPTION_CASES runs `run_sts.py` in-process through `run_sts.cli` (the same one-line handler as
the command) with a flag, a TrainingArguments value or a yaml/json run file that is out of range, unknown,
malformed or does not fit the encoder, head or loss. It checks the exit status, that the last line of stderr
is the one error line and matches the row, and that the run wrote no results, no model weights and no
checkpoint (`check_cli_refusal` in `bad_input_cases.py`). The last tests check that only bad input and
errors of the file system become one line: any other error keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from .bad_input_cases import EVAL, TRAIN_FILE, CLICase, check_cli_refusal, folders, jsonl  # noqa: F401

SIAMESE_TRAIN = TRAIN_FILE.replace("--arch bert", "--arch siamese --loss cosent")


def checkpoint_of(folder_name: str, hidden_size: int | None = None):
    """A `setup` writing {tmp}/checkpoint-2: the saved `bert` model (or one on an encoder of `hidden_size`) as a
    checkpoint saved whole."""

    def setup(tmp: Path, saved_folders: dict) -> None:
        checkpoint = tmp / "checkpoint-2"
        if hidden_size is None:
            shutil.copytree(saved_folders[folder_name], checkpoint)
        else:
            from transformers import BertConfig, BertModel

            from sts_models import STSSiameseModel

            encoder = tmp / "small-encoder"
            shutil.copytree(saved_folders["encoder"], encoder)
            config = BertConfig.from_pretrained(encoder)
            config.hidden_size, config.intermediate_size = hidden_size, hidden_size
            BertModel(config).save_pretrained(encoder)
            STSSiameseModel.from_encoder(str(encoder)).save_pretrained(checkpoint)
        (checkpoint / "trainer_state.json").write_text("{}")

    return setup


OPTION_CASES = [
    CLICase(
        "length-grouped-batches-without-their-length-column",
        f"{SIAMESE_TRAIN} --train_sampling_strategy group_by_length --remove_unused_columns true",
        "--train_sampling_strategy group_by_length needs --remove_unused_columns false for this model",
    ),
    # training that would learn nothing, and resuming from a checkpoint of another model
    CLICase(
        "cosent-on-one-training-pair",
        SIAMESE_TRAIN,
        r"--loss cosent learns from the examples of a batch against each other, and the train split has 1 "
        r"example\(s\): it would train at loss 0",
        files=(("train.jsonl", jsonl({"sentence1": "a man", "sentence2": "a dog", "score": 2.0})),),
    ),
    CLICase(
        "cosent-on-batches-of-one",
        f"{SIAMESE_TRAIN} --per_device_train_batch_size 1",
        r"--loss cosent .* and --per_device_train_batch_size 1: it would train at loss 0 and learn nothing",
    ),
    CLICase(
        "cosent-on-constant-scores",
        SIAMESE_TRAIN,
        r"--loss cosent .* and every train pair is scored 3: it would train at loss 0",
        files=(("train.jsonl", jsonl(*({"sentence1": f"a {i}", "sentence2": "b", "score": 3} for i in range(4)))),),
    ),
    CLICase(
        "online-contrastive-on-batches-of-one",
        f"{SIAMESE_TRAIN.replace('cosent', 'online_contrastive')} --per_device_train_batch_size 1",
        r"--loss online_contrastive .* and --per_device_train_batch_size 1: it would train at loss 0",
        files=(
            ("train.jsonl", jsonl(*({"sentence1": f"a {i}", "sentence2": "b", "label": i % 2} for i in range(4)))),
        ),
    ),
    CLICase(
        "online-contrastive-on-one-label",
        SIAMESE_TRAIN.replace("cosent", "online_contrastive"),
        r"--loss online_contrastive .* and every train pair is labelled 1: it would train at loss 0",
        files=(("train.jsonl", jsonl(*({"sentence1": f"a {i}", "sentence2": "b", "label": 1} for i in range(4)))),),
    ),
    CLICase(
        "softmax-on-one-class",
        SIAMESE_TRAIN.replace("cosent", "softmax"),
        r"--loss softmax learns to tell classes apart, and every train pair is labelled 0: it would train at loss 0",
        files=(("train.jsonl", jsonl(*({"sentence1": f"a {i}", "sentence2": "b", "label": 0} for i in range(4)))),),
    ),
    CLICase(
        "resume-from-a-checkpoint-of-another-arch",
        TRAIN_FILE.replace("--arch bert", "--arch cross") + " --resume_from_checkpoint {tmp}/checkpoint-2",
        r"--resume_from_checkpoint {tmp}/checkpoint-2 holds a bert model, and this run trains a cross model: pass "
        r"--arch bert",
        setup=checkpoint_of("saved"),
    ),
    CLICase(
        "resume-from-a-checkpoint-of-another-shape",
        TRAIN_FILE.replace("--arch bert", "--arch siamese") + " --resume_from_checkpoint {tmp}/checkpoint-2",
        r"--resume_from_checkpoint {tmp}/checkpoint-2: its .* is \[\d+(, \d+)*\], this model's is \[\d+(, \d+)*\]: "
        r"resume with the base model and options the checkpoint was trained with",
        setup=checkpoint_of("saved", hidden_size=16),
    ),
    # lengths, epochs and sample counts
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
        "max-seq-length-negative",
        f"{TRAIN_FILE} --max_seq_length -1",
        "max_seq_length must be a positive number of tokens, got -1",
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
    CLICase(
        "max-eval-samples-zero",
        f"{TRAIN_FILE} {EVAL} --max_eval_samples 0",
        "--max_eval_samples 0 keeps no example",
    ),
    # options that do not fit the encoder, the head or the loss
    CLICase(
        "freeze-layers-beyond-the-encoder",
        f"{TRAIN_FILE} --freeze_layers 3",
        "freeze_layers=3 but the encoder has only 2 layers",
    ),
    CLICase("freeze-layers-negative", f"{TRAIN_FILE} --freeze_layers -1", "freeze_layers must be >= 0, got -1"),
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
        "loss-scale-zero",
        f"{TRAIN_FILE} --arch siamese --loss cosent --loss_scale 0",
        r"loss 'cosent': scale must be a finite number > 0, got 0.0",
    ),
    CLICase(
        "loss-margin-negative",
        f"{TRAIN_FILE} --arch siamese --loss contrastive --loss_margin -0.5",
        r"loss 'contrastive': margin must be a finite number >= 0, got -0.5",
    ),
    # TrainingArguments values
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
        "weight-decay-nan",
        f"{TRAIN_FILE} --weight_decay nan",
        "--weight_decay must be a finite number >= 0, got nan",
    ),
    CLICase(
        "report-to-an-integration-not-installed",
        f"{TRAIN_FILE} --report_to tensorboard",
        r"--report_to tensorboard: TensorBoardCallback requires tensorboard to be installed.* "
        r"\(pip install 'sts-models\[tensorboard\]'\)",
    ),
    CLICase(
        "layerwise-lr-decay-zero",
        f"{TRAIN_FILE} --layerwise_lr_decay 0",
        r"--layerwise_lr_decay must be in \(0, 1\], got 0.0",
    ),
    CLICase(
        "metric-for-best-model-misspelt",
        f"{TRAIN_FILE} {EVAL} --eval_strategy epoch --load_best_model_at_end true --metric_for_best_model spearmn",
        r"--metric_for_best_model 'spearmn' is none of the metrics evaluation reports: "
        r"\['loss', 'pearson', 'spearman', 'mse'\]",
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
    # the score range
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
    # unknown flags and choices
    CLICase(
        "unknown-flag",
        f"{TRAIN_FILE} --lerning_rate 1e-4",
        r"unrecognized argument --lerning_rate \(did you mean --learning_rate\?\)",
        status=2,  # as argparse's own errors (an unknown --arch)
    ),
    CLICase("unknown-arch", "--arch lstm --output_dir {out}", r"argument --arch: invalid choice: 'lstm'", status=2),
    # run files
    CLICase("config-file-not-found", "{tmp}/run.yaml --output_dir {out}", "config file not found: {tmp}/run.yaml"),
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
    CLICase(
        "config-file-with-an-option-twice",
        "{tmp}/run.yaml",
        r"{tmp}/run.yaml, line 3: invalid YAML \(option 'learning_rate' is given twice\)",
        files=(("run.yaml", "arch: bert\nlearning_rate: 1.0e-4\nlearning_rate: 2.0e-5\n"),),
    ),
    CLICase(
        "json-config-file-with-an-option-twice",
        "{tmp}/run.json",
        "{tmp}/run.json: option 'arch' is given twice",
        files=(("run.json", '{"arch": "bert", "arch": "cross"}\n'),),
    ),
    CLICase(
        "config-file-with-a-base-60-number",  # YAML 1.1 read 1:30 as 90 epochs
        "{tmp}/run.yaml",
        "argument --num_train_epochs.*: invalid float value: '1:30'",
        files=(("run.yaml", "arch: bert\nnum_train_epochs: 1:30\noutput_dir: out\n"),),
        status=2,
    ),
    # what a run would do with no word, or fail at in a traceback
    CLICase(
        "nothing-to-do",
        "--arch bert --model_name_or_path {encoder} --train_file {tmp}/train.jsonl --output_dir {out}",
        "nothing to do: pass --do_train, --do_eval or --do_predict",
    ),  # fmt: skip
    CLICase(
        "nothing-to-do-but-the-default-eval-strategy",
        "--arch siamese --model_name_or_path {encoder} --dataset_name {stsb} --output_dir {out}",
        "nothing to do: pass --do_train, --do_eval or --do_predict",
    ),
    CLICase(
        "zero-shot-scores-of-a-new-head",
        "--arch cross --model_name_or_path {encoder} --test_file {tmp}/train.jsonl --do_predict --output_dir {out}",
        r"{encoder} is a plain encoder and the run does not train: the cross model's new cross_attention, head, norm "
        r"would score at random",
    ),
    CLICase(
        "resume-without-training",
        "--model_name_or_path {saved} --test_file {tmp}/train.jsonl --do_predict --resume_from_checkpoint {tmp}/x "
        "--output_dir {out}",
        r"--resume_from_checkpoint {tmp}/x continues training: pass --do_train, or evaluate a checkpoint by passing",
    ),
    CLICase(
        "resume-from-a-checkpoint-of-other-parameters",
        TRAIN_FILE.replace("--arch bert", "--arch siamese --head mlp")
        + " --resume_from_checkpoint {tmp}/checkpoint-2",
        r"--resume_from_checkpoint {tmp}/checkpoint-2 holds other parameters than this model \(this model's alone: "
        r"head\.",
        setup=checkpoint_of("saved", hidden_size=32),
    ),
    CLICase(
        "resume-from-a-plain-encoder",
        f"{TRAIN_FILE} --resume_from_checkpoint {{tmp}}/checkpoint-2",
        r"--resume_from_checkpoint {tmp}/checkpoint-2 holds a plain bert model, not a checkpoint of an STS run",
        setup=checkpoint_of("encoder"),
    ),
    CLICase(
        "metric-that-evaluation-does-not-report-without-the-best-model",
        f"{TRAIN_FILE} {EVAL} --eval_strategy epoch --metric_for_best_model accuracy",
        r"--metric_for_best_model 'accuracy' is none of the metrics evaluation reports",
    ),
    CLICase("negative-seed", f"{TRAIN_FILE} --seed -1", r"--seed must be between 0 and 2\*\*32 - 1, got -1"),
    CLICase("negative-adam-epsilon", f"{TRAIN_FILE} --adam_epsilon -1", "--adam_epsilon must be a finite number >= 0"),
    CLICase("negative-workers", f"{TRAIN_FILE} --dataloader_num_workers -1", "--dataloader_num_workers must be 0 or"),
    CLICase("label-smoothing", f"{TRAIN_FILE} --label_smoothing_factor 0.1", "--label_smoothing_factor 0.1: the STS"),
    CLICase(
        "push-to-an-invalid-repo-id",
        f"{TRAIN_FILE} --push_to_hub --hub_model_id someone/team/model",
        r"--hub_model_id: 'someone/team/model' is no valid Hub repo id",
    ),
    CLICase(
        "push-to-hub-from-a-folder-whose-name-is-no-repo-id",
        f"{TRAIN_FILE} --push_to_hub".replace("{out}", "{tmp}/run@1"),
        r"--push_to_hub \(the --output_dir's name\): 'run@1' is no valid Hub repo id",
    ),
    CLICase(
        "predict-with-prediction-loss-only",
        f"{TRAIN_FILE} --do_predict --test_file {{tmp}}/train.jsonl --prediction_loss_only",
        "--do_predict needs the predictions that --prediction_loss_only leaves out",
    ),
    CLICase(
        "best-model-by-spearman-with-prediction-loss-only",
        f"{SIAMESE_TRAIN} {EVAL} --eval_strategy epoch --save_strategy epoch --load_best_model_at_end true "
        "--prediction_loss_only",
        r"--metric_for_best_model 'spearman' is none of the metrics evaluation reports: \['loss'\] "
        r"\(--prediction_loss_only leaves it the loss\)",
    ),
    CLICase(
        "output-dir-that-cannot-be-locked",
        TRAIN_FILE.replace("{out}", "/proc/sts-out"),
        r"--output_dir /proc/sts-out: cannot write its lock file /proc/\.sts-out\.sts-models\.lock",
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", OPTION_CASES, ids=lambda case: case.id)
def test_cli_refuses_bad_options(case, run_sts_module, folders, tmp_path, capsys, monkeypatch):  # noqa: F811
    check_cli_refusal(case, run_sts_module, folders, tmp_path, capsys, monkeypatch)


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


def test_an_empty_hub_model_id_is_refused_before_any_work(run_sts_module, folders, tmp_path, capsys):  # noqa: F811
    """`--hub_model_id ""` passed the check as the output folder's name, then the Trainer tried to make the repo ''."""
    argv = ["--arch", "bert", "--model_name_or_path", folders["encoder"], "--do_train", "--push_to_hub",
            "--hub_model_id", "", "--output_dir", str(tmp_path / "h2")]  # fmt: skip
    assert run_sts_module.cli(argv) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("run_sts.py: error: --hub_model_id: '' is no valid Hub repo id")


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_output_dir_is_refused_before_any_work(run_sts_module, folders, value, capsys):  # noqa: F811
    """`--output_dir "$OUT"` with OUT unset: the run loaded its data and model, then failed in `os.makedirs('')`
    naming no flag (and its lock file went beside the current folder)."""
    argv = ["--arch", "bert", "--model_name_or_path", folders["encoder"], "--do_train", "--output_dir", value]
    assert run_sts_module.cli(argv) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "run_sts.py: error: --output_dir is empty (an unset variable?): name the folder to write the model to"
    )


def test_a_run_that_diverges_saves_no_model(run_sts_module, folders, tmp_path, capsys):  # noqa: F811
    """A learning rate that sends the weights to NaN: the run ended with status 0, a model card, and NaN
    predictions (the logged loss leaves the NaN steps out)."""
    out = tmp_path / "out"
    (tmp_path / "train.jsonl").write_text(
        '{"sentence1": "a man plays", "sentence2": "a man sings", "score": 3.0}\n'
        '{"sentence1": "a dog runs", "sentence2": "a cat sleeps", "score": 1.0}\n'
    )
    argv = ["--arch", "bert", "--model_name_or_path", folders["encoder"], "--do_train", "--train_file",
            str(tmp_path / "train.jsonl"), "--eval_strategy", "no", "--max_steps", "3", "--learning_rate", "1e30",
            "--max_grad_norm", "0", "--output_dir", str(out)]  # fmt: skip
    assert run_sts_module.cli(argv) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("run_sts.py: error: training diverged: ") and "is not finite after step 3" in last
    assert "the checkpoints saved on the way may hold NaN weights too" in last
    assert not list(out.glob("*.safetensors")) and not (out / "README.md").exists()
    assert not list(out.glob("*results.json"))


def test_evaluating_with_prediction_loss_only_reports_the_loss(run_sts_module, folders, tmp_path):  # noqa: F811
    """The best metric is tracked while training only: an evaluation alone with --prediction_loss_only is no
    refusal (run_sts.py's default --metric_for_best_model spearman does not apply)."""
    (tmp_path / "dev.jsonl").write_text(
        '{"sentence1": "a man plays", "sentence2": "a man sings", "score": 3.0}\n'
        '{"sentence1": "a dog runs", "sentence2": "a cat sleeps", "score": 1.0}\n'
    )
    run_sts_module.main(["--model_name_or_path", folders["saved"], "--validation_file", str(tmp_path / "dev.jsonl"),
                         "--do_eval", "--prediction_loss_only", "--output_dir", str(tmp_path / "out")])  # fmt: skip
    assert "eval_loss" in (tmp_path / "out" / "all_results.json").read_text()
