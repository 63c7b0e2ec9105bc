"""Tokenizing sentences and pairs as each arch reads them (sts_models.tokenization), on tiny random encoders."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from transformers import AutoModel

import sts_models
from sts_models.errors import STSUserError

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


def test_max_seq_length_set_past_the_positions_after_loading_is_refused_as_at_load(fresh, tmp_path):
    """Not a RuntimeError deep inside the encoder on a long input: the load-time message, in one line."""
    fresh.save_pretrained(tmp_path)
    with pytest.raises(ValueError) as at_load:
        AutoModel.from_pretrained(tmp_path, max_seq_length=512)
    loaded = AutoModel.from_pretrained(tmp_path)
    loaded.config.max_seq_length = 512  # the tiny encoder has 128 positions
    with pytest.raises(STSUserError) as at_predict:
        loaded.predict([(LONG, "a man plays")])
    assert (
        str(at_predict.value)
        == str(at_load.value)
        == "max_seq_length 512 is more than the 128 positions of the encoder (bert)"
    )
    if fresh.config.arch == "siamese":
        with pytest.raises(STSUserError, match=f"^{re.escape(str(at_load.value))}$"):
            loaded.encode([LONG])
