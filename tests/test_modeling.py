"""The three architectures: shapes, learning, save/load, freezing, symmetry, padding."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel
from transformers.trainer_utils import align_special_tokens

import sts_models
from sts_models import STSCrossAttentionModel, STSRegressionModel, STSSiameseModel
from sts_models.errors import NonFiniteScoresError, STSUserError

from .conftest import make_batch


def test_forward_shapes_and_loss(tiny_model, stsb_pairs):
    pairs = stsb_pairs[:5]
    batch = make_batch(tiny_model, pairs, labels=[s / 5 for *_, s in pairs])
    output = tiny_model(**batch)
    assert output.scores.shape == (5,)
    assert output.loss.ndim == 0 and output.loss.item() > 0
    batch.pop("labels")
    assert tiny_model(**batch).loss is None


def test_loss_falls_when_overfitting(tiny_model, stsb_pairs):
    pairs = stsb_pairs[:8]
    batch = make_batch(tiny_model, pairs, labels=[s / 5 for *_, s in pairs])
    tiny_model.train()
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = tiny_model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_predict_maps_back_to_score_range(tiny_model, stsb_pairs):
    pairs = [(a, b) for a, b, _ in stsb_pairs[:6]]
    batch = make_batch(tiny_model, pairs)
    with torch.no_grad():
        logits = tiny_model(**batch).scores.numpy()
    scores = tiny_model.predict(pairs, batch_size=4)
    np.testing.assert_allclose(scores, 5 * logits, atol=1e-5)
    assert not tiny_model.training


def test_predict_rejects_non_pairs(tiny_model):
    with pytest.raises(ValueError, match=r"sentence_pairs\[1\]"):
        tiny_model.predict([("a", "b"), ("only one",)])


def test_predict_refuses_scores_that_are_not_finite(tiny_model, stsb_pairs):
    """A model whose weights diverged (here: the embedding of the words only the last pair has, as NaN) gives no
    score, in one line naming the first pair it scored as NaN by its place in the stream."""
    pairs = [(a, b) for a, b, _ in stsb_pairs[:5]] + [("Xylophones zigzag.", "Xylophones zigzag.")]
    seen = {token for a, b in pairs[:-1] for token in tiny_model.tokenizer(a, b)["input_ids"]}
    own = sorted(set(tiny_model.tokenizer(*pairs[-1])["input_ids"]) - seen)
    assert own
    with torch.no_grad():
        tiny_model.encoder.get_input_embeddings().weight[own] = float("nan")
    assert np.isfinite(tiny_model.predict(pairs[:-1])).all()
    with pytest.raises(NonFiniteScoresError, match=r"scored sentence_pairs\[5\] as nan: its weights are not finite"):
        list(tiny_model.predict_chunks(iter(pairs), chunk_size=4))


def test_predict_streams_in_chunks(tiny_model, stsb_pairs):
    """Scoring chunk by chunk (a generator of pairs, chunks of 4) gives the scores of one call over the list."""
    pairs = [(a, b) for a, b, _ in stsb_pairs[:11]]
    expected = tiny_model.predict(pairs, batch_size=16)
    streamed = list(tiny_model.predict_chunks((pair for pair in pairs), batch_size=3, chunk_size=4))
    assert [len(chunk) for chunk in streamed] == [4, 4, 3]
    np.testing.assert_allclose(np.concatenate(streamed), expected, atol=1e-5)
    np.testing.assert_allclose(tiny_model.predict(iter(pairs), chunk_size=5), expected, atol=1e-5)


def test_predict_names_a_bad_pair_by_its_place_in_the_stream(tiny_model, stsb_pairs):
    pairs = [(a, b) for a, b, _ in stsb_pairs[:6]] + [("only one",)]
    with pytest.raises(ValueError, match=r"sentence_pairs\[6\] must be a pair of strings"):
        list(tiny_model.predict_chunks(iter(pairs), chunk_size=4))
    with pytest.raises(ValueError, match="sentence_pairs must be a list of .sentence_1, sentence_2. pairs, got str"):
        tiny_model.predict("A man plays a guitar.")
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        tiny_model.predict(pairs[:2], chunk_size=0)


def test_save_and_load_give_identical_outputs(tiny_model, stsb_pairs, tmp_path):
    pairs = [(a, b) for a, b, _ in stsb_pairs[:6]]
    expected = tiny_model.predict(pairs)
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "tokenizer.json").exists()
    reloaded = type(tiny_model).from_pretrained(tmp_path)
    auto = AutoModel.from_pretrained(tmp_path)
    assert type(auto) is type(tiny_model)
    assert AutoConfig.from_pretrained(tmp_path).model_type == tiny_model.config.model_type
    np.testing.assert_allclose(reloaded.predict(pairs), expected, atol=1e-6)
    np.testing.assert_allclose(auto.predict(pairs), expected, atol=1e-6)


def test_a_loaded_model_saves_its_tokenizer_and_loads_it_from_a_subfolder(tiny_model, stsb_pairs, tmp_path):
    """A loaded model reads its tokenizer on first use: saving (or pushing) it before that still writes the
    tokenizer, and `subfolder=` (like `revision=`, `cache_dir=`, `token=`) reaches the tokenizer too."""
    import shutil

    pairs = [(a, b) for a, b, _ in stsb_pairs[:4]]
    tiny_model.save_pretrained(tmp_path / "first")
    loaded = AutoModel.from_pretrained(tmp_path / "first")
    loaded.save_pretrained(tmp_path / "again")  # the tokenizer was never used
    assert (tmp_path / "again" / "tokenizer.json").exists()
    np.testing.assert_allclose(AutoModel.from_pretrained(tmp_path / "again").predict(pairs), tiny_model.predict(pairs))
    shutil.copytree(tmp_path / "first", tmp_path / "parent" / "model")
    in_subfolder = AutoModel.from_pretrained(tmp_path / "parent", subfolder="model")
    np.testing.assert_allclose(in_subfolder.predict(pairs), tiny_model.predict(pairs), atol=1e-6)


def test_saved_config_nests_the_encoder(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.encoder.model_type == "bert"
    assert config.encoder.hidden_size == 32
    assert config.auto_map["AutoModel"].endswith(type(tiny_model).__name__)


def test_config_holds_the_special_tokens_of_the_tokenizer(tiny_model, tmp_path):
    """The Trainer aligns the config with the tokenizer before training, warning when it has to change it."""
    config = tiny_model.config.to_dict()
    align_special_tokens(tiny_model, tiny_model.tokenizer)
    assert tiny_model.config.to_dict() == config
    assert tiny_model.config.pad_token_id == tiny_model.tokenizer.pad_token_id == 0
    # a model saved before the config held them gets them when its tokenizer is loaded
    tiny_model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["pad_token_id"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    reloaded = type(tiny_model).from_pretrained(tmp_path)
    assert getattr(reloaded.config, "pad_token_id", None) is None
    config = {**reloaded.config.to_dict(), "pad_token_id": 0}
    align_special_tokens(reloaded, reloaded.tokenizer)
    assert reloaded.config.to_dict() == config


@pytest.mark.parametrize("num_layers", [0, 1, 2])
def test_freeze_layers_freezes_exactly_embeddings_and_first_layers(arch, tiny_encoder_dir, num_layers):
    model = sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir, freeze_layers=num_layers)
    for name, parameter in model.named_parameters():
        frozen_prefixes = ["encoder.embeddings."] if num_layers else []
        frozen_prefixes += [f"encoder.encoder.layer.{i}." for i in range(num_layers)]
        should_freeze = any(name.startswith(prefix) for prefix in frozen_prefixes)
        assert parameter.requires_grad is not should_freeze, name


def test_freeze_layers_beyond_depth_is_refused(tiny_encoder_dir):
    with pytest.raises(ValueError, match="only 2 layers"):
        STSSiameseModel.from_encoder(tiny_encoder_dir, freeze_layers=3)


def test_unknown_option_is_refused(tiny_encoder_dir):
    with pytest.raises(TypeError, match="poolling"):
        STSSiameseModel.from_encoder(tiny_encoder_dir, poolling="max")


@pytest.mark.parametrize("options", [{"head": "cosine"}, {"head": "mlp"}, {"head": "mlp", "pooling": "max"}])
def test_siamese_heads_are_symmetric(tiny_encoder_dir, stsb_pairs, options):
    torch.manual_seed(0)
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, **options).eval()
    pairs = [(a, b) for a, b, _ in stsb_pairs[:8]]
    np.testing.assert_allclose(model.predict(pairs), model.predict([(b, a) for a, b in pairs]), atol=1e-5)


def test_cross_attention_is_symmetric(tiny_encoder_dir, stsb_pairs):
    torch.manual_seed(0)
    model = STSCrossAttentionModel.from_encoder(tiny_encoder_dir).eval()
    pairs = [(a, b) for a, b, _ in stsb_pairs[:8]]
    np.testing.assert_allclose(model.predict(pairs), model.predict([(b, a) for a, b in pairs]), atol=1e-5)


@pytest.mark.parametrize("side", ["_1", "_2"])
@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_cross_attention_ignores_extra_padding(tiny_encoder_dir, stsb_pairs, side, pooling):
    torch.manual_seed(0)
    model = STSCrossAttentionModel.from_encoder(tiny_encoder_dir, pooling=pooling).eval()
    batch = make_batch(model, stsb_pairs[:4])
    padded = dict(batch)
    extra = 7
    padded[f"input_ids{side}"] = torch.nn.functional.pad(batch[f"input_ids{side}"], (0, extra), value=0)
    padded[f"attention_mask{side}"] = torch.nn.functional.pad(batch[f"attention_mask{side}"], (0, extra), value=0)
    with torch.no_grad():
        torch.testing.assert_close(model(**padded).scores, model(**batch).scores, atol=1e-5, rtol=1e-5)


def test_cross_attention_attends_within_the_pair_not_across_the_batch(tiny_encoder_dir, stsb_pairs):
    torch.manual_seed(0)
    model = STSCrossAttentionModel.from_encoder(tiny_encoder_dir).eval()
    pairs = [(a, b) for a, b, _ in stsb_pairs[:6]]
    together = model.predict(pairs, batch_size=6)
    alone = np.array([model.predict([pair])[0] for pair in pairs])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_cross_attention_cosine_skip_starts_from_the_bi_encoder_cosine(tiny_encoder_dir, stsb_pairs, tmp_path):
    torch.manual_seed(0)
    model = STSCrossAttentionModel.from_encoder(tiny_encoder_dir, cosine_skip=True).eval()
    assert (model.cosine_skip.scale.item(), model.cosine_skip.bias.item()) == (10.0, -5.0)
    with torch.no_grad():
        model.head.out_proj.weight.zero_()
        model.head.out_proj.bias.zero_()
    pairs = [(a, b) for a, b, _ in stsb_pairs[:8]]
    siamese = STSSiameseModel.from_encoder(tiny_encoder_dir).eval()
    cosine = siamese.predict(pairs) / 5.0  # the same encoder weights: cos(u, v) on the 0-1 scale
    expected = 5.0 / (1.0 + np.exp(-(10.0 * cosine - 5.0)))
    np.testing.assert_allclose(model.predict(pairs), expected, atol=1e-5)
    np.testing.assert_allclose(model.predict(pairs), model.predict([(b, a) for a, b in pairs]), atol=1e-5)
    model.save_pretrained(tmp_path)
    reloaded = STSCrossAttentionModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.cosine_skip
    np.testing.assert_allclose(reloaded.predict(pairs), model.predict(pairs), atol=1e-5)


def test_cross_attention_cosine_skip_loss_adds_the_siamese_cosent_loss(tiny_encoder_dir, stsb_pairs):
    """The extra term is the siamese model's `cosent` loss on the same encoder: CoSENT of 20 * cos(u, v)."""
    torch.manual_seed(0)
    options = {"cosine_skip": True, "loss": "cosent"}
    model = STSCrossAttentionModel.from_encoder(tiny_encoder_dir, **options, cosine_skip_loss_weight=0.5).eval()
    plain = STSCrossAttentionModel.from_encoder(tiny_encoder_dir, **options).eval()
    plain.load_state_dict(model.state_dict())
    siamese = STSSiameseModel.from_encoder(tiny_encoder_dir, loss="cosent").eval()
    pairs = stsb_pairs[:8]
    labels = [s / 5 for *_, s in pairs]
    with torch.no_grad():
        total = model(**make_batch(model, pairs, labels=labels)).loss
        without = plain(**make_batch(plain, pairs, labels=labels)).loss
        cosent = siamese(**make_batch(siamese, pairs, labels=labels)).loss
    assert cosent > 0
    torch.testing.assert_close(total, without + 0.5 * cosent)
    with pytest.raises(ValueError, match="needs cosine_skip=True"):
        STSCrossAttentionModel.from_encoder(tiny_encoder_dir, cosine_skip_loss_weight=0.5)


