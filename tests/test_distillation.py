"""Distillation (`run_sts.py --teacher_name_or_path`): silver pairs, the label cache, every teacher/student pair of
archs, and the refusal of a bad teacher."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

import sts_models
from sts_models.distillation import (
    distilled_training_data,
    neighbour_pairs,
    pair_key,
    silver_labels,
    teacher_sentence_embeddings,
    training_sentences,
)
from sts_models.errors import STSUserError
from sts_models.losses import similarity_distillation_loss
from sts_models.teacher_embeddings import sentence_embeddings

from .conftest import STSB_DIR

ARCHS = list(sts_models.ARCHITECTURES)
COMMON = ["--dataset_name", str(STSB_DIR), "--max_train_samples", "24", "--max_eval_samples", "8"]


def train(run_sts_module, *flags: str) -> None:
    run_sts_module.main([*COMMON, "--do_train", "--do_eval", "--max_steps", "1", "--report_to", "none", *flags])


@pytest.fixture(scope="module")
def teachers(run_sts_module, tiny_encoder_dir, tmp_path_factory) -> dict[str, str]:
    """A tiny trained model of each arch, to teach."""
    folders = {}
    for arch in ARCHS:
        folder = str(tmp_path_factory.mktemp(f"teacher-{arch}"))
        train(run_sts_module, "--arch", arch, "--model_name_or_path", tiny_encoder_dir, "--output_dir", folder,
              "--overwrite_output_dir")  # fmt: skip
        folders[arch] = folder
    return folders


@pytest.fixture(scope="module")
def train_split():
    from sts_models.data import load_sts_dataset

    return load_sts_dataset(str(STSB_DIR))["train"].select(range(40))


def test_neighbour_pairs_take_no_gold_pair_no_self_pair_and_no_pair_twice():
    sentences = [f"s{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(30, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    gold = {pair_key("s0", "s1"), pair_key("s2", "s3")}
    pairs = neighbour_pairs(sentences, embeddings, neighbors=3, exclude=gold, random_share=0.5)
    keys = [pair_key(*pair) for pair in pairs]
    assert len(keys) == len(set(keys))
    assert not set(keys) & gold
    assert all(a != b for a, b in pairs)
    # each sentence's nearest neighbour (by cosine) is among the pairs, unless that pair is gold
    nearest = (embeddings @ embeddings.T - 2 * np.eye(30)).argmax(axis=1)
    for i, j in enumerate(nearest):
        key = pair_key(sentences[i], sentences[j])
        assert key in set(keys) | gold
    neighbours_only = neighbour_pairs(sentences, embeddings, neighbors=3, exclude=gold)
    assert len(pairs) == len(neighbours_only) + round(0.5 * len(neighbours_only))


def test_silver_pairs_come_from_training_sentences_only_and_are_cached(teachers, train_split, tmp_path):
    rows, info = silver_labels([teachers["siamese"]], train_split, (0.0, 5.0), neighbors=2, cache_dir=str(tmp_path))
    sentences = set(train_split["sentence1"]) | set(train_split["sentence2"])
    gold = {pair_key(a, b) for a, b in zip(train_split["sentence1"], train_split["sentence2"])}
    silver = [row for row in rows if not row["gold"]]
    assert info["silver_pairs"] == len(silver) > 0 and not info["reused"]
    assert all(row["sentence1"] in sentences and row["sentence2"] in sentences for row in silver)
    assert not {pair_key(row["sentence1"], row["sentence2"]) for row in silver} & gold
    assert all(0.0 - 1.0 <= row["score"] <= 5.0 + 1.0 for row in rows)  # a cosine head may fall a little below 0
    # the gold pairs come first, in order, with the teacher's scores beside them
    assert [(r["sentence1"], r["sentence2"]) for r in rows if r["gold"]] == list(
        zip(train_split["sentence1"], train_split["sentence2"])
    )

    again, info_again = silver_labels(
        [teachers["siamese"]], train_split, (0.0, 5.0), neighbors=2, cache_dir=str(tmp_path)
    )
    assert info_again["reused"] and info_again["cache_file"] == info["cache_file"]
    assert again == rows
    # other options, another cache file
    _, other = silver_labels([teachers["siamese"]], train_split, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path))
    assert not other["reused"] and other["cache_file"] != info["cache_file"]
    assert len(list(tmp_path.glob("silver-*.jsonl"))) == 2 and not list(tmp_path.glob("*partial*"))
    # a damaged cache file (cut short, not JSON, a row without its score) is labelled again and replaced
    cache = Path(info["cache_file"])
    whole = cache.read_text()
    lines = whole.splitlines(keepends=True)
    without_score = json.dumps({key: value for key, value in json.loads(lines[1]).items() if key != "score"}) + "\n"
    nan_score, far_score = (json.dumps({**json.loads(lines[1]), "score": value}) + "\n" for value in (math.nan, 4e9))

    def label():
        return silver_labels([teachers["siamese"]], train_split, (0.0, 5.0), neighbors=2, cache_dir=str(tmp_path))

    edited = ["".join([lines[0], row, *lines[2:]]) for row in (without_score, nan_score, far_score)]
    # a header without the labelling time, which the run reports (a KeyError once the cache was taken)
    edited += [
        "".join([header, *lines[1:]]) for header in (json.dumps({"silver_pairs": info["silver_pairs"]}) + "\n", "[]\n")
    ]
    for damaged in (whole[: len(whole) // 2], "\xff" + whole, *edited, ""):
        cache.write_text(damaged)
        repaired, info_repaired = label()
        assert not info_repaired["reused"] and [row["sentence1"] for row in repaired] == [r["sentence1"] for r in rows]
        np.testing.assert_allclose([row["score"] for row in repaired], [row["score"] for row in rows], atol=1e-5)
        assert label()[1]["reused"]
    # the seed draws only the random pairs: without them another seed reuses the labels, with them it does not
    _, other_seed = silver_labels([teachers["siamese"]], train_split, (0.0, 5.0), neighbors=2, seed=7,
                                  cache_dir=str(tmp_path))  # fmt: skip
    assert other_seed["reused"] and other_seed["cache_file"] == info["cache_file"]
    _, seeded = silver_labels([teachers["siamese"]], train_split, (0.0, 5.0), neighbors=2, random_share=0.5,
                              cache_dir=str(tmp_path))  # fmt: skip
    _, reseeded = silver_labels([teachers["siamese"]], train_split, (0.0, 5.0), neighbors=2, random_share=0.5,
                                seed=7, cache_dir=str(tmp_path))  # fmt: skip
    assert not reseeded["reused"] and reseeded["cache_file"] != seeded["cache_file"]


def test_a_siamese_teachers_labels_of_identical_sentences_are_reused(teachers, train_split, tmp_path):
    """A cosine of two identical sentences rounds to a little above 1 in float32: a score a hair above the range's
    top, which the cache's check takes for the teacher's own."""
    from datasets import Dataset

    same = Dataset.from_dict({"sentence1": train_split["sentence1"], "sentence2": train_split["sentence1"],
                              "score": [5.0] * len(train_split)})  # fmt: skip
    rows, info = silver_labels([teachers["siamese"]], same, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path))
    assert not info["reused"]
    assert silver_labels([teachers["siamese"]], same, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path))[1]["reused"]


def test_a_teacher_with_another_tokenizer_labels_again(teachers, train_split, tmp_path):
    """The tokenizer is part of what a teacher computes: changed, its cached labels and embeddings are not reused."""
    teacher = tmp_path / "teacher"
    shutil.copytree(teachers["siamese"], teacher)
    cache_dir = str(tmp_path / "cache")
    rows, info = silver_labels([str(teacher)], train_split, (0.0, 5.0), neighbors=1, cache_dir=cache_dir)
    tokenizer = json.loads((teacher / "tokenizer.json").read_text())
    tokenizer["normalizer"]["lowercase"] = False  # "A man" and "a man" are other tokens now
    (teacher / "tokenizer.json").write_text(json.dumps(tokenizer))
    tokenizer_config = json.loads((teacher / "tokenizer_config.json").read_text())
    (teacher / "tokenizer_config.json").write_text(json.dumps({**tokenizer_config, "do_lower_case": False}))
    again, info_again = silver_labels([str(teacher)], train_split, (0.0, 5.0), neighbors=1, cache_dir=cache_dir)
    assert not info_again["reused"] and info_again["cache_file"] != info["cache_file"]
    assert [row["score"] for row in again] != [row["score"] for row in rows]
    assert len(list(Path(cache_dir).glob("embeddings-*.safetensors"))) == 2


def test_cached_labels_do_not_skip_the_teacher_checks(teachers, train_split, tmp_path):
    silver_labels([teachers["bert"]], train_split, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path))
    with pytest.raises(STSUserError, match="scores on 0-5, the student on 0-1"):
        silver_labels([teachers["bert"]], train_split, (0.0, 1.0), neighbors=1, cache_dir=str(tmp_path))


def test_a_teacher_named_by_hub_id_is_downloaded_when_the_hub_answers(teachers, train_split, tmp_path, monkeypatch):
    import huggingface_hub

    from sts_models import hub

    downloads = []

    def snapshot_download(repo_id, allow_patterns):
        downloads.append((repo_id, allow_patterns))
        if repo_id != "someone/sts-teacher":
            raise huggingface_hub.errors.RepositoryNotFoundError(
                f"404 Client Error.\n\nRepository Not Found: {repo_id}"
            )
        return teachers["bert"]

    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    rows, info = silver_labels(["someone/sts-teacher"], train_split, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path))
    assert info["silver_pairs"] > 0 and info["teachers"] == ["someone/sts-teacher"]
    repo_id, patterns = downloads[0]
    assert repo_id == "someone/sts-teacher" and "*.safetensors" in patterns and not any("bin" in p for p in patterns)
    with pytest.raises(STSUserError) as error:
        silver_labels(["someone/missing"], train_split, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path))
    message = str(error.value)
    assert "\n" not in message and message.startswith("--teacher_name_or_path someone/missing: model someone/missing:")


def test_bf16_labels_are_cached_apart_and_close_to_float32_labels(teachers, train_split, tmp_path):
    fp32, info = silver_labels([teachers["bert"]], train_split, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path))
    bf16, info_bf16 = silver_labels([teachers["bert"]], train_split, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path),
                                    bf16=True)  # fmt: skip
    assert not info_bf16["reused"] and info_bf16["cache_file"] != info["cache_file"] and info_bf16["bf16"]
    gold_fp32 = np.array([row["score"] for row in fp32 if row["gold"]])
    gold_bf16 = np.array([row["score"] for row in bf16 if row["gold"]])
    assert np.abs(gold_bf16 - gold_fp32).max() < 0.1  # on the 0-5 range
    assert (gold_bf16 != gold_fp32).any()  # autocast did run
    again, info_again = silver_labels([teachers["bert"]], train_split, (0.0, 5.0), neighbors=1,
                                      cache_dir=str(tmp_path), bf16=True)  # fmt: skip
    assert info_again["reused"] and again == bf16


def test_soft_targets_mix_gold_and_teacher_scores(train_split):
    rows = [{"sentence1": a, "sentence2": b, "score": 1.0, "gold": True} for a, b in
            zip(train_split["sentence1"], train_split["sentence2"])]  # fmt: skip
    rows.append({"sentence1": "x y", "sentence2": "y z", "score": 3.0, "gold": False})
    data = distilled_training_data(train_split, rows, (0.0, 5.0), teacher_score_weight=0.25)
    assert len(data) == len(train_split) + 1
    assert data["score"][:3] == pytest.approx([0.75 * s + 0.25 for s in train_split["score"][:3]])
    assert data[len(train_split)] == {"sentence1": "x y", "sentence2": "y z", "score": 3.0}


def test_teacher_scores_are_clipped_to_the_score_range(train_split):
    """A siamese teacher scores pairs that point apart below the range (a cosine of -1 is -5 on 0-5): no training
    target leaves the range, as no gold score may."""
    rows = [{"sentence1": a, "sentence2": b, "score": -5.0, "gold": True} for a, b in
            zip(train_split["sentence1"], train_split["sentence2"])]  # fmt: skip
    rows += [{"sentence1": "x y", "sentence2": "y z", "score": score, "gold": False} for score in (-2.5, 5.0001)]
    data = distilled_training_data(train_split, rows, (0.0, 5.0), teacher_score_weight=1.0)
    assert data["score"] == [0.0] * len(train_split) + [0.0, 5.0]


@pytest.mark.parametrize("student", ARCHS)
@pytest.mark.parametrize("teacher", ARCHS)
def test_every_teacher_teaches_every_student(run_sts_module, teachers, tiny_encoder_dir, tmp_path, teacher, student):
    output_dir = tmp_path / "student"
    train(run_sts_module, "--arch", student, "--model_name_or_path", tiny_encoder_dir, "--output_dir", str(output_dir),
          "--teacher_name_or_path", teachers[teacher], "--silver_cache_dir", str(tmp_path / "cache"),
          "--silver_neighbors", "2", "--teacher_score_weight", "0.5")  # fmt: skip
    results = json.loads((output_dir / "train_results.json").read_text())
    assert results["silver_pairs"] > 0
    assert results["train_samples"] == 24 + results["silver_pairs"]
    assert (output_dir / "model.safetensors").is_file()


@pytest.mark.parametrize("strategy", ["random", "group_by_length"])
def test_silver_pairs_per_epoch_read_a_different_part_of_the_silver_pairs_each_epoch(
    run_sts_module, teachers, tiny_encoder_dir, tmp_path, monkeypatch, strategy
):
    import sts_models.trainer

    samplers = []

    class Spy(sts_models.trainer.SilverPerEpochSampler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            samplers.append(self)

    monkeypatch.setattr(sts_models.trainer, "SilverPerEpochSampler", Spy)
    output_dir = tmp_path / "student"
    run_sts_module.main(
        [*COMMON, "--do_train", "--num_train_epochs", "2", "--per_device_train_batch_size", "8", "--report_to", "none",
         "--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--output_dir", str(output_dir),
         "--teacher_name_or_path", teachers["bert"], "--silver_cache_dir", str(tmp_path / "cache"),
         "--silver_neighbors", "3", "--silver_pairs_per_epoch", "8", "--train_sampling_strategy", strategy]
    )  # fmt: skip
    assert samplers and samplers[-1].epoch == 1  # the Trainer moved it to the second epoch
    assert (samplers[-1].lengths is not None) == (strategy == "group_by_length")
    results = json.loads((output_dir / "train_results.json").read_text())
    assert results["silver_pairs"] > 8 and results["silver_pairs_per_epoch"] == 8
    assert results["gold_pairs"] == 24
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 2 * 4  # (24 gold + 8 silver) / 8 a batch, two epochs; not all silver pairs
    samples = results["train_samples_per_second"] * results["train_runtime"]
    assert samples == pytest.approx(2 * 32, rel=0.05)  # the pairs read, not the dataset's length each epoch


def test_two_teachers_are_averaged(run_sts_module, teachers, train_split, tmp_path):
    both, _ = silver_labels([teachers["bert"], teachers["cross"]], train_split, (0.0, 5.0), neighbors=1,
                            cache_dir=str(tmp_path))  # fmt: skip
    one, _ = silver_labels([teachers["bert"]], train_split, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path))
    other, _ = silver_labels([teachers["cross"]], train_split, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path))
    gold = [row["score"] for row in both if row["gold"]]
    expected = [(a["score"] + b["score"]) / 2 for a, b in zip(one, other) if a["gold"]]
    assert gold == pytest.approx(expected, abs=1e-6)


def test_the_teachers_follow_use_cpu(run_sts_module, teachers, tiny_encoder_dir, tmp_path, monkeypatch):
    """The teachers label and embed where the run's --use_cpu says (on a machine without a GPU, it is set)."""
    import sts_models.distillation
    import sts_models.teacher_embeddings

    asked = []

    def spy(use_cpu: bool = False) -> str:
        asked.append(use_cpu)
        return "cpu"

    monkeypatch.setattr(sts_models.distillation, "teacher_device", spy)
    monkeypatch.setattr(sts_models.teacher_embeddings, "teacher_device", spy)
    train(run_sts_module, "--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--output_dir",
          str(tmp_path / "student"), "--teacher_name_or_path", teachers["siamese"], teachers["cross"],
          "--silver_cache_dir", str(tmp_path / "cache"), "--silver_neighbors", "1", "--teacher_similarity_weight", "1",
          "--use_cpu")  # fmt: skip
    assert asked == [True, True]  # the siamese teacher's embeddings, then the labels


