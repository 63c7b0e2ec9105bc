from __future__ import annotations

import pytest
from transformers import BertConfig

from sts_models import STSCrossAttentionConfig, STSRegressionConfig, STSSiameseConfig

ENCODER = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


@pytest.mark.parametrize("config_class", [STSRegressionConfig, STSSiameseConfig, STSCrossAttentionConfig])
def test_round_trip_keeps_encoder_and_options(config_class, tmp_path):
    config = config_class(encoder=ENCODER.to_dict(), pooling="max", freeze_layers=1, score_min=1.0, score_max=5.0)
    config.save_pretrained(tmp_path)
    loaded = config_class.from_pretrained(tmp_path)
    assert isinstance(loaded.encoder, BertConfig)
    assert loaded.encoder.hidden_size == 32
    assert (loaded.pooling, loaded.freeze_layers, loaded.score_min, loaded.score_max) == ("max", 1, 1.0, 5.0)


def test_score_scaling_round_trip():
    config = STSSiameseConfig(score_min=1.0, score_max=5.0)
    assert config.to_unit_range(1.0) == 0.0 and config.to_unit_range(5.0) == 1.0
    assert config.from_unit_range(config.to_unit_range(3.2)) == pytest.approx(3.2)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"pooling": "sum"}, "pooling must be one of"),
        ({"head": "dot"}, "head must be one of"),
        ({"score_min": 5.0, "score_max": 0.0}, "must be greater"),
        ({"freeze_layers": -1}, "freeze_layers"),
    ],
)
def test_invalid_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        STSSiameseConfig(**options)


def test_max_seq_length_leaves_out_the_positions_roberta_reserves():
    """RoBERTa-style encoders number positions after the padding index: of 514 position embeddings 512 can be
    used. A longer max_seq_length gave an index error in the embeddings at the first long input."""
    from transformers import RobertaConfig

    roberta = RobertaConfig(max_position_embeddings=130, pad_token_id=1).to_dict()
    assert STSSiameseConfig(encoder=roberta, max_seq_length=128).max_seq_length == 128
    with pytest.raises(
        ValueError, match=r"max_seq_length 129 is more than the 128 positions of the encoder \(roberta\)"
    ):
        STSSiameseConfig(encoder=roberta, max_seq_length=129)
    assert STSSiameseConfig(encoder=ENCODER.to_dict() | {"max_position_embeddings": 130}, max_seq_length=130)
