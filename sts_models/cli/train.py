"""`sts-models train` (`run_sts.py`): fine-tune and evaluate an STS model (arch `bert`, `siamese` or `cross`) with
the stock `Trainer`, in the shape of transformers' `run_glue.py`: argument dataclasses and one linear `main`.

    sts-models train --arch cross --output_dir out/cross --do_train --do_eval --do_predict
    accelerate launch --config_file configs/accelerate_ddp.yaml --num_processes 4 run_sts.py configs/cross.yaml
    deepspeed run_sts.py configs/siamese.yaml --deepspeed configs/deepspeed_zero2.json
"""

from __future__ import annotations

import csv
import gc
import logging
import os

import datasets
import huggingface_hub
import torch
import transformers
from transformers import set_seed
from transformers.integrations import get_available_reporting_integrations, get_reporting_integration_callbacks

from ..architectures import load_model, saved_config_or_none
from ..artifacts import file_written_whole
from ..data import DEFAULT_DATASET, load_sts_dataset, tokenize_dataset
from ..data_collator import DataCollatorForSentencePairs
from ..data_shapes import check_data_fits_model, check_values_fit_model, detect_data_shape
from ..distillation import (
    DistillationArguments,
)
from ..errors import STSUserError, run_cli
from ..metrics import compute_metrics
from ..model_card_data import local_source, record_datasets
from ..precision import bf16_is_faster
from ..registry import IN_BATCH_LOSSES, RANKING_LOSSES
from ..trainer import STSTrainer
from ..training_args import STSTrainingArguments
from .arguments import DataArguments, ModelArguments, check_arguments, check_best_metric, parse_args
from .output_dir import (
    CompletedCheckpoints,
    check_checkpoint_fits,
    check_output_dir,
    clear_output_dir,
    incomplete_outputs_removed,
    optimizer_settings,
    output_dir_locked,
)
from .teachers import check_teachers, teacher_data, with_teacher_indexes

logger = logging.getLogger(__name__)


def select(dataset: datasets.Dataset, max_samples: int | None) -> datasets.Dataset:
    return dataset.select(range(min(max_samples, len(dataset)))) if max_samples is not None else dataset


def write_predictions(path: str, dataset: datasets.Dataset, predictions) -> None:
    """Test pairs with gold and predicted scores, both on the original range."""
    with file_written_whole(path, newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["index", "sentence1", "sentence2", "score", "prediction"])
        for index, (row, prediction) in enumerate(zip(dataset, predictions)):
            writer.writerow([index, row["sentence1"], row["sentence2"], row["score"], f"{prediction:.6f}"])


def sentences_of(dataset: datasets.Dataset) -> list[str]:
    """Every sentence of a split, whatever its shape (pairs, triplets, ...): the values of its text columns."""
    text = [
        name
        for name, feature in dataset.features.items()
        if getattr(feature, "dtype", None) in ("string", "large_string")
    ]
    return [sentence for name in text for sentence in dataset[name]]


