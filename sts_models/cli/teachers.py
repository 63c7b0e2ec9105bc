"""The distillation steps of a training run (`run_sts.py --teacher_name_or_path`): the teachers checked before any
of them runs, the silver pairs added to the training split, and the siamese teachers' sentence embeddings for
`--teacher_similarity_weight`."""

from __future__ import annotations

import logging
import os

import datasets
import torch

from ..data_collator import TEACHER_INDEX_FIELDS
from ..data_shapes import detect_data_shape
from ..distillation import (
    DistillationArguments,
    distilled_training_data,
    silver_labels,
    teacher_configs,
    teacher_sentence_embeddings,
    training_sentences,
)
from ..errors import STSUserError
from ..model_card_data import local_source
from ..teacher_embeddings import default_cache_dir
from ..training_args import STSTrainingArguments
from .arguments import DataArguments

logger = logging.getLogger(__name__)


def check_cache_dir(cache_dir: str) -> None:
    """Refuse a --silver_cache_dir that the labels (minutes of a large teacher's time) could not be written to: a
    file, a folder under a file, a folder that cannot be written to (the nearest one that exists); none is made."""
    if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
        raise STSUserError(f"--silver_cache_dir {cache_dir} is a file, not a folder")
    existing = os.path.abspath(cache_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise STSUserError(f"--silver_cache_dir {cache_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise STSUserError(f"--silver_cache_dir {cache_dir}: {existing} cannot be written to")


def check_teachers(
    raw: datasets.DatasetDict,
    data_args: DataArguments,
    training_args: STSTrainingArguments,
    distillation_args: DistillationArguments,
):
    """With --teacher_name_or_path, before any teacher runs: a run that trains, on data of scored pairs, a cache
    folder that can be one, and teachers that are trained STS models on the student's score range (one line naming
    what is wrong)."""
    if not distillation_args.teacher_name_or_path:
        return
    if not training_args.do_train:  # e.g. a distillation run file, evaluating its student: nothing to label
        logger.warning("--teacher_name_or_path is not used without --do_train: the teachers label training data")
        return
    check_cache_dir(distillation_args.silver_cache_dir or default_cache_dir())
    if detect_data_shape(raw["train"].column_names, "train") != "scored_pairs":
        raise STSUserError("--teacher_name_or_path needs training data of scored pairs (sentence1, sentence2, score)")
    teacher_configs(distillation_args.teacher_name_or_path, data_args.score_range)


def add_silver_pairs(
    raw: datasets.DatasetDict,
    data_args: DataArguments,
    training_args: STSTrainingArguments,
    distillation_args: DistillationArguments,
    held_out: list[str] = (),
) -> dict:
    """With --teacher_name_or_path: the training split becomes gold (soft targets) plus silver pairs, labelled by
    the teachers or read from their cache; returns the figures of it for the run's results (gold pairs first, then
    silver pairs). No silver pair takes a sentence of `held_out` (the dev and test sentences)."""
    teachers = distillation_args.teacher_name_or_path
    if not teachers or "train" not in raw:
        return {}
    with training_args.main_process_first(desc="silver labels"):
        rows, info = silver_labels(
            teachers,
            raw["train"],
            data_args.score_range,
            neighbors=distillation_args.silver_neighbors,
            random_share=distillation_args.silver_random_share,
            seed=training_args.sampling_seed,  # random pairs: --data_seed where given, else --seed
            cache_dir=distillation_args.silver_cache_dir,
            batch_size=training_args.per_device_eval_batch_size,
            bf16=training_args.bf16,
            held_out=held_out,
            use_cpu=training_args.use_cpu,
        )
    gold_pairs = len(raw["train"])
    raw["train"] = distilled_training_data(
        raw["train"], rows, data_args.score_range, distillation_args.teacher_score_weight
    )
    figures = {
        "gold_pairs": gold_pairs,
        "silver_pairs": info["silver_pairs"],
        "labelling_seconds": info["labelling_seconds"],  # when the cache was written, also for a reused one
        "silver_cache_reused": info["reused"],
    }
    if distillation_args.silver_pairs_per_epoch:
        figures["silver_pairs_per_epoch"] = min(distillation_args.silver_pairs_per_epoch, info["silver_pairs"])
    return figures


def teacher_data(
    model,
    raw: datasets.DatasetDict,
    data_args: DataArguments,
    training_args: STSTrainingArguments,
    distillation_args: DistillationArguments,
    held_out: list[str] = (),
) -> tuple[torch.Tensor | None, dict[str, int], dict]:
    """A run's distillation steps: the teacher embeddings (`teacher_similarity_targets`), the silver pairs added to
    `raw["train"]` (`add_silver_pairs`), and their figures for the run's results, also put on the model's card."""
    teacher_embeddings, teacher_rows, embedding_figures = teacher_similarity_targets(
        model, raw, data_args, training_args, distillation_args
    )
    figures = {**add_silver_pairs(raw, data_args, training_args, distillation_args, held_out), **embedding_figures}
    model.model_card_data.distillation = distillation_card(distillation_args, figures)
    return teacher_embeddings, teacher_rows, figures


def distillation_card(distillation_args: DistillationArguments, figures: dict) -> dict:
    """What the model card says of a run's distillation (`STSModelCardData.distillation`): its teachers (local ones
    by absolute path), the gold and silver pairs it trained on, and the options that made them; {} without one."""
    if not distillation_args.teacher_name_or_path:
        return {}
    options = ("silver_neighbors", "silver_random_share", "teacher_score_weight", "teacher_similarity_weight")
    return {
        "teachers": ", ".join(local_source(name) for name in distillation_args.teacher_name_or_path),
        # the run's figures: silver_pairs_per_epoch as the run took it (at most the silver pairs)
        **{
            name: figures[name] for name in ("gold_pairs", "silver_pairs", "silver_pairs_per_epoch") if name in figures
        },
        **{name: getattr(distillation_args, name) for name in options if getattr(distillation_args, name)},
    }


def teacher_similarity_targets(
    model,
    raw: datasets.DatasetDict,
    data_args: DataArguments,
    training_args: STSTrainingArguments,
    distillation_args: DistillationArguments,
) -> tuple[torch.Tensor | None, dict[str, int], dict]:
    """With --teacher_similarity_weight: the siamese teachers' embeddings of the training sentences (computed or read
    from their cache), each sentence's row in them, and the figures for the run's results. One line when the student
    is not siamese, before any teacher runs."""
    if not distillation_args.teacher_similarity_weight or "train" not in raw or not training_args.do_train:
        return None, {}, {}
    if training_args.remove_unused_columns:
        raise STSUserError(
            "--teacher_similarity_weight needs --remove_unused_columns false: the Trainer would drop the columns "
            "that give each sentence's teacher embedding"
        )
    if model.config.arch != "siamese":
        raise STSUserError(
            f"--teacher_similarity_weight trains a siamese student on its sentence embeddings; this student is "
            f"{model.config.arch!r} (the other distillation options work for every arch)"
        )
    sentences = training_sentences(raw["train"])
    with training_args.main_process_first(desc="teacher embeddings"):
        embeddings, info = teacher_sentence_embeddings(
            distillation_args.teacher_name_or_path,
            sentences,
            data_args.score_range,
            cache_dir=distillation_args.silver_cache_dir,
            batch_size=training_args.per_device_eval_batch_size,
            bf16=training_args.bf16,
            use_cpu=training_args.use_cpu,
        )
    rows = {sentence: row for row, sentence in enumerate(sentences)}
    return torch.from_numpy(embeddings), rows, {"teacher_embedding_seconds": info["embedding_seconds"]}


def with_teacher_indexes(tokenized: datasets.Dataset, raw: datasets.Dataset, rows: dict[str, int]) -> datasets.Dataset:
    """The tokenized training split plus each pair's two rows in the teachers' embeddings (`TEACHER_INDEX_FIELDS`)."""
    for field, column in zip(TEACHER_INDEX_FIELDS, ("sentence1", "sentence2")):
        tokenized = tokenized.add_column(field, [rows[sentence] for sentence in raw[column]])
    return tokenized