def test_random_silver_pairs_follow_data_seed(run_sts_module, teachers, tiny_encoder_dir, tmp_path, monkeypatch):
    """The random silver pairs are data the run draws: seeded by --data_seed where given (as the Trainer's samplers
    and the silver sampler are), so a sweep over model seeds with one data seed trains on the same pairs."""
    import sts_models.cli.teachers

    seeds, real = [], sts_models.cli.teachers.silver_labels
    monkeypatch.setattr(
        sts_models.cli.teachers, "silver_labels", lambda *a, **k: seeds.append(k["seed"]) or real(*a, **k)
    )
    for seed in ("1", "2"):
        train(run_sts_module, "--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--output_dir",
              str(tmp_path / f"student-{seed}"), "--teacher_name_or_path", teachers["siamese"], "--silver_cache_dir",
              str(tmp_path / "cache"), "--silver_neighbors", "1", "--silver_random_share", "0.5", "--seed", seed,
              "--data_seed", "7")  # fmt: skip
    assert seeds == [7, 7]
    assert len(list((tmp_path / "cache").glob("*.jsonl"))) == 1  # the second run read the first one's labels


def test_the_card_of_a_distilled_model_names_its_teachers_and_silver_pairs(
    run_sts_module, teachers, tiny_encoder_dir, tmp_path
):
    """The card gave the gold and silver pairs together as the training data, and named no teacher."""
    from sts_models.model_card_data import CARD_DATA_NAME

    student = tmp_path / "student"
    train(run_sts_module, "--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--output_dir", str(student),
          "--teacher_name_or_path", teachers["cross"], "--silver_cache_dir", str(tmp_path / "cache"),
          "--silver_neighbors", "1", "--teacher_score_weight", "0.5")  # fmt: skip
    results = json.loads((student / "all_results.json").read_text())
    card = (student / "README.md").read_text(encoding="utf-8")
    assert f"- train: `{STSB_DIR}`, 24 examples (scored_pairs)" in card  # the gold pairs (--max_train_samples 24)
    distillation = json.loads((student / CARD_DATA_NAME).read_text())["distillation"]
    assert distillation == {"teachers": teachers["cross"], "gold_pairs": 24, "silver_pairs": results["silver_pairs"],
                            "silver_neighbors": 1, "teacher_score_weight": 0.5}  # fmt: skip
    assert "## Distillation" in card and f"| silver_pairs | `{results['silver_pairs']}` |" in card
    # trained again without a teacher, the card says no distillation
    again = tmp_path / "again"
    train(run_sts_module, "--model_name_or_path", str(student), "--output_dir", str(again))
    assert "## Distillation" not in (again / "README.md").read_text(encoding="utf-8")