def load_data(
    data_args: DataArguments, training_args: STSTrainingArguments, with_held_out: bool = False
) -> tuple[datasets.DatasetDict, dict[str, str], list[str]]:
    """The splits the run needs, cut to the `max_*_samples`, where each came from, and `with_held_out`, the sentences
    of the dev and test splits (all of them, also where the run does not evaluate or predict), which distillation
    keeps out of the silver pairs."""
    files = {"train": data_args.train_file, "validation": data_args.validation_file, "test": data_args.test_file}
    needed = {"train": training_args.do_train, "validation": training_args.do_eval, "test": training_args.do_predict}
    # one read (a Hub dataset loaded once): the splits the run uses, checked; for distillation the other dev and test
    # splits too, for their sentences only, their scores unchecked (GLUE's STS-B test scores are -1, for one)
    read = {split for split, wanted in needed.items() if wanted}
    unread = {"validation", "test"} - read if with_held_out else set()
    if data_args.dataset_name is None and any(files.values()):  # files only: those given, not the default dataset
        unread = {split for split in unread if files[split]}
    # the default dataset unless a split the run uses has a file (not a dev/test file read for its sentences only)
    default = None if any(files[split] for split in read) else DEFAULT_DATASET
    loaded = load_sts_dataset(
        dataset_name=default if data_args.dataset_name is None else data_args.dataset_name,  # "" is refused
        data_files=files,
        dataset_config_name=data_args.dataset_config_name,
        column_mapping={
            data_args.sentence1_column: "sentence1",
            data_args.sentence2_column: "sentence2",
            data_args.score_column: "score",
        },
        score_range=data_args.score_range,
        # the test split is scored pairs only where the run predicts on it (a Hub dataset of triplets has test triplets)
        data_shapes={"train": data_args.data_shape, "test": "scored_pairs" if training_args.do_predict else None},
        splits=read | unread,
        sentences_only=unread,
    )
    raw = datasets.DatasetDict({split: data for split, data in loaded.items() if split in read})
    if training_args.do_eval and "validation" not in raw:
        if training_args.requested_do_eval:
            raise STSUserError(f"--do_eval needs a validation split; found splits {list(raw)}")
        if training_args.do_train:
            logger.warning("No validation split: training without evaluation or best-checkpoint selection")
        training_args.disable_evaluation()
        needed["validation"] = False
    for split, wanted in needed.items():
        if wanted and split not in raw:
            flag = "--do_predict" if split == "test" else f"--do_{split}"
            raise STSUserError(f"{flag} needs a {split} split; found splits {list(raw)}")
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_predict_samples,
    }
    splits = datasets.DatasetDict({split: select(raw[split], limits[split]) for split in raw if needed[split]})
    held_out = [sentence for split in ("validation", "test") if with_held_out and split in loaded
                for sentence in sentences_of(loaded[split])]  # fmt: skip
    return splits, {split: files[split] or data_args.dataset_name or DEFAULT_DATASET for split in splits}, held_out


def build_model(model_args: ModelArguments, data_args: DataArguments, raw: datasets.DatasetDict):
    """A new model around the encoder, or the saved STS model, with the options given."""
    # labels 0..N-1 make N classes of a new softmax classifier; a saved one keeps its own, which `check_data` checks
    # the labels against (without labels, it refuses the data for the loss)
    softmax_labels = (
        model_args.loss == "softmax"
        and "train" in raw
        and "label" in raw["train"].column_names
        and getattr(saved_config_or_none(model_args.model_name_or_path), "loss", None) != "softmax"
    )
    return load_model(
        model_args.arch,
        model_args.model_name_or_path,
        **model_args.config_options(),
        num_labels=max(raw["train"]["label"]) + 1 if softmax_labels else None,
        score_min=data_args.score_min,
        score_max=data_args.score_max,
    )


def check_untrained_head(model, model_name_or_path: str, training_args: STSTrainingArguments) -> None:
    """Without --do_train, a model built on a plain encoder scores as it is built: refuse one with parameters that no
    pretrained weight sets (a regression head, cross-attention), which would score at random. (A model built on an
    encoder has no `name_or_path`; a saved one loaded has its folder's.)"""
    if training_args.do_train or model.name_or_path:
        return
    # the loss's own parameters (softmax's classifier) train alongside and never score
    scoring = (name.split(".")[0] for name, _ in model.named_parameters() if not name.startswith("encoder."))
    new = sorted(set(scoring) - {"loss_fct"})
    if new:
        raise STSUserError(
            f"{model_name_or_path} is a plain encoder and the run does not train: the {model.config.arch} model's new "
            f"{', '.join(new)} would score at random; pass --do_train, or for a zero-shot score --arch siamese with "
            "its cosine head, which has nothing to learn"
        )


def in_batch_loss_learns_nothing(train: datasets.Dataset, shape: str, loss: str, batch_size: int) -> str | None:
    """Why a siamese in-batch loss (`IN_BATCH_LOSSES`) would train at loss 0 on `train`, or None."""
    if len(train) < 2:
        return f"the train split has {len(train)} example(s)"
    if batch_size < 2:
        return f"--per_device_train_batch_size {batch_size}"
    if shape == "scored_pairs" and loss in RANKING_LOSSES and len(set(train["score"])) == 1:
        return f"every train pair is scored {train['score'][0]:g}"
    if shape == "labelled_pairs" and loss == "online_contrastive" and len(set(train["label"])) == 1:
        return f"every train pair is labelled {train['label'][0]}"
    return None


