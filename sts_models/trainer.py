"""`STSTrainer`: the stock `Trainer`, writing and pushing this package's model card instead of its generic one, and
evaluating in input order."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import datasets
import torch
from transformers import Trainer
from transformers.trainer_pt_utils import find_batch_size
from transformers.trainer_utils import HubStrategy, has_length

from .artifacts import staged_into, write_json
from .data_collator import TEACHER_INDEX_FIELDS
from .errors import hub_push_errors
from .hub import stale_weight_files
from .losses import similarity_distillation_loss
from .model_card import ModelCardCallback, naming_repo
from .model_card_data import CARD_DATA_NAME
from .optimization import optimizer_cls_and_kwargs
from .sampling import SilverPerEpochSampler, check_train_sampling_strategy
from .training_args import STSTrainingArguments

logger = logging.getLogger(__name__)


def check_class_labels(model, dataset) -> None:
    """Refuse, once and on the host, class labels of `dataset` (a `datasets.Dataset`, tokenized) that `model`'s loss
    has no class for (`losses.SoftmaxLoss.check_labels`): the loss checks each batch only on the CPU."""
    check = getattr(getattr(model, "loss_fct", None), "check_labels", None)
    if check is None or not isinstance(dataset, datasets.Dataset):  # a stream is read once, by the Trainer
        return
    column = next((name for name in ("labels", "label") if name in dataset.column_names), None)  # as the collator
    if column is None:
        return
    labels = dataset.with_format("torch", columns=[column])[:][column]
    if isinstance(labels, torch.Tensor) and not labels.is_floating_point():  # scores get the pair loss instead
        check(labels)


class _DeletingStaleWeights:
    """The Trainer's `HfApi`, whose upload of a folder to the repo's root deletes, in the same commit, the repo's
    weight files that the folder does not replace (`hub.stale_weight_files`), as `model.push_to_hub` does."""

    def __init__(self, api):
        self._api = api

    def __getattr__(self, name):
        return getattr(self._api, name)

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        if kwargs.get("path_in_repo") is None and kwargs.get("delete_patterns") is None:
            try:
                stale = stale_weight_files(
                    self._api, repo_id, str(folder_path), kwargs.get("revision"), kwargs.get("token")
                )
            except Exception as error:  # noqa: BLE001 - the upload says what is wrong with the Hub, in the background
                logger.warning(f"Could not list {repo_id}'s files to delete stale weights in this push: {error}")
                stale = []
            kwargs["delete_patterns"] = stale or None
        return self._api.upload_folder(repo_id=repo_id, folder_path=folder_path, **kwargs)


@contextmanager
def uploads_deleting_stale_weights() -> Iterator[None]:
    """The Trainer's pushes upload `output_dir` with no way to delete what the repo holds (`Trainer.push_to_hub`
    has no hook): within this block its `hf_api()` deletes stale weight files in the upload's commit."""
    import transformers.trainer

    real = transformers.trainer.hf_api
    transformers.trainer.hf_api = lambda: _DeletingStaleWeights(real())
    try:
        yield
    finally:
        transformers.trainer.hf_api = real