def test_a_teacher_loads_whole_under_a_zero3_config(teachers, monkeypatch):
    """Under ZeRO-3, transformers loads each model partitioned over all processes (a collective): a teacher, which
    only the labelling process loads, waited for the others forever. It loads whole; the run's config stays set."""
    from transformers.integrations.deepspeed import (
        HfDeepSpeedConfig,
        is_deepspeed_zero3_enabled,
        unset_hf_deepspeed_config,
    )

    from sts_models.distillation import load_teacher

    config = HfDeepSpeedConfig({"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": 1})
    try:
        assert is_deepspeed_zero3_enabled()
        teacher = load_teacher("--teacher_name_or_path", teachers["bert"])
        assert is_deepspeed_zero3_enabled()  # the run's config is back
    finally:
        unset_hf_deepspeed_config()
    assert not any(hasattr(parameter, "ds_id") for parameter in teacher.parameters())
    reference = AutoModel.from_pretrained(teachers["bert"])
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), reference.state_dict().values()))
    del config


def test_silver_labels_with_use_cpu_label_on_the_cpu_beside_a_gpu(teachers, train_split, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _, info = silver_labels([teachers["bert"]], train_split, (0.0, 5.0), neighbors=1, cache_dir=str(tmp_path),
                            use_cpu=True)  # fmt: skip
    assert info["device"] == "cpu"


@pytest.mark.parametrize(
    "bad, message",
    [
        ("missing", r"--teacher_name_or_path .*missing: teacher folder not found"),
        ("encoder", r"--teacher_name_or_path .*: a plain bert encoder, not a trained STS model"),
        ("range", r"--teacher_name_or_path .*: scores on 0-5, the student on 0-1; give a teacher trained on the same"),
        ("future", r"--teacher_name_or_path .*: model_type 'sts_future' is none that transformers .* knows"),
        ("diverged", r"--teacher_name_or_path .*diverged: the teacher scores pairs as nan: it cannot teach$"),
    ],
)
def test_a_bad_teacher_is_refused_in_one_line(
    run_sts_module, teachers, tiny_encoder_dir, tmp_path, capsys, bad, message
):
    teacher = {"missing": str(tmp_path / "missing"), "encoder": tiny_encoder_dir, "range": teachers["bert"]}.get(bad)
    if bad == "future":  # a model of a later release: refused, not a prompt to run the folder's own code
        teacher = str(tmp_path / "future")
        shutil.copytree(teachers["bert"], teacher)
        config = json.loads((tmp_path / "future" / "config.json").read_text())
        (tmp_path / "future" / "config.json").write_text(json.dumps({**config, "model_type": "sts_future"}))
    if bad == "diverged":  # a teacher whose head diverged: every score NaN (a NaN encoder is refused earlier, by
        teacher = str(tmp_path / "diverged")  # the embeddings that pair the silver sentences)
        diverged = AutoModel.from_pretrained(teachers["bert"])
        with torch.no_grad():
            for name, weight in diverged.named_parameters():
                if not name.startswith("encoder."):
                    weight.fill_(float("nan"))
        diverged.save_pretrained(teacher)
    flags = ["--score_max", "1"] if bad == "range" else []
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps({"sentence1": f"a b {i}", "sentence2": f"b c {i}", "score": i % 2}) + "\n"
                                  for i in range(8)))  # fmt: skip
    status = run_sts_module.cli(
        ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--train_file", str(train_file), "--do_train",
         "--max_steps", "1", "--output_dir", str(tmp_path / "out"), "--teacher_name_or_path", teacher,
         "--silver_cache_dir", str(tmp_path / "cache"), *flags]
    )  # fmt: skip
    stderr = capsys.readouterr().err
    assert status == 1 and "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("run_sts.py: error: ")
    import re

    assert re.search(message, last), last
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--silver_neighbors", "-1"], "--silver_neighbors -1 must be 0 or more"),
        (["--teacher_score_weight", "1.5"], "--teacher_score_weight 1.5 must be between 0 and 1"),
        (["--silver_pairs_per_epoch", "-2"], "--silver_pairs_per_epoch -2 must be 0 or more"),
        (
            ["--silver_neighbors", "0", "--silver_random_share", "0.5"],
            "--silver_random_share needs --silver_neighbors above 0: there are no silver pairs",
        ),
        (
            ["--silver_neighbors", "0", "--silver_pairs_per_epoch", "5"],
            "--silver_pairs_per_epoch needs --silver_neighbors above 0: there are no silver pairs",
        ),
        (
            ["--silver_pairs_per_epoch", "5", "--train_sampling_strategy", "sequential"],
            "--silver_pairs_per_epoch draws random or length-grouped batches, not --train_sampling_strategy sequential",
        ),
    ],
)
def test_distillation_options_are_checked(run_sts_module, teachers, flags, message):
    with pytest.raises(STSUserError, match=message):
        run_sts_module.parse_args(["--output_dir", "x", "--teacher_name_or_path", teachers["bert"], *flags])


