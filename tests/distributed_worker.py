"""One process of the multi-process tests in test_distributed.py (run alone, or by `torch.distributed.run`).

    python tests/distributed_worker.py ENCODER_DIR OUT_DIR                                   # world 1
    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py ENCODER_DIR OUT_DIR

Every process holds its slice of the same 16 STS-B pairs (all 16 in a single process) and writes what
test_distributed.py compares between world sizes, as safetensors files in OUT_DIR:
- `losses-RANK.safetensors`: each in-batch loss over the gathered batch, and the gradient of the
  process's own embeddings (the gradient DDP would apply: summed by the gather, divided by the world);
- `step-CASE.safetensors` (rank 0): the weights after one Trainer step (SGD) of each arch and loss;
- `eval-CASE.safetensors` (rank 0): `STSTrainer.evaluate`'s loss, MSE and Spearman over pairs that the global batch
  does not divide.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from datasets import Dataset  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from transformers import Trainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sts_models import DataCollatorForSentencePairs, compute_metrics, get_model_class  # noqa: E402
from sts_models.data import tokenize_dataset  # noqa: E402
from sts_models.data_collator import TEACHER_INDEX_FIELDS  # noqa: E402
from sts_models.distributed import gather_across_processes, world_size  # noqa: E402
from sts_models.losses import build_loss  # noqa: E402
from sts_models.trainer import STSTrainer  # noqa: E402
from sts_models.training_args import STSTrainingArguments  # noqa: E402
from tests.conftest import read_stsb  # noqa: E402

GLOBAL_BATCH = 16
# in-batch losses: name -> number of sentence columns and the labels they take
GATHERED_LOSSES = {
    "cosent": (2, "scores"),
    "angle": (2, "scores"),
    "multiple_negatives_ranking": (2, None),
    "multiple_negatives_ranking-triplets": (3, None),
    "batch_hard_triplet": (1, "classes"),
    "batch_all_triplet": (1, "classes"),
    "batch_semi_hard_triplet": (1, "classes"),
}
SIMILARITY = "cosent+similarity"  # CoSENT plus --teacher_similarity_weight 1
# one Trainer step: (arch, loss, gather_across_devices)
STEP_CASES = [
    ("bert", "mse", False),
    ("siamese", "cosine_similarity", False),
    ("cross", "mse", False),
    ("bert", "cosent", True),
    ("siamese", "cosent", True),
    ("siamese", "cosent", False),  # without the gather two processes see two batches of 8: not the same step
    ("siamese", "multiple_negatives_ranking", True),
    ("cross", "cosent", True),
    ("siamese", SIMILARITY, True),  # plus the teacher's in-batch similarities (STSTrainer), over the global batch
]

# evaluation, 4 pairs a batch on each process: (arch, pairs). Two processes read 8 pairs a step, and accelerate fills
# the last step up with copies of the first pairs: 10 pairs leave the second process only copies, 15 one.
EVAL_CASES = [("bert", 10), ("bert", 15), ("siamese", 10), ("siamese", 15)]


def step_case_name(arch: str, loss: str, gather: bool) -> str:
    return f"{arch}-{loss}" + ("-gathered" if gather else "")


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def local_slice(length: int) -> slice:
    """This process's share of a global batch of `length` (contiguous, in rank order)."""
    share = length // world_size()
    return slice(rank() * share, (rank() + 1) * share)


def loss_results() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    results = {}
    for name, (columns, labels) in GATHERED_LOSSES.items():
        embeddings = torch.randn(GLOBAL_BATCH, columns, 8, generator=generator)
        label_values = {
            "scores": torch.rand(GLOBAL_BATCH, generator=generator),
            "classes": torch.arange(GLOBAL_BATCH) % 4,
            None: None,
        }[labels]
        mine = embeddings[local_slice(GLOBAL_BATCH)].clone().requires_grad_(True)
        gathered = gather_across_processes(mine)
        gathered_labels = (
            None if label_values is None else gather_across_processes(label_values[local_slice(GLOBAL_BATCH)])
        )
        loss = build_loss(name.split("-")[0], 8, 2)(list(gathered.unbind(1)), gathered_labels, None)
        loss.backward()
        results[f"{name}.loss"] = loss.detach()
        results[f"{name}.grad"] = mine.grad / world_size()
    return results


