"""`run_sts.py` end to end on a tiny encoder and a few STS-B pairs, and its one-line errors."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import spearmanr
from transformers import AutoModel

import sts_models
from sts_models.errors import STSUserError

from .conftest import REPO_ROOT, STSB_DIR, read_stsb

SCRIPT = str(REPO_ROOT / "run_sts.py")


def run_script(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=cwd, env=dict(os.environ), timeout=600
    )


def test_train_eval_predict_end_to_end(tiny_encoder_dir, tmp_path):
    output_dir = tmp_path / "out"
    result = run_script(
        "--arch", "cross", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
        "--max_train_samples", "32", "--max_eval_samples", "24", "--max_predict_samples", "16",
        "--num_train_epochs", "2", "--per_device_train_batch_size", "8", "--learning_rate", "1e-3",
        "--do_train", "--do_eval", "--do_predict", "--output_dir", str(output_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((output_dir / "all_results.json").read_text())
    for key in ("train_loss", "eval_pearson", "eval_spearman", "eval_mse", "test_pearson", "test_spearman"):
        assert key in results
    assert results["eval_samples"] == 24 and results["test_samples"] == 16
    predictions = (output_dir / "predict_results.tsv").read_text(encoding="utf-8").splitlines()
    assert predictions[0].split("\t") == ["index", "sentence1", "sentence2", "score", "prediction"]
    assert len(predictions) == 17

    model = AutoModel.from_pretrained(output_dir)
    assert type(model).__name__ == "STSCrossAttentionModel"
    dev = read_stsb("sts-dev.csv", limit=24)
    spearman = spearmanr(model.predict([(a, b) for a, b, _ in dev]), [s for *_, s in dev])[0]
    assert spearman == pytest.approx(results["eval_spearman"], abs=1e-4)
    # the best-on-dev checkpoint was kept, and the predictions file is on the 0-5 scale of the model's predict
    test = read_stsb("sts-test.csv", limit=16)
    written = [float(line.split("\t")[4]) for line in predictions[1:]]
    assert written == pytest.approx(list(model.predict([(a, b) for a, b, _ in test])), abs=1e-4)


def test_yaml_config_file(tiny_encoder_dir, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "\n".join(
            [
                "arch: siamese",
                f"model_name_or_path: {tiny_encoder_dir}",
                f"dataset_name: {STSB_DIR}",
                "max_eval_samples: 16",
                "max_predict_samples: 16",
                "do_predict: true",
                f"output_dir: {tmp_path / 'out'}",
            ]
        )
    )
    result = run_script(str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    assert "test_spearman" in results and "eval_spearman" in results


def warnings_of(caplog) -> list[str]:
    """What run_sts.py warned about."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("sts_models.cli") and record.levelno >= logging.WARNING
    ]


def test_training_without_dev_data_skips_selection(run_sts_module, tiny_encoder_dir, tmp_path, caplog):
    train = tmp_path / "train.jsonl"
    train.write_text(
        "\n".join(json.dumps({"sentence1": "a man", "sentence2": "a dog", "score": s}) for s in (1.0, 4.0))
    )
    run_sts_module.main(
        ["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--train_file", str(train),
         "--do_train", "--num_train_epochs", "1", "--output_dir", str(tmp_path / "out")]
    )  # fmt: skip
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert not (tmp_path / "out" / "eval_results.json").exists()
    assert warnings_of(caplog) == ["No validation split: training without evaluation or best-checkpoint selection"]


def test_prediction_without_dev_data_says_nothing_of_training(run_sts_module, tiny_encoder_dir, tmp_path, caplog):
    test = write_jsonl(
        tmp_path / "test.jsonl",
        [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in read_stsb("sts-test.csv", 4)],
    )
    run_sts_module.main(
        ["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--test_file", test, "--do_predict",
         "--output_dir", str(tmp_path / "out")]
    )  # fmt: skip
    assert json.loads((tmp_path / "out" / "all_results.json").read_text())["test_samples"] == 4
    assert warnings_of(caplog) == []