def check_data(model, raw: datasets.DatasetDict, training_args: STSTrainingArguments) -> bool:
    """Refuse data the model cannot learn from, before training; True when dev holds scored pairs
    (Pearson/Spearman), False when it holds another shape (dev loss picks the best checkpoint)."""
    training_args.check_columns_kept(model.encodes_pairs_jointly)
    if "train" in raw:
        shape = check_data_fits_model(raw["train"], model, "train")
        loss = getattr(model.config, "loss", "mse")
        if model.config.arch == "siamese" and loss in IN_BATCH_LOSSES and training_args.do_train:
            reason = in_batch_loss_learns_nothing(raw["train"], shape, loss, training_args.per_device_train_batch_size)
            if reason:
                raise STSUserError(
                    f"--loss {loss} learns from the examples of a batch against each other, and {reason}: it "
                    "would train at loss 0 and learn nothing"
                )
        labelled = "label" in raw["train"].column_names
        if loss == "softmax" and training_args.do_train and labelled and len(set(raw["train"]["label"])) < 2:
            raise STSUserError(
                f"--loss softmax learns to tell classes apart, and every train pair is labelled "
                f"{raw['train']['label'][0]}: it would train at loss 0 and learn nothing"
            )
    for split, flag in (("validation", "--do_eval"), ("test", "--do_predict")):
        if split in raw and detect_data_shape(raw[split].column_names, split) == "scored_pairs":
            scores = raw[split]["score"]
            if len(scores) < 2 or len(set(scores)) == 1:
                raise STSUserError(
                    f"{flag}: the {split} split has {len(scores)} scored pair(s)"
                    + (f", all scored {scores[0]:g}" if len(scores) > 1 else "")
                    + ": Pearson and Spearman need at least 2 pairs with different gold scores"
                )
    if "validation" not in raw or detect_data_shape(raw["validation"].column_names, "validation") == "scored_pairs":
        return True
    check_data_fits_model(raw["validation"], model, "validation")
    training_args.select_best_by_loss(labelled="label" in raw["validation"].column_names)
    return False


def build_trainer(
    model,
    training_args: STSTrainingArguments,
    tokenized: dict[str, datasets.Dataset],
    evaluates_pairs: bool = True,
    distillation: dict | None = None,
    teacher_embeddings: torch.Tensor | None = None,
    teacher_similarity_weight: float = 0.0,
) -> STSTrainer:
    """The `Trainer` (`STSTrainer`: the stock one, writing this package's model card and training at the per-group
    learning rates) over the tokenized splits, with the pair collator and, when dev holds scored pairs, Pearson/Spearman
    (benchmarks/speed.py times this same setup). `distillation`: what `add_silver_pairs` returned, whose
    `gold_pairs` and `silver_pairs_per_epoch` choose the silver pairs of each epoch; `teacher_embeddings` and
    `teacher_similarity_weight`: in-batch similarity distillation (`STSTrainer`)."""
    distillation = distillation or {}
    try:
        return STSTrainer(
            gold_rows=distillation.get("gold_pairs"),
            silver_pairs_per_epoch=distillation.get("silver_pairs_per_epoch", 0),
            teacher_embeddings=teacher_embeddings,
            teacher_similarity_weight=teacher_similarity_weight,
            model=model,
            args=training_args,
            train_dataset=tokenized.get("train"),
            eval_dataset=tokenized.get("validation"),
            data_collator=DataCollatorForSentencePairs.for_tokenizer(model.tokenizer),
            processing_class=model.tokenizer,
            compute_metrics=compute_metrics if evaluates_pairs else None,
        )
    except RuntimeError as error:
        raise report_to_error(error, training_args) from None


def report_to_error(error: RuntimeError, training_args: STSTrainingArguments) -> Exception:
    """A --report_to integration that is not installed ("... requires X to be installed") as one line naming the
    flag; any other error as it is."""
    if "to be installed" not in str(error):
        return error
    extra = " (pip install 'sts-models[tensorboard]')" if "tensorboard" in training_args.report_to else ""
    message = str(error).splitlines()[0]
    return STSUserError(f"--report_to {' '.join(training_args.report_to)}: {message}{extra}")


