from __future__ import annotations

import torch

from sts_models import DataCollatorForSentencePairs


def test_pads_each_side_to_its_own_batch_maximum():
    features = [
        {
            "input_ids_1": [2, 5, 3],
            "attention_mask_1": [1, 1, 1],
            "input_ids_2": [2, 3],
            "attention_mask_2": [1, 1],
            "labels": 0.5,
        },
        {
            "input_ids_1": [2, 3],
            "attention_mask_1": [1, 1],
            "input_ids_2": [2, 7, 8, 9, 3],
            "attention_mask_2": [1] * 5,
            "labels": 1.0,
        },
    ]
    batch = DataCollatorForSentencePairs(pad_token_id=0)(features)
    assert batch["input_ids_1"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask_1"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["input_ids_2"].shape == (2, 5)
    assert batch["attention_mask_2"].tolist() == [[1, 1, 0, 0, 0], [1] * 5]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [0.5, 1.0]


def test_joint_pairs_keep_token_types_and_use_the_pad_id():
    features = [
        {"input_ids": [2, 5, 3, 6, 3], "attention_mask": [1] * 5, "token_type_ids": [0, 0, 0, 1, 1], "label": 0.2},
        {"input_ids": [2, 3, 6, 3], "attention_mask": [1] * 4, "token_type_ids": [0, 0, 1, 1], "label": 0.4},
    ]
    batch = DataCollatorForSentencePairs(pad_token_id=1)(features)
    assert batch["input_ids"].tolist()[1] == [2, 3, 6, 3, 1]
    assert batch["token_type_ids"].tolist()[1] == [0, 0, 1, 1, 0]
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}


def test_teacher_indexes_pass_through_as_long_tensors():
    features = [
        {"input_ids_1": [2, 3], "attention_mask_1": [1, 1], "input_ids_2": [2, 3], "attention_mask_2": [1, 1],
         "labels": 0.5, "teacher_index_1": 4, "teacher_index_2": 0, "length": 4},
        {"input_ids_1": [2, 3], "attention_mask_1": [1, 1], "input_ids_2": [2, 3], "attention_mask_2": [1, 1],
         "labels": 1.0, "teacher_index_1": 1, "teacher_index_2": 7, "length": 4},
    ]  # fmt: skip
    batch = DataCollatorForSentencePairs()(features)
    assert batch["teacher_index_1"].tolist() == [4, 1] and batch["teacher_index_2"].tolist() == [0, 7]
    assert batch["teacher_index_1"].dtype == torch.long
    assert "length" not in batch


def test_for_tokenizer_pads_with_its_pad_token_or_zero():
    class Tokenizer:
        pad_token_id = 1

    assert DataCollatorForSentencePairs.for_tokenizer(Tokenizer()).pad_token_id == 1
    Tokenizer.pad_token_id = None  # a tokenizer without a pad token
    assert DataCollatorForSentencePairs.for_tokenizer(Tokenizer()).pad_token_id == 0
