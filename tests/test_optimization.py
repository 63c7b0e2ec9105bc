"""Per-group learning rates: a head learning rate and layer-wise decay over the encoder."""

from __future__ import annotations

import pytest
import torch
from transformers import Trainer

import sts_models
from sts_models.optimization import optimizer_cls_and_kwargs, parameter_learning_rates
from sts_models.trainer import STSTrainer
from sts_models.training_args import STSTrainingArguments


@pytest.fixture
def model(tiny_encoder_dir):
    return sts_models.get_model_class("cross").from_encoder(tiny_encoder_dir, freeze_layers=0)


def test_learning_rates_decay_down_the_encoder(model):
    rates = parameter_learning_rates(model, 1e-4, head_learning_rate=1e-3, layerwise_lr_decay=0.5)
    layers = model.config.encoder.num_hidden_layers
    top = f"encoder.encoder.layer.{layers - 1}.attention.self.query.weight"
    assert rates[top] == pytest.approx(1e-4)
    assert rates["encoder.encoder.layer.0.attention.self.query.weight"] == pytest.approx(1e-4 * 0.5 ** (layers - 1))
    assert rates["encoder.embeddings.word_embeddings.weight"] == pytest.approx(1e-4 * 0.5**layers)
    assert rates["head.dense.weight"] == rates["cross_attention.in_proj_weight"] == pytest.approx(1e-3)


def test_a_norm_after_the_top_layer_trains_at_the_top_layers_rate():
    """ModernBERT's `final_norm` (after the top layer, feeding the pooling) got the embeddings' rate, the lowest."""
    from transformers import AutoModel, ModernBertConfig

    config = ModernBertConfig(vocab_size=100, pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1,
                              sep_token_id=2, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                              intermediate_size=48, max_position_embeddings=512)  # fmt: skip
    encoder = AutoModel.from_config(config)
    siamese = sts_models.get_model_class("siamese")
    model = siamese(siamese.config_class(encoder=encoder.config), encoder=encoder)
    rates = parameter_learning_rates(model, 1e-4, None, 0.5)
    assert rates["encoder.final_norm.weight"] == rates["encoder.layers.3.attn.Wqkv.weight"] == pytest.approx(1e-4)
    assert rates["encoder.embeddings.tok_embeddings.weight"] == pytest.approx(1e-4 * 0.5**4)
    assert rates["encoder.embeddings.norm.weight"] == pytest.approx(1e-4 * 0.5**4)


def test_a_head_learning_rate_of_zero_is_zero(model):
    """0 freezes the head (it is no missing value, which means the encoder's rate)."""
    rates = parameter_learning_rates(model, 1e-4, head_learning_rate=0.0, layerwise_lr_decay=0.5)
    assert rates["head.dense.weight"] == 0.0
    assert parameter_learning_rates(model, 1e-4, None, 1.0)["head.dense.weight"] == pytest.approx(1e-4)


def test_decay_on_an_encoder_without_a_layer_list_is_one_line(model, monkeypatch):
    from sts_models import optimization
    from sts_models.errors import STSUserError

    def no_layers(encoder):
        raise ValueError("Cannot find the layer list of AlbertModel to freeze; set freeze_layers=0")

    monkeypatch.setattr(optimization, "encoder_layers", no_layers)
    with pytest.raises(STSUserError, match=r"^--layerwise_lr_decay 0.9: the BertModel encoder has no list of layers"):
        parameter_learning_rates(model, 1e-4, None, 0.9)
    assert set(parameter_learning_rates(model, 1e-4, 1e-3, 1.0).values()) == {1e-4, 1e-3}  # no decay needs none


def test_frozen_parameters_are_left_out(tiny_encoder_dir):
    model = sts_models.get_model_class("bert").from_encoder(tiny_encoder_dir, freeze_layers=1)
    rates = parameter_learning_rates(model, 1e-4, None, 0.9)
    assert not any(name.startswith("encoder.embeddings") or ".layer.0." in name for name in rates)
    assert len(rates) == sum(p.requires_grad for p in model.parameters())


def test_trainer_builds_the_groups(model, tmp_path):
    args = STSTrainingArguments(output_dir=str(tmp_path), learning_rate=1e-4, weight_decay=0.01, report_to="none")
    args.disable_evaluation()
    assert optimizer_cls_and_kwargs(model, args) is None
    args.head_learning_rate, args.layerwise_lr_decay = 2e-3, 0.8
    trainer = Trainer(model=model, args=args, optimizer_cls_and_kwargs=optimizer_cls_and_kwargs(model, args))
    optimizer = trainer.create_optimizer()
    parameters = {id(p): name for name, p in model.named_parameters()}
    expected = parameter_learning_rates(model, 1e-4, 2e-3, 0.8)
    seen = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            name = parameters[id(p)]
            assert group["lr"] == pytest.approx(expected[name])
            assert group["weight_decay"] == (0.0 if "bias" in name or "LayerNorm" in name or "norm." in name else 0.01)
            seen += 1
    assert seen == len(expected)


@pytest.mark.parametrize("by_position", [False, True])
def test_sts_trainer_trains_at_the_group_rates_by_itself(model, tmp_path, by_position):
    """From Python as from the command: `STSTrainer` with `STSTrainingArguments` needs no `optimizer_cls_and_kwargs`."""
    args = STSTrainingArguments(
        output_dir=str(tmp_path), learning_rate=1e-4, head_learning_rate=2e-3, layerwise_lr_decay=0.8, report_to="none"
    )
    args.disable_evaluation()
    trainer = STSTrainer(model, args) if by_position else STSTrainer(model=model, args=args)
    rates = {id(p): group["lr"] for group in trainer.create_optimizer().param_groups for p in group["params"]}
    expected = parameter_learning_rates(model, 1e-4, 2e-3, 0.8)
    assert {name: rates[id(p)] for name, p in model.named_parameters()} == pytest.approx(expected)


def test_a_model_from_model_init_trains_at_the_group_rates(tiny_encoder_dir, tmp_path):
    """With `model_init` (as hyperparameter search needs) there is no model when the Trainer is made: the head trained
    at the encoder's rate, without a word."""

    def make():
        return sts_models.get_model_class("siamese").from_encoder(tiny_encoder_dir, head="mlp")

    args = STSTrainingArguments(
        output_dir=str(tmp_path), learning_rate=1e-5, head_learning_rate=1e-2, report_to="none"
    )
    args.disable_evaluation()
    trainer = STSTrainer(model_init=make, args=args)
    groups = trainer.create_optimizer().param_groups
    assert sorted({group["lr"] for group in groups}) == pytest.approx([1e-5, 1e-2])
    trainer.optimizer = None  # a second optimizer (a new trial) gets the groups again
    assert sorted({group["lr"] for group in trainer.create_optimizer().param_groups}) == pytest.approx([1e-5, 1e-2])


def test_an_optimizer_of_ones_own_is_kept(model, tmp_path):
    args = STSTrainingArguments(output_dir=str(tmp_path), head_learning_rate=2e-3, report_to="none")
    args.disable_evaluation()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer = STSTrainer(model=model, args=args, optimizers=(optimizer, None))
    assert trainer.create_optimizer() is optimizer


def test_decay_out_of_range_is_refused(tmp_path):
    """Refused with the other arguments, before any work (tests/test_bad_input_options.py runs it through run_sts.py)."""
    with pytest.raises(ValueError, match=r"--layerwise_lr_decay must be in \(0, 1\], got 1.5"):
        STSTrainingArguments(output_dir=str(tmp_path), report_to="none", layerwise_lr_decay=1.5)