def test_resuming_takes_the_last_checkpoint_saved_whole(run_sts_module, tmp_path, capsys):
    """A run killed while saving leaves a checkpoint without trainer_state.json (the Trainer writes it last), or with
    one cut short."""
    output_dir = tmp_path / "out"
    for step, files in ((2, ["model.safetensors", "trainer_state.json"]), (4, ["model.safetensors"])):
        for name in files:
            (output_dir / f"checkpoint-{step}").mkdir(parents=True, exist_ok=True)
            (output_dir / f"checkpoint-{step}" / name).write_text("{}")
    (output_dir / "checkpoint-6").mkdir()
    (output_dir / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')
    from sts_models.cli.output_dir import last_checkpoint

    assert last_checkpoint(str(output_dir)) == str(output_dir / "checkpoint-2")
    train = ["--arch", "siamese", "--train_file", "train.jsonl", "--do_train", "--output_dir", str(output_dir)]
    assert run_sts_module.cli([*train, "--resume_from_checkpoint", str(output_dir / "checkpoint-4")]) == 1
    assert "checkpoint-4: no whole trainer_state.json, the checkpoint is incomplete" in capsys.readouterr().err
    assert run_sts_module.cli(train) == 1
    assert "pass --resume_from_checkpoint true to resume from checkpoint-2," in capsys.readouterr().err
    (output_dir / "checkpoint-2" / "trainer_state.json").unlink()
    assert run_sts_module.cli([*train, "--resume_from_checkpoint", "true"]) == 1
    assert f"no checkpoint-N folder in {output_dir} was saved whole" in capsys.readouterr().err


def test_resuming_with_other_optimizer_settings_is_refused(run_sts_module, tiny_encoder_dir, tmp_path, capsys):
    """The checkpoint's optimizer state holds its parameter groups: another head rate, decay or frozen layers would
    stop the Trainer with a traceback (another number of groups) or keep the old rates silently."""
    output_dir = tmp_path / "out"
    train = ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
             "--max_train_samples", "16", "--do_train", "--eval_strategy", "no", "--load_best_model_at_end", "false",
             "--save_strategy", "steps", "--save_steps", "1", "--per_device_train_batch_size", "8",
             "--layerwise_lr_decay", "0.5", "--output_dir", str(output_dir)]  # fmt: skip
    assert run_sts_module.cli([*train, "--max_steps", "1"]) == 0
    settings = json.loads((output_dir / "checkpoint-1" / "sts_optimizer_settings.json").read_text())
    assert settings == {"head_learning_rate": None, "layerwise_lr_decay": 0.5}
    capsys.readouterr()
    resume = [*train, "--max_steps", "2", "--resume_from_checkpoint", "true"]
    for flags, message in (
        (["--layerwise_lr_decay", "0.9"], "was trained with --layerwise_lr_decay 0.5, and this run gives 0.9"),
        (["--head_learning_rate", "1e-3"], "was trained with --head_learning_rate None, and this run gives 0.001"),
        (["--freeze_layers", "1"], "was trained with --freeze_layers 0, and this run gives 1"),
    ):
        assert run_sts_module.cli([*resume, *flags]) == 1
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
        assert (output_dir / "all_results.json").exists()  # refused before the earlier results are cleared
    assert run_sts_module.cli(resume) == 0
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 2


def write_jsonl(path, records) -> str:
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n", encoding="utf-8")
    return str(path)


SHAPED_RECORDS = {
    "multiple_negatives_ranking": [{"anchor": a, "positive": b} for a, b, _ in read_stsb("sts-train.csv", 24)],
    "triplet": [
        {"anchor": a, "positive": b, "negative": c}
        for (a, b, _), (_, c, _) in zip(read_stsb("sts-train.csv", 24), read_stsb("sts-dev.csv", 24))
    ],
    "batch_hard_triplet": [
        {"sentence": sentence, "label": index % 4}
        for index, (a, b, _) in enumerate(read_stsb("sts-train.csv", 12))
        for sentence in (a, b)
    ],
}