def test_cross_attention_heads_must_divide_hidden_size(tiny_encoder_dir):
    with pytest.raises(ValueError, match="does not divide"):
        STSCrossAttentionModel.from_encoder(tiny_encoder_dir, cross_attention_heads=3)


def test_regression_model_reads_both_sentences(tiny_encoder_dir):
    torch.manual_seed(0)
    model = sts_models.STSRegressionModel.from_encoder(tiny_encoder_dir).eval()
    batch = make_batch(model, [("a man is playing a guitar .", "a woman is slicing an onion .")])
    assert (batch["token_type_ids"] == 1).any(), "the second sentence must be in the same sequence"
    scores = model.predict([("a man is playing .", "a man is playing ."), ("a man is playing .", "a dog runs .")])
    assert scores[0] != scores[1]


def test_siamese_encode(tiny_encoder_dir, stsb_pairs):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir).eval()
    sentences = [a for a, _, _ in stsb_pairs[:10]]
    embeddings = model.encode(sentences, batch_size=3)
    assert embeddings.shape == (10, 32)
    alone = model.encode(sentences[4])
    np.testing.assert_allclose(alone, embeddings[4], atol=1e-5)
    normalized = model.encode(sentences, normalize_embeddings=True, convert_to_numpy=False)
    assert isinstance(normalized, torch.Tensor)
    assert isinstance(model.encode(sentences, convert_to_tensor=True), torch.Tensor)
    torch.testing.assert_close(normalized.norm(dim=-1), torch.ones(10))
    # cosine of the embeddings is exactly what the cosine head scores
    cosine = (normalized[0] * normalized[1]).sum().item()
    assert model.predict([(sentences[0], sentences[1])])[0] == pytest.approx(5 * cosine, abs=1e-5)