def check_report_to(training_args: STSTrainingArguments) -> None:
    """Refuse a --report_to integration that is not installed before the teachers label (the Trainer, built after
    them, finds it out only when it makes the integration's callback). The callbacks of integrations transformers
    lists as installed are made once, by the Trainer (a wandb run, a TensorBoard writer); any other is made here, to
    fail before it does anything (or for one the list leaves out: flyte, azure_ml beside mlflow)."""
    callbacks = get_reporting_integration_callbacks(training_args.report_to)
    available = get_available_reporting_integrations()
    for callback in (made for name, made in zip(training_args.report_to, callbacks) if name not in available):
        try:
            callback()
        except RuntimeError as error:
            raise report_to_error(error, training_args) from None


def check_finite_weights(trainer) -> None:
    """Refuse to save, evaluate and card a model whose training diverged (NaN or infinite weights: it would score
    every pair NaN, and the Trainer's logged loss leaves the NaN steps out). The weights each process holds: under
    DeepSpeed, which skips the steps that overflow and partitions the weights under ZeRO-3, this sees no NaN."""
    parameters = trainer.model.named_parameters()
    bad = next((name for name, parameter in parameters if not torch.isfinite(parameter).all()), None)
    if bad is not None:
        raise STSUserError(
            f"training diverged: {bad} is not finite after step {trainer.state.global_step}, so the model is not "
            f"saved, and the checkpoints saved on the way may hold NaN weights too (lower --learning_rate, now "
            f"{trainer.args.learning_rate:g})"
        )


def main(argv: list[str]) -> None:
    model_args, data_args, training_args, distillation_args = parse_args(argv)
    check_arguments(data_args, training_args)
    # one run at a time writes into an output folder: a second is refused in one line naming the first
    try:
        with output_dir_locked(training_args.output_dir, enabled=training_args.process_index == 0):
            run(model_args, data_args, training_args, distillation_args)
    finally:
        # a process group left to interpreter exit can abort it ("terminate called without an active exception",
        # SIGABRT from gloo's threads) after a run that went through. The run's Trainer and DDP model outlive `run`
        # in reference cycles: collect them (and the gloo work and tensors they hold) while the group and the
        # interpreter are whole, then destroy the group
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gc.collect()
            torch.distributed.destroy_process_group()