@pytest.mark.parametrize("loss", list(SHAPED_RECORDS))
def test_each_data_shape_trains_through_the_script(run_sts_module, tiny_encoder_dir, tmp_path, loss):
    train = write_jsonl(tmp_path / "train.jsonl", SHAPED_RECORDS[loss])
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", "siamese", "--loss", loss, "--model_name_or_path", tiny_encoder_dir, "--train_file", train,
         "--dataset_name", str(STSB_DIR), "--max_eval_samples", "16", "--do_train", "--num_train_epochs", "1",
         "--per_device_train_batch_size", "8", "--output_dir", str(output_dir)]
    )  # fmt: skip
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["train_samples"] == len(SHAPED_RECORDS[loss])
    assert "eval_spearman" in results  # selected on the STS-B dev split
    assert json.loads((output_dir / "config.json").read_text())["loss"] == loss


@pytest.mark.parametrize("loss", ["triplet", "batch_hard_triplet"])
def test_dev_data_of_another_shape_selects_on_dev_loss(run_sts_module, tiny_encoder_dir, tmp_path, loss):
    data = write_jsonl(tmp_path / "data.jsonl", SHAPED_RECORDS[loss])
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", "siamese", "--loss", loss, "--model_name_or_path", tiny_encoder_dir, "--train_file", data,
         "--validation_file", data, "--do_train", "--num_train_epochs", "2", "--per_device_train_batch_size", "8",
         "--dataset_name", str(STSB_DIR), "--do_predict", "--max_predict_samples", "16",
         "--output_dir", str(output_dir)]
    )  # fmt: skip
    results = json.loads((output_dir / "all_results.json").read_text())
    assert "eval_loss" in results and "eval_spearman" not in results
    # the test split is scored pairs: its correlations are reported whatever the dev data (they were left out)
    assert {"test_pearson", "test_spearman"} <= set(results)
    state = json.loads((output_dir / "trainer_state.json").read_text())
    losses = [entry["eval_loss"] for entry in state["log_history"] if "eval_loss" in entry]
    assert state["best_metric"] == pytest.approx(min(losses[:2]))


def test_selecting_on_mse_keeps_the_lowest(run_sts_module, tiny_encoder_dir, tmp_path):
    """The Trainer counts every metric but a loss as higher-is-better: MSE must select the lowest."""
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
         "--max_train_samples", "32", "--max_eval_samples", "32", "--do_train", "--max_steps", "3",
         "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--eval_strategy", "steps",
         "--save_strategy", "steps", "--eval_steps", "1", "--save_steps", "1", "--save_total_limit", "5",
         "--metric_for_best_model", "mse", "--output_dir", str(output_dir)]
    )  # fmt: skip
    state = json.loads((output_dir / "trainer_state.json").read_text())
    mses = [entry["eval_mse"] for entry in state["log_history"] if "eval_mse" in entry]
    assert len(set(mses)) == 3  # the steps differ, so the choice matters
    assert state["best_metric"] == pytest.approx(min(mses))