def test_siamese_encode_in_chunks_returns_cpu_arrays(tiny_encoder_dir, stsb_pairs):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir).eval()
    sentences = [a for a, _, _ in stsb_pairs[:10]]
    expected = model.encode(sentences, batch_size=32)
    chunked = model.encode(sentences, batch_size=2, chunk_size=3)
    assert chunked.dtype == np.float32
    np.testing.assert_allclose(chunked, expected, atol=1e-5)
    assert model.encode(sentences, convert_to_tensor=True).device == torch.device("cpu")
    with pytest.raises(ValueError, match=r"sentences\[1\] must be a string, got None"):
        model.encode(["ok", None])


def test_siamese_predict_encodes_each_distinct_sentence_once(tiny_encoder_dir, stsb_pairs, monkeypatch):
    """Pairs are scored from the embeddings of their distinct sentences: a sentence in many pairs is encoded once,
    and the scores are those of `forward` on the pairs."""
    model = STSSiameseModel.from_encoder(tiny_encoder_dir).eval()
    sentences = [a for a, _, _ in stsb_pairs[:4]]
    pairs = [(sentences[0], other) for other in sentences[1:]] + [(sentences[2], sentences[1])]
    with torch.no_grad():
        expected = 5 * model(**make_batch(model, pairs)).scores.numpy()
    encoded = []
    embed_batch = model.embed_batch
    monkeypatch.setattr(
        model, "embed_batch", lambda batch: encoded.append(len(batch["input_ids"])) or embed_batch(batch)
    )
    np.testing.assert_allclose(model.predict(pairs, batch_size=2), expected, atol=1e-5)
    assert sum(encoded) == 4  # 8 sentence slots, 4 distinct sentences