@pytest.mark.parametrize(
    "flag, value",
    [("silver_pairs_per_epoch", "100"), ("silver_neighbors", "8"), ("silver_random_share", "0.5"),
     ("teacher_score_weight", "0.5"), ("teacher_similarity_weight", "1"), ("silver_cache_dir", "cache")],
)  # fmt: skip
def test_distillation_options_without_a_teacher_are_refused(run_sts_module, flag, value):
    with pytest.raises(STSUserError, match=f"^--{flag} needs --teacher_name_or_path: there is no teacher$"):
        run_sts_module.parse_args(["--output_dir", "x", f"--{flag}", value])
    run_sts_module.parse_args(["--output_dir", "x"])  # the defaults are no distillation option


def test_teacher_sentence_embeddings_average_the_siamese_teachers_cosines_and_are_cached(
    teachers, train_split, tmp_path
):
    sentences = training_sentences(train_split)
    # the bert teacher scores pairs and embeds nothing: only the siamese one counts, here twice
    names = [teachers["siamese"], teachers["bert"], teachers["siamese"]]
    both, info = teacher_sentence_embeddings(names, sentences, (0.0, 5.0), cache_dir=str(tmp_path))
    one, _ = teacher_sentence_embeddings([teachers["siamese"]], sentences, (0.0, 5.0), cache_dir=str(tmp_path))
    assert info["teachers"] == [teachers["siamese"]] * 2 and not info["reused"]
    assert both.shape == (len(sentences), 2 * one.shape[1])
    np.testing.assert_allclose(both @ both.T, one @ one.T, atol=1e-5)  # the mean of two equal cosines
    np.testing.assert_allclose(np.linalg.norm(one, axis=1), 1.0, atol=1e-5)
    again, info = teacher_sentence_embeddings(names, sentences, (0.0, 5.0), cache_dir=str(tmp_path))
    assert info["reused"] and np.array_equal(again, both)
    assert len(set(info["cache_files"])) == 1 and not list(tmp_path.glob("*partial*"))  # a file per teacher
    # a damaged cache file is embedded again and replaced
    with open(info["cache_files"][0], "r+b") as handle:
        handle.write(b"\xff" * 16)
    repaired, info = teacher_sentence_embeddings(names, sentences, (0.0, 5.0), cache_dir=str(tmp_path))
    assert not info["reused"] and np.allclose(repaired, both, atol=1e-6)
    assert teacher_sentence_embeddings(names, sentences, (0.0, 5.0), cache_dir=str(tmp_path))[1]["reused"]