def run(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: STSTrainingArguments,
    distillation_args: DistillationArguments,
) -> None:
    """Everything `main` does once the arguments are checked and the output folder is this run's."""
    teachers = distillation_args.teacher_name_or_path
    checkpoint, stale_outputs = check_output_dir(training_args, model_args.model_name_or_path, teachers)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    # huggingface_hub prints through its own handler and would also reach the root one: each line twice
    huggingface_hub.logging.disable_propagation()
    log_level = training_args.get_process_log_level()
    # the commands, distillation, data: what they say at INFO shown on the first process unless --log_level says
    # otherwise (as run_glue shows its own), quiet on the other ranks
    shown = logging.INFO if training_args.log_level == "passive" and training_args.should_log else log_level
    logging.getLogger("sts_models").setLevel(shown)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info(f"Training/evaluation parameters {training_args}")
    set_seed(training_args.seed)

    data_args.take_score_range_of(model_args.model_name_or_path)
    raw, sources, held_out = load_data(data_args, training_args, with_held_out=bool(teachers))
    check_teachers(raw, data_args, training_args, distillation_args)
    model = build_model(model_args, data_args, raw)
    check_untrained_head(model, model_args.model_name_or_path, training_args)
    check_values_fit_model(raw, model)
    logger.info(
        f"Model: {type(model).__name__} on {model.config.encoder.model_type}, {model.num_parameters():,} parameters"
    )
    # every check before the teachers label (minutes, for a large teacher)
    if checkpoint is not None:
        check_checkpoint_fits(checkpoint, model, optimizer_settings(training_args))
    evaluates_pairs = check_data(model, raw, training_args)
    if training_args.deepspeed_plugin is not None:
        scalars = [name for name, parameter in model.named_parameters() if parameter.dim() == 0]
        if scalars:
            raise STSUserError(
                f"--deepspeed cannot train the 0-dimensional parameters {', '.join(scalars)} (DeepSpeed broadcasts "
                "parameters as bytes): pass --cosine_skip false, or train without --deepspeed"
            )
    check_best_metric(training_args, evaluates_pairs)
    if teachers and training_args.do_train:
        check_report_to(training_args)
    if training_args.do_train and training_args.bf16_by_measurement:
        batch_size = training_args.per_device_train_batch_size
        device = training_args.device
        training_args.set_bf16(bf16_is_faster(model, raw["train"], batch_size, training_args.seed, device))
    teacher_embeddings, teacher_rows, distillation = teacher_data(
        model, raw, data_args, training_args, distillation_args, held_out
    )
    entries = [
        {
            "split": split,
            "source": local_source(sources[split]),  # a local file or folder as an absolute path
            # the gold pairs of a distilled run (its silver pairs: the card's distillation)
            "size": distillation["gold_pairs"] if split == "train" and "gold_pairs" in distillation else len(data),
            "shape": detect_data_shape(data.column_names, split),
            # a configuration of a Hub dataset (`--dataset_config_name`), not of a data file
            "config": data_args.dataset_config_name if sources[split] == data_args.dataset_name else None,
        }
        for split, data in raw.items()
    ]
    record_datasets(model.model_card_data, entries, trained=training_args.do_train)
    with training_args.main_process_first(desc="tokenization"):
        # the length-grouped (or rebalancing) sampler reads each training example's tokens from a column
        grouped = training_args.samples_by_length
        tokenized = {
            split: tokenize_dataset(
                data,
                model,
                desc=f"Tokenizing {split}",
                length_column=training_args.length_column_name if grouped and split == "train" else None,
            )
            for split, data in raw.items()
        }
    if teacher_embeddings is not None:
        tokenized["train"] = with_teacher_indexes(tokenized["train"], raw["train"], teacher_rows)

    # before the earlier run's outputs go: building the Trainer creates the Hub repo of --push_to_hub, which fails
    # when the Hub cannot be reached
    trainer = build_trainer(
        model,
        training_args,
        tokenized,
        evaluates_pairs,
        distillation,
        teacher_embeddings,
        distillation_args.teacher_similarity_weight,
    )
    completed = CompletedCheckpoints(optimizer_settings(training_args))
    trainer.add_callback(completed)
    with training_args.main_process_first(desc="clearing the output folder", local=False):
        if training_args.process_index == 0:
            clear_output_dir(training_args.output_dir, stale_outputs, say_kept=checkpoint is None)
    if checkpoint is not None:
        logger.info(f"Resuming training from {checkpoint}")

    with incomplete_outputs_removed(training_args.output_dir, completed, training_args.process_index == 0):
        if training_args.do_train:
            train_result = trainer.train(resume_from_checkpoint=checkpoint)
            check_finite_weights(trainer)
            trainer.save_model()
            metrics = {**train_result.metrics, "train_samples": len(tokenized["train"]), **distillation}
            trainer.log_metrics("train", metrics)
            trainer.save_metrics("train", metrics)
            trainer.save_state()

        if training_args.do_eval:
            metrics = {**trainer.evaluate(), "eval_samples": len(tokenized["validation"])}
            trainer.log_metrics("eval", metrics)
            trainer.save_metrics("eval", metrics)

        if training_args.do_predict:
            # the test split is scored pairs whatever the dev data: its correlations even where dev has no scores
            trainer.compute_metrics, trainer.label_names = compute_metrics, ["labels"]
            output = trainer.predict(tokenized["test"], metric_key_prefix="test")
            metrics = {**output.metrics, "test_samples": len(tokenized["test"])}
            trainer.log_metrics("test", metrics)
            trainer.save_metrics("test", metrics)
            if trainer.is_world_process_zero():
                logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
                path = os.path.join(training_args.output_dir, "predict_results.tsv")
                write_predictions(path, raw["test"], model.config.from_unit_range(logits.reshape(-1)))
                logger.info(f"Predictions written to {path}")

        if training_args.push_to_hub:
            trainer.push_to_hub()  # weights, results and the model card, now with the final evaluation's metrics
        elif training_args.do_train:
            trainer.create_model_card()  # again, now with the final evaluation's metrics
    if trainer.is_world_process_zero():
        written = ["all_results.json"] + (["the model"] if training_args.do_train else [])
        logger.info(f"Done: {' and '.join(written)} in {os.path.abspath(training_args.output_dir)}")


PROG = "run_sts.py"


def cli(argv: list[str], prog: str = PROG) -> int:
    """`main`, with bad input and errors of the file system (no space left, no permission, ...) reported as one
    line on stderr and exit status 1 instead of a traceback (argparse's own errors exit with status 2)."""
    return run_cli(prog, main, argv)