def test_empty_inputs(tiny_encoder_dir):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    assert model.encode([]).shape == (0, 32)
    assert model.predict([]).shape == (0,)


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "cosent"])
@pytest.mark.parametrize("arch", ["bert", "cross"])
def test_pair_losses_read_the_logits(arch, loss, tiny_encoder_dir, stsb_pairs):
    """Binary cross-entropy of the score; `cosent` adds log(1 + sum exp(logit_j - logit_i)) over label_i > label_j."""
    model = sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir, loss=loss)
    model.eval()
    pairs = stsb_pairs[:6]
    labels = torch.tensor([s / 5 for *_, s in pairs], dtype=torch.float64)
    output = model(**make_batch(model, pairs, labels=labels.tolist()))
    scores = output.scores.double()
    assert 0 < scores.min() and scores.max() < 1
    expected = torch.nn.functional.binary_cross_entropy(scores, labels)
    if loss == "cosent":
        logits = torch.logit(scores)
        penalties = [logits[j] - logits[i] for i in range(6) for j in range(6) if labels[i] > labels[j]]
        expected = expected + torch.log(1 + torch.exp(torch.stack(penalties)).sum())
    torch.testing.assert_close(output.loss.double(), expected, rtol=1e-4, atol=1e-5)


def test_pair_loss_is_checked(tiny_encoder_dir):
    with pytest.raises(ValueError, match="loss of the 'bert' architecture must be one of"):
        sts_models.get_model_class("bert").from_encoder(tiny_encoder_dir, loss="triplet")