def test_teacher_similarity_trains_a_siamese_student(
    run_sts_module, teachers, tiny_encoder_dir, tmp_path, monkeypatch
):
    import sts_models.teacher_embeddings
    import sts_models.trainer

    calls = []

    def spy(embeddings, teacher_embeddings, **kwargs):
        calls.append((embeddings.shape, teacher_embeddings.shape))
        return similarity_distillation_loss(embeddings, teacher_embeddings, **kwargs)

    monkeypatch.setattr(sts_models.trainer, "similarity_distillation_loss", spy)
    embedded = []

    def embedding_spy(model, sentences, batch_size=64):
        embedded.append(type(model).__name__)
        return sentence_embeddings(model, sentences, batch_size)

    monkeypatch.setattr(sts_models.teacher_embeddings, "sentence_embeddings", embedding_spy)
    output_dir = tmp_path / "student"
    train(run_sts_module, "--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--output_dir",
          str(output_dir), "--teacher_name_or_path", teachers["siamese"], teachers["cross"], "--silver_cache_dir",
          str(tmp_path / "cache"), "--silver_neighbors", "1", "--teacher_similarity_weight", "1",
          "--per_device_train_batch_size", "4")  # fmt: skip
    (student_shape, teacher_shape) = calls[0]
    assert len(calls) == 1 and student_shape[0] == teacher_shape[0] == 8  # both sentences of 4 pairs
    results = json.loads((output_dir / "train_results.json").read_text())
    assert results["teacher_embedding_seconds"] >= 0 and results["silver_pairs"] > 0
    # the siamese teacher embedded the sentences once: for the silver pairs' neighbours, then read from the cache
    assert embedded == ["STSSiameseModel"]
    assert len(list((tmp_path / "cache").glob("embeddings-*.safetensors"))) == 1
    assert (output_dir / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "student, teacher, message",
    [
        ("bert", "siamese", "--teacher_similarity_weight trains a siamese student on its sentence embeddings; this "
         "student is 'bert'"),
        ("siamese", "cross", "--teacher_similarity_weight needs a siamese (bi-encoder) teacher among"),
    ],
)  # fmt: skip
def test_teacher_similarity_needs_siamese_models(run_sts_module, teachers, tiny_encoder_dir, tmp_path, student,
                                                 teacher, message):  # fmt: skip
    with pytest.raises(STSUserError, match=re.escape(message)):
        train(run_sts_module, "--arch", student, "--model_name_or_path", tiny_encoder_dir, "--output_dir",
              str(tmp_path / "out"), "--teacher_name_or_path", teachers[teacher], "--silver_cache_dir",
              str(tmp_path / "cache"), "--teacher_similarity_weight", "1")  # fmt: skip
    assert not list((tmp_path / "cache").glob("silver-*"))  # refused before any teacher labelled


