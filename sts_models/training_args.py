"""`TrainingArguments` whose defaults pick the best checkpoint on dev Spearman."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments


@dataclass
class STSTrainingArguments(TrainingArguments):
    """`transformers.TrainingArguments`, evaluating and saving every epoch and reloading the checkpoint
    with the best dev Spearman at the end (standard protocol: select on dev, report test)."""

    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: 'no', 'steps' or 'epoch'."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save: 'no', 'steps', 'epoch' or 'best'."})
    load_best_model_at_end: bool = field(
        default=True, metadata={"help": "Reload the checkpoint with the best `metric_for_best_model` after training."}
    )
    metric_for_best_model: str = field(default="spearman", metadata={"help": "Metric that picks the best checkpoint."})
    save_total_limit: int | None = field(
        default=1, metadata={"help": "Checkpoints kept in output_dir (the best one is always kept)."}
    )