def test_symmetric_regression_model_scores_both_orders(tiny_encoder_dir, stsb_pairs, tmp_path):
    model = sts_models.get_model_class("bert").from_encoder(tiny_encoder_dir, symmetric=True)
    torch.manual_seed(0)
    for parameter in model.head.parameters():  # a head far from its near-constant initial output
        torch.nn.init.normal_(parameter, std=0.3)
    pairs = [(a, b) for a, b, _ in stsb_pairs[:6]]
    reversed_pairs = [(b, a) for a, b in pairs]
    np.testing.assert_allclose(model.predict(pairs), model.predict(reversed_pairs), atol=1e-5)

    plain = sts_models.get_model_class("bert").from_encoder(tiny_encoder_dir)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    model.eval()
    with torch.no_grad():
        one_way = plain.pair_logits(**make_batch(plain, pairs))
        other_way = plain.pair_logits(**make_batch(plain, reversed_pairs))
        both = model(**make_batch(model, pairs)).scores
    assert not torch.allclose(one_way, other_way, atol=1e-3)  # read in order, the two differ
    torch.testing.assert_close(both, torch.sigmoid((one_way + other_way) / 2), atol=1e-5, rtol=1e-4)
    batch = make_batch(model, pairs)  # swapped side padded longer: scored in its own encoder call
    for key in ("input_ids_swapped", "attention_mask_swapped", "token_type_ids_swapped"):
        batch[key] = torch.nn.functional.pad(batch[key], (0, 3), value=0)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).scores, both, atol=1e-5, rtol=1e-4)
    model.save_pretrained(tmp_path)
    assert AutoModel.from_pretrained(tmp_path).config.symmetric


def test_losses_stay_in_float32_under_bf16_autocast(tiny_model, stsb_pairs):
    pairs = stsb_pairs[:8]
    batch = make_batch(tiny_model, pairs, labels=[tiny_model.config.to_unit_range(s) for *_, s in pairs])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = tiny_model(**batch)
    assert output.loss.dtype == torch.float32 and torch.isfinite(output.loss)