def test_a_saved_model_on_another_score_range_keeps_it(run_sts_module, tiny_encoder_dir, tmp_path):
    """Without --score_min/--score_max, a saved model's own range checks the data and the teacher's scores: a model
    on 0-100 predicts and trains on 0-100 data, and teaches a student on its range (0-5 refused all of it)."""
    rows = read_stsb("sts-train.csv", limit=12)
    data = tmp_path / "pairs100.jsonl"
    data.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "score": s * 20}) + "\n" for a, b, s in rows))
    common = ["--train_file", str(data), "--max_steps", "1", "--eval_strategy", "no", "--load_best_model_at_end",
              "false", "--per_device_train_batch_size", "4"]  # fmt: skip
    saved = tmp_path / "on-100"
    run_sts_module.main(["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, *common, "--do_train",
                         "--score_max", "100", "--output_dir", str(saved)])  # fmt: skip
    run_sts_module.main(["--model_name_or_path", str(saved), "--test_file", str(data), "--do_predict",
                         "--output_dir", str(tmp_path / "predicted")])  # fmt: skip
    assert json.loads((tmp_path / "predicted" / "all_results.json").read_text())["test_samples"] == 12
    student = tmp_path / "student"
    run_sts_module.main(["--model_name_or_path", str(saved), *common, "--do_train", "--teacher_name_or_path",
                         str(saved), "--silver_neighbors", "1", "--silver_cache_dir", str(tmp_path / "cache"),
                         "--output_dir", str(student)])  # fmt: skip
    config = json.loads((student / "config.json").read_text())
    assert (config["score_min"], config["score_max"]) == (0.0, 100.0)
    (cache,) = (tmp_path / "cache").glob("silver-*.jsonl")
    scores = [json.loads(line)["score"] for line in cache.read_text().splitlines()[1:]]
    assert max(scores) > 5  # labelled on 0-100


def test_empty_values_of_a_run_file_are_the_defaults(run_sts_module, tmp_path):
    run_file = tmp_path / "run.yaml"
    run_file.write_text("arch: bert\nscore_max:\nresume_from_checkpoint: null\noutput_dir: out\n")
    model_args, data_args, training_args, _ = run_sts_module.parse_args([str(run_file)])
    assert data_args.score_max is None and training_args.resume_from_checkpoint is None


def test_a_run_files_values_may_start_with_a_dash(run_sts_module, tmp_path):
    """`score_min: -1` went as the flags `--score_min -1.0`, which argparse read as an option of its own."""
    run_file = tmp_path / "run.yaml"
    run_file.write_text(
        "arch: siamese\nscore_min: -1\nscore_max: 1.0e-5\nrun_name: -x\noutput_dir: out\ndo_train: true\n"
    )
    _, data_args, training_args, _ = run_sts_module.parse_args([str(run_file), "--score_max", "1"])
    assert (data_args.score_min, data_args.score_max) == (-1.0, 1.0)  # a flag after the run file still wins
    assert training_args.run_name == "-x" and training_args.do_train is True


def test_a_run_file_reads_yaml_as_its_core_schema(run_sts_module, tmp_path):
    """`eval_strategy: no` is the string "no" (YAML 1.1 made it False, which no option takes), and `1e-6` a number,
    also inside a mapping that goes to the Trainer as JSON."""
    run_file = tmp_path / "run.yaml"
    run_file.write_text(
        "arch: bert\neval_strategy: no\nsave_strategy: no\nload_best_model_at_end: false\nlearning_rate: 1e-4\n"
        "lr_scheduler_type: cosine_with_min_lr\nlr_scheduler_kwargs: {min_lr: 1e-6}\noutput_dir: out\n"
    )
    _, _, training_args, _ = run_sts_module.parse_args([str(run_file)])
    assert training_args.eval_strategy == "no" and training_args.save_strategy == "no"
    assert training_args.learning_rate == 1e-4 and training_args.lr_scheduler_kwargs == {"min_lr": 1e-6}
    run_file.write_text("arch: bert\ndo_train: on\nsymmetric: off\noutput_dir: out\n")  # YAML 1.1's on/off
    model_args, _, training_args, _ = run_sts_module.parse_args([str(run_file)])
    assert training_args.do_train is True and model_args.symmetric is False