@pytest.mark.parametrize("weight", ["-1", "nan", "inf"])
def test_teacher_similarity_weight_is_checked(run_sts_module, teachers, weight):
    with pytest.raises(STSUserError, match="--teacher_similarity_weight needs --teacher_name_or_path"):
        run_sts_module.parse_args(["--output_dir", "x", "--teacher_similarity_weight", "1"])
    with pytest.raises(
        STSUserError, match=rf"--teacher_similarity_weight -?{weight.strip('-')}(\.0)? must be 0 or more"
    ):
        run_sts_module.parse_args(["--output_dir", "x", "--teacher_name_or_path", teachers["bert"],
                                   "--teacher_similarity_weight", weight])  # fmt: skip


@pytest.mark.parametrize("case", ["triplets", "remove_unused_columns", "plain encoder"])
def test_teacher_similarity_refusals_come_before_any_teacher_runs(
    run_sts_module, teachers, tiny_encoder_dir, tmp_path, capsys, case
):
    flags = ["--teacher_name_or_path", teachers["siamese"]]
    if case == "triplets":
        train_file = tmp_path / "train.jsonl"
        train_file.write_text("".join(json.dumps({"anchor": f"a {i}", "positive": f"b {i}", "negative": f"c {i}"})
                                      + "\n" for i in range(8)))  # fmt: skip
        flags += ["--train_file", str(train_file), "--loss", "multiple_negatives_ranking"]
        message = "--teacher_name_or_path needs training data of scored pairs (sentence1, sentence2, score)"
    elif case == "remove_unused_columns":
        flags += ["--dataset_name", str(STSB_DIR), "--max_train_samples", "8", "--remove_unused_columns", "true"]
        message = "--teacher_similarity_weight needs --remove_unused_columns false"
    else:
        flags = ["--teacher_name_or_path", teachers["siamese"], tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
                 "--max_train_samples", "8"]  # fmt: skip
        message = f"--teacher_name_or_path {tiny_encoder_dir}: a plain bert encoder, not a trained STS model"
    status = run_sts_module.cli(
        ["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--do_train", "--max_steps", "1",
         "--output_dir", str(tmp_path / "out"), "--silver_cache_dir", str(tmp_path / "cache"),
         "--teacher_similarity_weight", "1", *flags]
    )  # fmt: skip
    stderr = capsys.readouterr().err
    assert status == 1 and "Traceback" not in stderr
    assert message in stderr.strip().splitlines()[-1]
    assert not (tmp_path / "cache").exists()  # no teacher embedded or labelled


