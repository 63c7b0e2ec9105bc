"""Tokenizing sentences and pairs as each arch reads them (sts_models.tokenization), on tiny random encoders."""

from __future__ import annotations

import logging

import pytest
import torch

import sts_models

LONG = "a man is playing a large flute " * 40  # about 280 tokens, past max_seq_length 128


@pytest.fixture
def fresh(arch, tiny_encoder_dir):
    torch.manual_seed(0)
    return sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir).eval()


def test_inputs_cut_at_max_seq_length_are_noted_once(fresh, caplog):
    pairs = [("a man is playing a flute", "a dog runs"), (LONG, "a man plays"), (LONG + " and sings", "a man plays")]
    with caplog.at_level(logging.WARNING, logger="sts_models.tokenization"):
        scores = fresh.predict(pairs)
        fresh.predict(pairs)
    notes = [record.getMessage() for record in caplog.records if "max_seq_length" in record.getMessage()]
    what = "pairs" if fresh.encodes_pairs_jointly else "sentences"
    # the two long pairs differ only past the limit, so they score alike: the user is told why, once per model
    assert scores[1] == pytest.approx(scores[2], abs=1e-6)
    # (3 pairs, or their sentences: each side of the cross arch, the distinct sentences of the siamese one)
    total = 3 if fresh.config.arch != "siamese" else len({sentence for pair in pairs for sentence in pair})
    assert notes == [f"2 of {total} {what} are longer than max_seq_length=128 tokens and are cut to it: what "
                     "follows is not read (said once per model)"]  # fmt: skip


def test_an_input_that_fits_exactly_is_not_noted(fresh, caplog):
    """Rows at the limit are tokenized again: one that fits in exactly max_seq_length tokens was not cut."""
    words, length = ["flute"], fresh.sequence_length(pair=fresh.encodes_pairs_jointly)
    key = "input_ids" if fresh.encodes_pairs_jointly else "input_ids_1"
    while len(fresh.tokenize([" ".join(words)], ["dog"])[key][0]) < length:
        words.append("flute")
    with caplog.at_level(logging.WARNING, logger="sts_models.tokenization"):
        fresh.predict([(" ".join(words), "dog")])
    assert not [record for record in caplog.records if "max_seq_length" in record.getMessage()]
