"""Batching of tokenized sentence pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

TOKEN_FIELDS = ("input_ids", "attention_mask", "token_type_ids")
# one joint sequence (""), its reversed order ("_swapped"), or one sequence per input column ("_1", ...)
SEQUENCE_SUFFIXES = ("", "_swapped", "_1", "_2", "_3")
# each sentence's row in the teachers' embeddings (`--teacher_similarity_weight`), read by `STSTrainer.compute_loss`
TEACHER_INDEX_FIELDS = ("teacher_index_1", "teacher_index_2")


def sequence_lengths(features: dict[str, list]) -> list[int]:
    """The tokens of each example of tokenized `features`, over all its sequences (every `input_ids*` field):
    what it costs in a batch. Length-sorted prediction and length-grouped training both order by it."""
    keys = [key for key in features if key.startswith("input_ids")]
    return [sum(len(features[key][i]) for key in keys) for i in range(len(features[keys[0]]))] if keys else []


@dataclass
class DataCollatorForSentencePairs:
    """Pad each side of a pair batch to that side's own longest sequence.

    Works for features tokenized jointly (`input_ids`, ..., and `input_ids_swapped`, ... for the pair in
    reverse order) or per sentence (`input_ids_1`, `input_ids_2`, `input_ids_3`, ...). `labels` (or `label`) become a long tensor when they are all
    integers (classes), else a float tensor (scores). `TEACHER_INDEX_FIELDS` become long tensors. Other keys are
    dropped.
    """

    pad_token_id: int = 0

    @classmethod
    def for_tokenizer(cls, tokenizer) -> DataCollatorForSentencePairs:
        """The collator for `tokenizer`'s inputs: its pad token, or 0 where it has none."""
        return cls(pad_token_id=tokenizer.pad_token_id or 0)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        first = features[0]
        for suffix in SEQUENCE_SUFFIXES:
            if f"input_ids{suffix}" not in first:
                continue
            length = max(len(f[f"input_ids{suffix}"]) for f in features)
            for field in TOKEN_FIELDS:
                key = f"{field}{suffix}"
                if key not in first:
                    continue
                pad_value = self.pad_token_id if field == "input_ids" else 0
                batch[key] = torch.tensor(
                    [list(f[key]) + [pad_value] * (length - len(f[key])) for f in features], dtype=torch.long
                )
        label_key = "labels" if "labels" in first else "label" if "label" in first else None
        if label_key is not None:
            labels = [f[label_key] for f in features]
            # integer labels are classes (labelled pairs or sentences); anything else is a score
            is_class = all(isinstance(label, int) and not isinstance(label, bool) for label in labels)
            batch["labels"] = torch.tensor(labels, dtype=torch.long if is_class else torch.float)
        for key in TEACHER_INDEX_FIELDS:
            if key in first:
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
        return batch