def test_dataloader_drop_last_leaves_every_dev_and_test_pair_scored(run_sts_module, tiny_encoder_dir, tmp_path):
    """--dataloader_drop_last (for in-batch losses) dropped the last evaluation and prediction batch too: the dev and
    test correlations and predict_results.tsv left pairs out, while *_samples counted them all."""
    rows = [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in read_stsb("sts-test.csv", limit=10)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    pairs = str(tmp_path / "pairs.jsonl")
    run_sts_module.main(["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--train_file", pairs,
                         "--validation_file", pairs, "--test_file", pairs, "--do_train", "--do_eval", "--do_predict",
                         "--max_steps", "1", "--eval_strategy", "no", "--dataloader_drop_last", "true",
                         "--per_device_eval_batch_size", "4", "--output_dir", str(tmp_path / "out")])  # fmt: skip
    written = (tmp_path / "out" / "predict_results.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(written) == 10
    model = sts_models.STSSiameseModel.from_pretrained(tmp_path / "out")
    predictions = model.predict([(row["sentence1"], row["sentence2"]) for row in rows])
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    expected = spearmanr(predictions, [row["score"] for row in rows])[0]
    assert results["test_spearman"] == pytest.approx(expected, abs=1e-4)
    assert results["eval_spearman"] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("arch", ["siamese", "cross"])
def test_batch_rebalance_sampling_trains_a_model_of_one_input_per_sentence(run_sts_module, tiny_encoder_dir, tmp_path,
                                                                           arch):  # fmt: skip
    """The stock `batch_rebalance` sampler reads each example's length, as `group_by_length` does: the length column
    was written for the latter only, and the sampler failed to infer lengths (a ValueError traceback)."""
    out = tmp_path / "out"
    run_sts_module.main(["--arch", arch, "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
                         "--max_train_samples", "16", "--do_train", "--max_steps", "2", "--eval_strategy", "no",
                         "--train_sampling_strategy", "batch_rebalance", "--output_dir", str(out)])  # fmt: skip
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2


def test_leading_zeros_in_a_run_file_read_as_the_same_flag_reads_them(run_sts_module, tmp_path):
    """YAML 1.1 read `010` as octal 8: a run file gave another seed than the same flag."""
    run_file = tmp_path / "run.yaml"
    run_file.write_text("arch: bert\nseed: 010\nsave_steps: 0100\noutput_dir: out\n")
    from_file = run_sts_module.parse_args([str(run_file)])[2]
    from_flags = run_sts_module.parse_args(["--arch", "bert", "--seed", "010", "--save_steps", "0100", "--output_dir",
                                            "out"])[2]  # fmt: skip
    assert (from_file.seed, from_file.save_steps) == (from_flags.seed, from_flags.save_steps) == (10, 100)


@pytest.mark.parametrize("flag", ["--eval_strategy", "--save_strategy"])
def test_a_strategy_of_no_turns_off_the_best_model_left_at_its_default(run_sts_module, flag):
    """run_sts.py keeps the best checkpoint by default; `--eval_strategy no` or `--save_strategy no` alone were refused
    by the Trainer as not matching, naming --load_best_model_at_end, which the user never gave."""
    training_args = run_sts_module.parse_args(["--arch", "bert", "--do_train", flag, "no", "--output_dir", "o"])[2]
    assert getattr(training_args, flag.removeprefix("--")) == "no" and not training_args.load_best_model_at_end
    with pytest.raises(STSUserError, match="--load_best_model_at_end requires the save and eval strategy to match"):
        run_sts_module.parse_args(
            ["--arch", "bert", flag, "no", "--load_best_model_at_end", "true", "--output_dir", "o"]
        )


@pytest.mark.parametrize(
    "flags", [["--do_eval", "false"], ["--do_eval=False"], ["--do_eval", "--do_eval", "no"], ["--do-eval", "false"]]
)
def test_do_eval_false_turns_off_the_run_files_evaluation(run_sts_module, tmp_path, flags):
    """The Trainer takes any eval_strategy but "no" as do_eval: `--do_eval false` has to turn evaluation off."""
    run_file = tmp_path / "run.yaml"
    run_file.write_text(
        "arch: bert\ndo_eval: true\neval_strategy: epoch\nload_best_model_at_end: true\noutput_dir: o\n"
    )
    training_args = run_sts_module.parse_args([str(run_file)])[2]
    assert training_args.do_eval and training_args.load_best_model_at_end
    training_args = run_sts_module.parse_args([str(run_file), *flags])[2]
    assert training_args.eval_strategy == "no" and not training_args.do_eval
    assert not training_args.load_best_model_at_end
    with pytest.raises(STSUserError, match="--save_strategy best"):
        run_sts_module.parse_args([str(run_file), "--save_strategy", "best", *flags])


def test_do_eval_false_trains_without_dev_scores(run_sts_module, tiny_encoder_dir, tmp_path):
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
         "--max_train_samples", "16", "--max_predict_samples", "16", "--num_train_epochs", "1",
         "--eval_strategy", "epoch", "--do_train", "--do_eval", "false", "--do_predict",
         "--output_dir", str(output_dir)]
    )  # fmt: skip
    results = json.loads((output_dir / "all_results.json").read_text())
    assert "test_spearman" in results and not any(key.startswith("eval_") for key in results)