class STSTrainer(Trainer):
    """`transformers.Trainer` for the STS models: keeps the model's card data current (`ModelCardCallback`), writes
    the model's own card (`sts_models.model_card`) where the Trainer would write its generic one, so that
    `save_model`/`push_to_hub` with `push_to_hub=True` upload this card, and reports a Hub push that fails
    (offline, no connection, refused token) as one `HubPushError` naming the repo. It evaluates and predicts in input
    order also with `train_sampling_strategy="group_by_length"`, which only groups the training batches.

    What it writes into `output_dir` is written whole: the final model through a staging folder (`staged_into`), the
    results and state JSON files through a temporary sibling each, as valid JSON (a NaN metric is written as null).

    `gold_rows` and `silver_pairs_per_epoch` (a distilled run's training data: gold pairs, then silver pairs): each
    epoch reads every gold pair and a different `silver_pairs_per_epoch` of the silver ones
    (`SilverPerEpochSampler`).

    `teacher_embeddings` (rows of L2-normalized teacher embeddings) and `teacher_similarity_weight`: a siamese model
    also learns, with that weight, to rank the pairs that any two sentences of a training batch make as the teachers'
    embeddings rank them (`losses.similarity_distillation_loss`); the training data's `TEACHER_INDEX_FIELDS` give each
    sentence's row. With the model's `gather_across_devices`, the pairs are those of the global batch.

    With `STSTrainingArguments` whose `head_learning_rate` or `layerwise_lr_decay` are set, it trains each parameter
    group at its own rate (`optimization.optimizer_cls_and_kwargs`), unless given `optimizers` or
    `optimizer_cls_and_kwargs` of its own.

    Each dataset it reads is checked once on the host for class labels its model's loss has no class for
    (`check_class_labels`), in place of a check of every batch, which on an accelerator would wait for the device."""

    def __init__(
        self,
        *args,
        gold_rows: int | None = None,
        silver_pairs_per_epoch: int = 0,
        teacher_embeddings: torch.Tensor | None = None,
        teacher_similarity_weight: float = 0.0,
        **kwargs,
    ):
        names = ("model", "args")  # the Trainer's first two parameters, which may come by position
        model, training_args = (kwargs.get(name, args[i] if len(args) > i else None) for i, name in enumerate(names))
        chosen = kwargs.get("optimizer_cls_and_kwargs") is not None or any(kwargs.get("optimizers", (None, None)))
        # our parameter groups (head learning rate, layer-wise decay), made for each optimizer the Trainer creates:
        # also for a model from `model_init` (hyperparameter search), which exists only once training starts
        self.parameter_groups = isinstance(training_args, STSTrainingArguments) and not chosen
        if self.parameter_groups and model is not None:  # (now: bad settings refused before anything runs)
            kwargs["optimizer_cls_and_kwargs"] = optimizer_cls_and_kwargs(model, training_args)
        super().__init__(*args, **kwargs)
        self.own_groups = kwargs.get("optimizer_cls_and_kwargs")  # ours, made again for each optimizer
        self.gold_rows = gold_rows
        self.silver_pairs_per_epoch = silver_pairs_per_epoch
        self.teacher_embeddings = teacher_embeddings
        self.teacher_similarity_weight = teacher_similarity_weight
        self.add_callback(ModelCardCallback(self))

    def _get_train_sampler(self, train_dataset=None) -> torch.utils.data.Sampler | None:
        train_dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.silver_pairs_per_epoch or train_dataset is None or self.gold_rows is None:
            return super()._get_train_sampler(train_dataset)
        check_train_sampling_strategy(self.args.train_sampling_strategy)
        column = self.args.length_column_name
        grouped = self.args.train_sampling_strategy == "group_by_length" and column in train_dataset.column_names
        return SilverPerEpochSampler(
            len(train_dataset),
            self.gold_rows,
            self.silver_pairs_per_epoch,
            seed=self.args.sampling_seed,
            lengths=train_dataset[column] if grouped else None,
            batch_size=self.args.train_batch_size * self.args.gradient_accumulation_steps,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        indexes = [inputs.pop(key) for key in TEACHER_INDEX_FIELDS if key in inputs]
        if not indexes or self.teacher_embeddings is None or not self.teacher_similarity_weight or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = {**inputs, "output_embeddings": True}
        loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        if self.teacher_embeddings.device != loss.device:  # once: then each step indexes on the device
            self.teacher_embeddings = self.teacher_embeddings.to(loss.device)
        student = torch.cat([outputs.embeddings_1, outputs.embeddings_2])
        # with `gather_across_devices`, the sentences of every process's slice: the pairs of the global batch
        rows = torch.cat(indexes).to(loss.device)
        student, rows = self.accelerator.unwrap_model(model).gather_for_loss(student, rows)
        teacher = self.teacher_embeddings[rows]
        loss = loss + self.teacher_similarity_weight * similarity_distillation_loss(student, teacher)
        return (loss, outputs) if return_outputs else loss

    @property
    def hub_repo_name(self) -> str:
        """The Hub repo the Trainer pushes to: its id once created, else the name the Trainer creates it under."""
        if self.hub_model_id is not None:
            return self.hub_model_id
        given = self.args.hub_model_id  # (the Trainer takes "" as the id, not as unset)
        return given if given is not None else Path(self.args.output_dir).absolute().name

    def num_examples(self, dataloader) -> int:
        # the stock count is the dataset's length, which overstates an epoch of `SilverPerEpochSampler` (and with it
        # train_samples_per_second)
        batch_sampler = getattr(dataloader, "batch_sampler", None)
        sampler = getattr(batch_sampler, "sampler", None) or getattr(
            getattr(batch_sampler, "batch_sampler", None), "sampler", None
        )
        if isinstance(sampler, SilverPerEpochSampler):
            return len(sampler)
        return super().num_examples(dataloader)

    def create_optimizer(self, model=None):
        # (not where the user set `optimizer_cls_and_kwargs` on the trainer since: theirs is kept)
        ours = self.optimizer_cls_and_kwargs is None or self.optimizer_cls_and_kwargs is self.own_groups
        if self.parameter_groups and self.optimizer is None and ours:
            self.optimizer_cls_and_kwargs = self.own_groups = optimizer_cls_and_kwargs(
                model if model is not None else self.model, self.args
            )
        return super().create_optimizer(model)

    def _get_dataloader(self, dataset, *args, **kwargs):
        # every dataloader the Trainer builds (train, eval, test): its labels checked once, not at each step
        check_class_labels(self.accelerator.unwrap_model(self.model), dataset)
        if kwargs.get("is_training", args[3] if len(args) > 3 else False) or not self.args.dataloader_drop_last:
            return super()._get_dataloader(dataset, *args, **kwargs)
        # --dataloader_drop_last is for training batches: the stock Trainer drops the last evaluation and
        # prediction batch too, leaving pairs out of the dev and test scores and of predict_results.tsv
        self.args.dataloader_drop_last = False
        try:
            return super()._get_dataloader(dataset, *args, **kwargs)
        finally:
            self.args.dataloader_drop_last = True

    def _get_eval_sampler(self, eval_dataset) -> torch.utils.data.Sampler | None:
        # The stock Trainer groups (and so shuffles) the evaluation batches too under group_by_length, which would
        # write `predict` results in another order than the input's: read evaluation data in order instead.
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return torch.utils.data.SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        rows = self.own_rows(inputs)
        if loss is not None and rows is not None:  # the loss of this process's own examples of the batch only
            own = {key: value[:rows] if isinstance(value, torch.Tensor) and value.dim() else value
                   for key, value in inputs.items()}  # fmt: skip
            loss = super().prediction_step(model, own, True, ignore_keys)[0]
        return loss, logits, labels

    def own_rows(self, inputs: dict) -> int | None:
        """On the last batch of a multi-process evaluation whose examples the global batch does not divide: how many
        rows of this process's batch are examples of its own, the others being the copies of the first examples that
        accelerate fills the batch up with (at least 1, so that every process runs the same forward passes, as
        ZeRO-3 needs). None elsewhere.

        The stock `evaluation_loop` repeats each process's batch loss once a row and keeps, as `gather_for_metrics`
        does for the predictions, the gathered rows up to the dataset's end: each process's loss then counts as
        many times as it has examples of its own, but as a mean over the whole batch it would count the copies too,
        and `eval_loss` would differ from one process's."""
        state = self.accelerator.gradient_state
        if self.accelerator.num_processes == 1 or not state.end_of_dataloader or state.remainder <= 0:
            return None
        batch = find_batch_size(inputs)
        return min(max(state.remainder - self.accelerator.process_index * batch, 1), batch)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save or os.path.realpath(output_dir) != os.path.realpath(self.args.output_dir):
            return super()._save(output_dir, state_dict)  # checkpoints: complete once trainer_state.json is there
        os.makedirs(output_dir, exist_ok=True)
        with staged_into(output_dir) as stage:
            super()._save(stage, state_dict)

    def save_metrics(self, split: str, metrics: dict, combined: bool = True) -> None:
        if not self.is_world_process_zero():
            return
        write_json(os.path.join(self.args.output_dir, f"{split}_results.json"), metrics)
        if combined:
            path = os.path.join(self.args.output_dir, "all_results.json")
            earlier = json.loads(Path(path).read_text(encoding="utf-8")) if os.path.exists(path) else {}
            write_json(path, {**earlier, **metrics})

    def save_state(self) -> None:
        if self.is_world_process_zero():
            path = os.path.join(self.args.output_dir, "trainer_state.json")
            write_json(path, dataclasses.asdict(self.state), indent=2)

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        with hub_push_errors(self.hub_repo_name):
            super().init_hf_repo(token=token, private=private)

    def push_to_hub(self, *args, **kwargs):
        # the card `create_model_card` writes names the repo: a push that fails writes it again without it
        model = self.accelerator.unwrap_model(self.model)
        with naming_repo(model, None, folder=self.args.output_dir), hub_push_errors(self.hub_repo_name):
            with uploads_deleting_stale_weights():
                return super().push_to_hub(*args, **kwargs)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """The Trainer pushes a checkpoint's weights and config only: its model code (which the config's `auto_map`
        names, for `trust_remote_code=True`) and this package's card go along, so the repo loads at every push."""
        if self.is_world_process_zero() and self.args.hub_strategy != HubStrategy.END:
            for name in os.listdir(checkpoint_folder):
                if name.endswith(".py") or name in ("README.md", CARD_DATA_NAME):
                    shutil.copy(os.path.join(checkpoint_folder, name), os.path.join(self.args.output_dir, name))
        with uploads_deleting_stale_weights():
            super()._push_from_checkpoint(checkpoint_folder)

    def create_model_card(
        self,
        language: str | list[str] | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        **kwargs,
    ) -> None:
        """Write the model's card to `output_dir` (`README.md`). `language`, `license`, `tags`, `model_name` and
        `finetuned_from` (the base model) go on the card; the Trainer's other card arguments (`tasks`,
        `dataset`, ...) are ignored: the card lists the data that `run_sts.py` recorded."""
        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        data = model.model_card_data
        data.language = language or data.language
        data.license = license or data.license
        data.model_name = model_name or data.model_name
        data.base_model = finetuned_from or data.base_model
        data.model_id = self.hub_model_id or data.model_id
        data.add_tags(tags)
        model.save_model_card(self.args.output_dir)