def test_no_silver_pair_takes_a_held_out_sentence_or_a_sentence_twice(teachers, tmp_path):
    """Dev and test sentences that are also training sentences (STS-B shares about 250 with each) never enter a
    silver pair, so no dev or test pair is labelled for training; sentences that differ only in case or spacing are
    one sentence: never paired with each other, nor a gold pair again under another spacing."""
    from datasets import Dataset

    words = ["guitar", "piano", "violin", "drum", "flute", "horn", "harp", "cello"]
    pairs = [(f"A man plays the {a}.", f"A woman plays the {b}.") for a, b in zip(words, words[1:])]
    pairs += [
        ("A man plays  the guitar.", "a man plays the guitar. "),
        ("A man plays the guitar.", "A woman plays the piano."),
    ]
    train = Dataset.from_dict({"sentence1": [a for a, _ in pairs], "sentence2": [b for _, b in pairs],
                               "score": [float(i % 5) for i in range(len(pairs))]})  # fmt: skip
    held_out = ["A woman plays the violin.", "a  man plays the drum."]
    rows, info = silver_labels([teachers["siamese"]], train, (0.0, 5.0), neighbors=20, held_out=held_out,
                               cache_dir=str(tmp_path))  # fmt: skip
    silver = [pair_key(row["sentence1"], row["sentence2"]) for row in rows if not row["gold"]]
    taken = {sentence for pair in silver for sentence in pair}
    assert silver and not taken & {pair_key(*held_out)[0], pair_key(*held_out)[1]}
    assert all(a != b for a, b in silver) and len(silver) == len(set(silver))
    assert not set(silver) & {pair_key(a, b) for a, b in pairs}
    assert info["sentences_left_out"] == 2 + 2  # the two held out, the two twins of "A man plays the guitar."
    _, without = silver_labels([teachers["siamese"]], train, (0.0, 5.0), neighbors=20, cache_dir=str(tmp_path))
    assert without["cache_file"] != info["cache_file"] and without["silver_pairs"] > info["silver_pairs"]


def test_the_run_keeps_its_dev_and_test_sentences_out_of_the_silver_pairs(
    run_sts_module, teachers, tiny_encoder_dir, tmp_path
):
    """Also those of a split the run does not evaluate on (no --do_predict: the test sentences still stay out)."""
    sentences = [f"{who} {does} the {what}." for who in ("A man", "A girl") for does in ("plays", "tunes")
                 for what in ("guitar", "piano", "drum")]  # fmt: skip
    write = lambda name, rows: (tmp_path / name).write_text(  # noqa: E731
        "".join(json.dumps({"sentence1": a, "sentence2": b, "score": 2.5}) + "\n" for a, b in rows)
    )
    write("train.jsonl", zip(sentences[::2], sentences[1::2]))
    write("dev.jsonl", [(sentences[0], "Nothing alike.")])
    write("test.jsonl", [(sentences[3], "Nothing alike either.")])
    run_sts_module.main(
        ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--train_file", str(tmp_path / "train.jsonl"),
         "--validation_file", str(tmp_path / "dev.jsonl"), "--test_file", str(tmp_path / "test.jsonl"),
         "--do_train", "--eval_strategy", "no", "--load_best_model_at_end", "false", "--max_steps", "1",
         "--teacher_name_or_path", teachers["siamese"], "--silver_neighbors", "10",
         "--silver_cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "out")]
    )  # fmt: skip
    (cache,) = (tmp_path / "cache").glob("silver-*.jsonl")
    silver = [json.loads(line) for line in cache.read_text().splitlines()[1:]]
    taken = {row[key] for row in silver if not row["gold"] for key in ("sentence1", "sentence2")}
    assert taken and not taken & {sentences[0], sentences[3]}