def without_dropout(model: nn.Module) -> nn.Module:
    """Dropout off everywhere, so that one process and two draw no different masks."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if isinstance(module, nn.MultiheadAttention):
            module.dropout = 0.0
    return model


def step_weights(encoder_dir: str, out_dir: Path, arch: str, loss: str, gather: bool) -> dict[str, torch.Tensor]:
    """The weights after one SGD step of the stock Trainer on the 16 pairs (global batch 16)."""
    torch.manual_seed(0)
    similarity = loss == SIMILARITY
    loss = loss.split("+")[0]
    model = get_model_class(arch).from_encoder(encoder_dir, loss=loss, gather_across_devices=gather)
    model = without_dropout(model)
    pairs = read_stsb("sts-dev.csv", limit=GLOBAL_BATCH)
    if loss == "multiple_negatives_ranking":
        data = {"anchor": [a for a, _, _ in pairs], "positive": [b for _, b, _ in pairs]}
    else:
        data = {"sentence1": [a for a, _, _ in pairs], "sentence2": [b for _, b, _ in pairs]}
        data["score"] = [s for *_, s in pairs]
    args = STSTrainingArguments(
        output_dir=str(out_dir / "trainer"),
        max_steps=1,
        per_device_train_batch_size=GLOBAL_BATCH // world_size(),
        optim="sgd",
        learning_rate=0.1,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        report_to="none",
        disable_tqdm=True,
        seed=0,
    )
    train_dataset = tokenize_dataset(Dataset.from_dict(data), model)
    extra = {}
    if similarity:  # each sentence's row in random teacher embeddings: sentence1 of pair i is row i, sentence2 16 + i
        teacher = torch.randn(2 * GLOBAL_BATCH, 8, generator=torch.Generator().manual_seed(1))
        teacher = teacher / teacher.norm(dim=-1, keepdim=True)
        for field, offset in zip(TEACHER_INDEX_FIELDS, (0, GLOBAL_BATCH)):
            train_dataset = train_dataset.add_column(field, [offset + i for i in range(GLOBAL_BATCH)])
        extra = {"teacher_embeddings": teacher, "teacher_similarity_weight": 1.0}
    trainer = (STSTrainer if similarity else Trainer)(
        model=model,
        args=args,
        train_dataset=train_dataset,
        data_collator=DataCollatorForSentencePairs.for_tokenizer(model.tokenizer),
        **extra,
    )
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    trainer.train()
    after = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    moved = torch.tensor([not torch.equal(before[name], after[name]) for name in after])
    return {**after, "__moved__": moved}


def eval_metrics(encoder_dir: str, out_dir: Path, arch: str, pairs: int) -> dict[str, torch.Tensor]:
    """`STSTrainer.evaluate` of an untrained model (MSE loss) on the first `pairs` STS-B dev pairs."""
    torch.manual_seed(0)
    model = get_model_class(arch).from_encoder(encoder_dir)
    rows = read_stsb("sts-dev.csv", limit=pairs)
    data = {"sentence1": [a for a, _, _ in rows], "sentence2": [b for _, b, _ in rows], "score": [s for *_, s in rows]}
    args = STSTrainingArguments(
        output_dir=str(out_dir / "trainer"),
        per_device_eval_batch_size=4,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = STSTrainer(
        model=model,
        args=args,
        eval_dataset=tokenize_dataset(Dataset.from_dict(data), model),
        data_collator=DataCollatorForSentencePairs.for_tokenizer(model.tokenizer),
        compute_metrics=compute_metrics,
    )
    metrics = trainer.evaluate()
    return {name: torch.tensor(metrics[f"eval_{name}"], dtype=torch.float64) for name in ("loss", "mse", "spearman")}


def main(encoder_dir: str, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if "WORLD_SIZE" in os.environ and not dist.is_initialized():
        dist.init_process_group("gloo")
    save_file(loss_results(), str(out / f"losses-{rank()}.safetensors"))
    for case in STEP_CASES:
        weights = step_weights(encoder_dir, out, *case)
        if rank() == 0:
            save_file(
                {k: v.contiguous() for k, v in weights.items()}, str(out / f"step-{step_case_name(*case)}.safetensors")
            )
    for arch, pairs in EVAL_CASES:
        metrics = eval_metrics(encoder_dir, out, arch, pairs)
        if rank() == 0:
            save_file(metrics, str(out / f"eval-{arch}-{pairs}.safetensors"))
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:3])
