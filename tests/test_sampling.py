"""`SilverPerEpochSampler`: every gold row each epoch, a different slice of the silver rows, the same order for the
same seed and epoch."""

from __future__ import annotations

import pytest

from sts_models.sampling import SilverPerEpochSampler


def epoch_indices(sampler: SilverPerEpochSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_each_epoch_reads_every_gold_row_and_the_next_silver_rows():
    sampler = SilverPerEpochSampler(num_rows=30, gold_rows=10, silver_per_epoch=5, seed=3)
    assert len(sampler) == 15
    silver_by_epoch = []
    for epoch in range(4):
        indices = epoch_indices(sampler, epoch)
        assert len(indices) == 15
        assert sorted(i for i in indices if i < 10) == list(range(10))
        silver_by_epoch.append({i for i in indices if i >= 10})
        assert len(silver_by_epoch[-1]) == 5
    # four epochs of 5 pass once through the 20 silver rows, no row twice
    assert set().union(*silver_by_epoch) == set(range(10, 30))
    assert sum(map(len, silver_by_epoch)) == 20


def test_the_order_depends_on_the_seed_and_epoch_only():
    first = SilverPerEpochSampler(num_rows=30, gold_rows=10, silver_per_epoch=5, seed=3)
    again = SilverPerEpochSampler(num_rows=30, gold_rows=10, silver_per_epoch=5, seed=3)
    other = SilverPerEpochSampler(num_rows=30, gold_rows=10, silver_per_epoch=5, seed=4)
    assert epoch_indices(first, 2) == epoch_indices(again, 2)
    assert epoch_indices(first, 2) != epoch_indices(first, 3)
    assert epoch_indices(first, 2) != epoch_indices(other, 2)
    assert epoch_indices(first, 0) != sorted(epoch_indices(first, 0))  # shuffled, gold and silver together


def test_a_second_pass_reshuffles_the_silver_rows_and_more_than_all_is_all():
    sampler = SilverPerEpochSampler(num_rows=14, gold_rows=4, silver_per_epoch=10, seed=0)
    assert {i for i in epoch_indices(sampler, 0) if i >= 4} == set(range(4, 14))
    assert epoch_indices(sampler, 0) != epoch_indices(sampler, 1)
    capped = SilverPerEpochSampler(num_rows=14, gold_rows=4, silver_per_epoch=50)
    assert len(capped) == 14 and sorted(capped) == list(range(14))


def test_lengths_group_the_batches():
    lengths = [1, 9] * 40
    sampler = SilverPerEpochSampler(num_rows=80, gold_rows=40, silver_per_epoch=24, lengths=lengths, batch_size=4)
    indices = epoch_indices(sampler, 0)
    assert len(indices) == 64 and len(set(indices)) == 64
    batches = [indices[i : i + 4] for i in range(0, 64, 4)]
    mixed = sum(len({lengths[i] for i in batch}) > 1 for batch in batches)
    # sorted within 4 mega-batches of 4 batches: at most one mixed batch each, and one more where the longest row
    # was swapped to the front (drawn at random, about 14 of the 16 batches would be mixed)
    assert mixed <= 5


@pytest.mark.parametrize("gold_rows, per_epoch", [(-1, 1), (11, 1), (2, 0)])
def test_bad_arguments_are_refused(gold_rows, per_epoch):
    with pytest.raises(ValueError):
        SilverPerEpochSampler(num_rows=10, gold_rows=gold_rows, silver_per_epoch=per_epoch)


def test_the_trainer_seeds_it_with_data_seed_else_seed(tiny_encoder_dir, tmp_path):
    """As the stock Trainer seeds its samplers: --data_seed where given (then --seed does not change the order),
    else --seed."""
    from datasets import Dataset

    from sts_models import get_model_class
    from sts_models.trainer import STSTrainer
    from sts_models.training_args import STSTrainingArguments

    model = get_model_class("siamese").from_encoder(tiny_encoder_dir)
    data = Dataset.from_dict({"input_ids": [[1, 2]] * 30})

    def order(**seeds) -> list[int]:
        args = STSTrainingArguments(output_dir=str(tmp_path), report_to="none", **seeds)
        args.disable_evaluation()
        trainer = STSTrainer(model=model, args=args, train_dataset=data, gold_rows=10, silver_pairs_per_epoch=5)
        return epoch_indices(trainer._get_train_sampler(), 1)

    assert order(seed=1, data_seed=7) == order(seed=2, data_seed=7) != order(seed=1, data_seed=8)
    assert order(seed=1) == order(seed=3, data_seed=1) != order(seed=2)