def test_a_test_split_scored_minus_one_gives_its_sentences_without_do_predict(
    run_sts_module, teachers, tiny_encoder_dir, tmp_path, monkeypatch
):
    """GLUE's STS-B hides its test scores as -1: a distillation run reads the test split for its sentences only (it was
    refused for the scores, which only --do_predict uses), from the one load of the Hub dataset."""
    import datasets

    from sts_models import hub_data

    sentences = [f"{who} {does} the {what}." for who in ("A man", "A girl") for does in ("plays", "tunes")
                 for what in ("guitar", "piano", "drum")]  # fmt: skip
    train = [{"sentence1": a, "sentence2": b, "score": 2.5} for a, b in zip(sentences[::2], sentences[1::2])]
    test = [{"sentence1": sentences[3], "sentence2": "Nothing alike.", "score": -1.0}]
    hub = datasets.DatasetDict({"train": datasets.Dataset.from_list(train), "test": datasets.Dataset.from_list(test)})
    loads = []
    monkeypatch.setattr(hub_data, "load_dataset", lambda *args, **kwargs: loads.append(args) or hub)
    run_sts_module.main(
        ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", "someone/glue-like",
         "--do_train", "--max_steps", "1", "--teacher_name_or_path", teachers["siamese"], "--silver_neighbors", "10",
         "--silver_cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "out")]
    )  # fmt: skip
    (cache,) = (tmp_path / "cache").glob("silver-*.jsonl")
    silver = [json.loads(line) for line in cache.read_text().splitlines()[1:]]
    taken = {row[key] for row in silver if not row["gold"] for key in ("sentence1", "sentence2")}
    assert taken and sentences[3] not in taken
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    assert "test_spearman" not in results and results["silver_pairs"] > 0
    assert loads == [("someone/glue-like", None)]  # loaded once, for the split it trains on and the test sentences


def test_distillation_refusals_come_before_any_teacher_runs(
    run_sts_module, teachers, tiny_encoder_dir, tmp_path, capsys
):
    """A teacher that --overwrite_output_dir would delete, a cache folder that is a file or under one, a metric
    evaluation does not report, a --report_to integration that is not installed: refused in one line before the
    teachers label anything."""
    (tmp_path / "a-file").write_text("")
    shutil.copytree(teachers["bert"], tmp_path / "out")
    base = ["--arch", "bert", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
            "--max_train_samples", "8", "--max_eval_samples", "8", "--do_train", "--do_eval",
            "--max_steps", "1"]  # fmt: skip
    cases = [
        (["--teacher_name_or_path", str(tmp_path / "out"), "--output_dir", str(tmp_path / "out"),
          "--overwrite_output_dir", "--silver_cache_dir", str(tmp_path / "cache")],
         f"--overwrite_output_dir would delete {tmp_path / 'out'}, a teacher of this run"),
        (["--teacher_name_or_path", teachers["bert"], "--output_dir", str(tmp_path / "o2"),
          "--silver_cache_dir", str(tmp_path / "a-file")],
         f"--silver_cache_dir {tmp_path / 'a-file'} is a file, not a folder"),
        (["--teacher_name_or_path", teachers["bert"], "--output_dir", str(tmp_path / "o2"),
          "--silver_cache_dir", str(tmp_path / "a-file" / "cache")],
         f"--silver_cache_dir {tmp_path / 'a-file' / 'cache'}: {tmp_path / 'a-file'} is a file, not a folder"),
        (["--teacher_name_or_path", teachers["bert"], "--output_dir", str(tmp_path / "o4"),
          "--silver_cache_dir", str(tmp_path / "cache"), "--report_to", "tensorboard"],
         "--report_to tensorboard: TensorBoardCallback requires tensorboard to be installed"),
        (["--teacher_name_or_path", teachers["bert"], "--output_dir", str(tmp_path / "o3"),
          "--silver_cache_dir", str(tmp_path / "cache"), "--metric_for_best_model", "accuracy"],
         "--metric_for_best_model 'accuracy' is none of the metrics evaluation reports"),
    ]  # fmt: skip
    for flags, message in cases:
        assert run_sts_module.cli([*base, *flags]) == 1
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "cache").exists()  # nothing labelled
    assert (tmp_path / "out" / "model.safetensors").exists()  # the teacher is still there


def test_report_to_is_checked_without_making_an_installed_integrations_callback(tmp_path, monkeypatch):
    """The Trainer makes the callback of an installed --report_to integration (a wandb run, a TensorBoard writer):
    the check before the teachers label does not make it a first time."""
    from transformers.integrations import INTEGRATION_TO_CALLBACK, integration_utils

    import sts_models.cli.train
    from sts_models.training_args import STSTrainingArguments

    made = []

    class Callback:
        def __init__(self):
            made.append(self)

    monkeypatch.setitem(INTEGRATION_TO_CALLBACK, "tensorboard", Callback)
    monkeypatch.setattr(integration_utils, "is_tensorboard_available", lambda: True)  # installed
    args = STSTrainingArguments(output_dir=str(tmp_path), report_to=["tensorboard"])
    sts_models.cli.train.check_report_to(args)
    assert not made


def test_a_teacher_is_not_used_without_training(run_sts_module, teachers, tiny_encoder_dir, tmp_path, caplog):
    """A distillation run file evaluating its student: the teacher has nothing to label, and says so."""
    run_sts_module.main(
        ["--model_name_or_path", teachers["bert"], "--dataset_name", str(STSB_DIR), "--max_eval_samples", "8",
         "--do_eval", "--teacher_name_or_path", str(tmp_path / "gone"), "--output_dir", str(tmp_path / "out")]
    )  # fmt: skip
    assert "--teacher_name_or_path is not used without --do_train" in caplog.text
    assert "eval_spearman" in json.loads((tmp_path / "out" / "all_results.json").read_text())