@pytest.mark.parametrize("flags, value", [([], None), (["--symmetric"], True), (["--symmetric", "false"], False)])
def test_model_switches_work_as_bare_flags(run_sts_module, tmp_path, flags, value):
    model_args, *_ = run_sts_module.parse_args(["--arch", "bert", *flags, "--output_dir", str(tmp_path)])
    assert model_args.symmetric is value
    assert model_args.config_options()["symmetric"] is value


def test_gather_across_devices_reaches_the_config(run_sts_module, tiny_encoder_dir, tmp_path):
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", "siamese", "--loss", "cosent", "--gather_across_devices", "--model_name_or_path", tiny_encoder_dir,
         "--dataset_name", str(STSB_DIR), "--max_train_samples", "8", "--do_train", "--eval_strategy", "no",
         "--load_best_model_at_end", "false", "--num_train_epochs", "1", "--output_dir", str(output_dir)]
    )  # fmt: skip
    assert json.loads((output_dir / "config.json").read_text())["gather_across_devices"] is True


@pytest.mark.parametrize("arch", ["siamese", "cross"])
def test_length_grouped_batches_for_pairs(run_sts_module, tiny_encoder_dir, tmp_path, monkeypatch, arch):
    """`--train_sampling_strategy group_by_length` groups the pairs by their tokens over both sentences (a length
    column the Trainer keeps for its sampler), where the Trainer alone finds no `input_ids` to measure."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    seen = {}
    init = LengthGroupedSampler.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen["lengths"] = list(self.lengths)

    monkeypatch.setattr(LengthGroupedSampler, "__init__", spy)
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", arch, "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
         "--max_train_samples", "16", "--per_device_train_batch_size", "4", "--do_train", "--eval_strategy", "no",
         "--load_best_model_at_end", "false", "--num_train_epochs", "1", "--train_sampling_strategy",
         "group_by_length", "--output_dir", str(output_dir)]
    )  # fmt: skip
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 4
    model = AutoModel.from_pretrained(output_dir)
    train = read_stsb("sts-train.csv", limit=16)
    features = model.tokenize([a for a, _, _ in train], [b for _, b, _ in train])
    assert seen["lengths"] == [len(a) + len(b) for a, b in zip(features["input_ids_1"], features["input_ids_2"])]


def test_length_grouped_training_evaluates_and_predicts_in_input_order(run_sts_module, tiny_encoder_dir, tmp_path):
    """The stock Trainer groups the evaluation batches by length too (shuffling them) under group_by_length; the
    written test predictions must still be the test file's rows, in order, each with its own score."""
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
         "--max_train_samples", "16", "--max_eval_samples", "24", "--max_predict_samples", "24",
         "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--num_train_epochs", "1",
         "--train_sampling_strategy", "group_by_length", "--do_train", "--do_eval", "--do_predict",
         "--output_dir", str(output_dir)]
    )  # fmt: skip
    with open(output_dir / "predict_results.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    test = read_stsb("sts-test.csv", limit=24)
    assert [(r["sentence1"], r["sentence2"]) for r in rows] == [(a, b) for a, b, _ in test]
    model = AutoModel.from_pretrained(output_dir)
    expected = model.predict([(a, b) for a, b, _ in test], show_progress_bar=False)
    np.testing.assert_allclose([float(r["prediction"]) for r in rows], expected, atol=1e-4)


@pytest.mark.parametrize(("flags", "shown"), [([], True), (["--log_level", "warning"], False)])
def test_the_run_says_what_it_did_at_info(run_sts_module, tiny_encoder_dir, tmp_path, caplog, flags, shown):
    """Where the model went, as the docs say: logged at INFO on the first process unless --log_level says otherwise."""
    output_dir = tmp_path / "out"
    run_sts_module.main(
        ["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
         "--max_train_samples", "8", "--max_steps", "1", "--eval_strategy", "no", "--load_best_model_at_end", "false",
         "--do_train", "--output_dir", str(output_dir), *flags]
    )  # fmt: skip
    assert (f"Done: all_results.json and the model in {output_dir}" in caplog.text) is shown


def test_a_zero_shot_siamese_score_is_not_refused_for_its_losss_parameters(run_sts_module, tiny_encoder_dir, tmp_path):
    """softmax's classifier trains beside the model and never scores: the cosine head scores zero-shot."""
    run_sts_module.main(
        ["--arch", "siamese", "--loss", "softmax", "--model_name_or_path", tiny_encoder_dir, "--dataset_name",
         str(STSB_DIR), "--max_predict_samples", "8", "--do_predict", "--output_dir", str(tmp_path / "out")]
    )  # fmt: skip
    assert "test_spearman" in json.loads((tmp_path / "out" / "all_results.json").read_text())


GLUE_STSB_TEST = [{"sentence1": a, "sentence2": b, "score": -1.0} for a, b, _ in read_stsb("sts-test.csv", 4)]


@pytest.mark.parametrize(
    "test_rows, refusal",
    [
        (SHAPED_RECORDS["triplet"], r"missing column\(s\) \['sentence1', 'sentence2', 'score'\]"),  # e.g. all-nli
        (GLUE_STSB_TEST, r"row 0: score -1.0 is outside the score range"),  # GLUE's STS-B: test scores hidden as -1
    ],
)
def test_a_test_split_is_read_only_with_do_predict(
    run_sts_module, tiny_encoder_dir, tmp_path, monkeypatch, capsys, test_rows, refusal
):
    """A Hub dataset's test split that is not scored pairs on the run's range was refused even without --do_predict."""
    import datasets

    from sts_models import hub_data

    train = (
        SHAPED_RECORDS["triplet"]
        if "anchor" in test_rows[0]
        else [{"sentence1": a, "sentence2": b, "score": score} for a, b, score in read_stsb("sts-train.csv", 16)]
    )
    hub = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(train), "test": datasets.Dataset.from_list(test_rows)}
    )
    monkeypatch.setattr(hub_data, "load_dataset", lambda *args, **kwargs: hub)
    loss = "triplet" if "anchor" in train[0] else "cosent"
    flags = ["--arch", "siamese", "--loss", loss, "--model_name_or_path", tiny_encoder_dir,
             "--dataset_name", "someone/data", "--do_train", "--num_train_epochs", "1",
             "--per_device_train_batch_size", "8", "--output_dir", str(tmp_path / "out")]  # fmt: skip
    run_sts_module.main(flags)
    assert json.loads((tmp_path / "out" / "all_results.json").read_text())["train_samples"] == len(train)
    assert run_sts_module.cli([*flags, "--do_predict", "--overwrite_output_dir"]) != 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "someone/data (test)" in last and re.search(refusal, last), last