def test_scores_are_float32_under_bf16_autocast(tiny_model, stsb_pairs):
    """A 0-1 score rounded to bf16 keeps 8 bits (steps of 0.004 near 1, so pairs tie); the score itself is
    computed in float32 from the bf16 network's outputs."""
    batch = make_batch(tiny_model, stsb_pairs[:16])
    with torch.no_grad():
        full = tiny_model(**batch).scores
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = tiny_model(**batch).scores
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, full, atol=2e-2, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("head", ["cosine", "mlp"])
def test_siamese_predicts_in_half_precision(tiny_encoder_dir, stsb_pairs, head, dtype):
    """Weights in float16/bf16 (`model.half()`): the embeddings reach the MLP head in its own dtype."""
    torch.manual_seed(0)
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, head=head).eval()
    pairs = [(a, b) for a, b, _ in stsb_pairs[:8]]
    expected = model.predict(pairs)
    scores = model.to(dtype).predict(pairs)
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, expected, atol=0.05 * (model.config.score_max - model.config.score_min))


def test_a_saved_models_loss_options_are_kept_unless_given_or_foreign_to_a_new_loss(tiny_encoder_dir, tmp_path):
    from sts_models.architectures import load_model

    saved = tmp_path / "mnrl"
    options = {"loss": "multiple_negatives_ranking", "loss_kwargs": {"symmetric": True, "scale": 10.0}}
    load_model("siamese", tiny_encoder_dir, **options).save_pretrained(saved)
    assert load_model(None, str(saved), loss_kwargs={"scale": 20.0}).config.loss_kwargs == {
        "symmetric": True,
        "scale": 20.0,
    }  # --loss_scale 20 alone keeps the saved --loss_symmetric
    assert load_model(None, str(saved)).config.loss_kwargs == {"symmetric": True, "scale": 10.0}
    cosent = load_model(None, str(saved), loss="cosent")  # cosent takes a scale, no symmetric
    assert cosent.config.loss == "cosent" and cosent.config.loss_kwargs == {"scale": 10.0}


@pytest.mark.parametrize("arch", ["bert", "siamese", "cross"])
def test_token_embeddings_resize_and_reload(tiny_encoder_dir, tmp_path, arch):
    """Adding a token to the tokenizer and resizing the embeddings (`resize_token_embeddings`) saves a model that
    loads again with the new vocabulary."""
    model = sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir)
    model.tokenizer.add_tokens(["[NEWTOKEN]"])
    size = len(model.tokenizer)
    assert model.resize_token_embeddings(size).num_embeddings == size
    assert model.get_input_embeddings().num_embeddings == size
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert reloaded.get_input_embeddings().num_embeddings == size
    pairs = [("a [NEWTOKEN] man", "a dog")]
    np.testing.assert_allclose(reloaded.predict(pairs), model.predict(pairs), atol=1e-6)


def test_an_unknown_loss_for_a_saved_model_with_loss_options_is_one_line(tiny_encoder_dir, tmp_path):
    from sts_models.architectures import load_model
    from sts_models.errors import STSUserError

    load_model("siamese", tiny_encoder_dir, loss="cosent", loss_kwargs={"scale": 10.0}).save_pretrained(tmp_path)
    with pytest.raises(STSUserError, match="loss must be one of"):
        load_model(None, str(tmp_path), loss="nope")


def edit_config(folder, **fields) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def test_a_config_that_does_not_fit_the_weights_is_refused(tiny_encoder_dir, tmp_path):
    """An edited config.json would leave layers random (a head the weights lack: a score that changes at each load)
    or fail deep in transformers (other shapes): one line naming the folder."""
    STSSiameseModel.from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / "saved")
    model, info = AutoModel.from_pretrained(tmp_path / "saved", output_loading_info=True)
    assert isinstance(model, STSSiameseModel) and not info["missing_keys"]
    edit_config(tmp_path / "saved", head="mlp", loss="mse")
    with pytest.raises(STSUserError, match=r"saved: its weights do not fit its config.json \(missing: head\."):
        AutoModel.from_pretrained(tmp_path / "saved")
    encoder = json.loads((tmp_path / "saved" / "config.json").read_text())["encoder"]
    edit_config(tmp_path / "saved", head="cosine", loss="cosine_similarity", encoder={**encoder, "hidden_size": 64})
    with pytest.raises(STSUserError, match="saved: the shapes of its weights do not fit its config.json"):
        AutoModel.from_pretrained(tmp_path / "saved")


@pytest.mark.parametrize(("field", "value"), [("score_max", "5"), ("freeze_layers", None), ("pooling", 1)])
def test_a_config_field_of_the_wrong_type_is_refused(tiny_encoder_dir, tmp_path, field, value):
    STSSiameseModel.from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / "saved")
    edit_config(tmp_path / "saved", **{field: value})
    with pytest.raises(ValueError, match=f"^{field} must be of type "):
        AutoModel.from_pretrained(tmp_path / "saved")


def test_an_arch_class_loads_only_its_own_models(tiny_encoder_dir, tmp_path):
    STSRegressionModel.from_encoder(tiny_encoder_dir, loss="cosent").save_pretrained(tmp_path / "bert")
    with pytest.raises(STSUserError, match=r"bert holds a 'sts_regression' model, not a STSSiameseModel .*AutoModel"):
        STSSiameseModel.from_pretrained(tmp_path / "bert")  # its head would be dropped, another score given
    with pytest.raises(STSUserError, match=r"holds a 'bert' model, not a STSSiameseModel .*STSSiameseModel.from_enc"):
        STSSiameseModel.from_pretrained(tiny_encoder_dir)
    with pytest.raises(STSUserError, match=r"bert is a saved bert model, not an encoder"):
        STSSiameseModel.from_encoder(str(tmp_path / "bert"))


@pytest.mark.parametrize("arch", ["bert", "siamese"])
def test_the_base_class_loads_the_saved_arch(arch, tiny_encoder_dir, stsb_pairs, tmp_path):
    """`STSPreTrainedModel.from_pretrained` (in `__all__`) loads as `AutoModel` does; it printed a load report, then
    AttributeError 'all_tied_weights_keys'."""
    sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / "saved")
    pairs = [(a, b) for a, b, _ in stsb_pairs[:4]]
    expected = AutoModel.from_pretrained(tmp_path / "saved").predict(pairs)
    model = sts_models.STSPreTrainedModel.from_pretrained(tmp_path / "saved")
    assert type(model) is sts_models.get_model_class(arch)
    np.testing.assert_allclose(model.predict(pairs), expected, atol=1e-6)
    config = AutoConfig.from_pretrained(tmp_path / "saved")
    again = sts_models.STSPreTrainedModel.from_pretrained(tmp_path / "saved", config=config)
    np.testing.assert_allclose(again.predict(pairs), expected, atol=1e-6)
    # config= as a path, as transformers takes it (it was refused as "a 'str' config")
    for cls in (sts_models.STSPreTrainedModel, sts_models.get_model_class(arch)):
        by_path = cls.from_pretrained(tmp_path / "saved", config=str(tmp_path / "saved"))
        np.testing.assert_allclose(by_path.predict(pairs), expected, atol=1e-6)


def test_a_save_that_fails_over_a_model_leaves_the_earlier_one(tiny_encoder_dir, tmp_path, monkeypatch):
    import transformers.modeling_utils

    pairs = [("A man plays a guitar.", "A woman slices an onion.")]
    STSRegressionModel.from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / "saved")
    before = AutoModel.from_pretrained(tmp_path / "saved").predict(pairs)
    other = STSRegressionModel.from_encoder(tiny_encoder_dir, pooling="cls", score_min=1.0, score_max=2.0)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full_disk)
    with pytest.raises(OSError, match="No space left"):
        other.save_pretrained(tmp_path / "saved")
    monkeypatch.undo()
    again = AutoModel.from_pretrained(tmp_path / "saved")
    assert again.config.pooling == "mean" and np.array_equal(again.predict(pairs), before)
    assert not any(name.startswith(".") for name in os.listdir(tmp_path / "saved"))
