"""A sentence-transformers checkpoint's pooling, token limit and normalization become the siamese defaults."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from sts_models import STSSiameseModel, get_model_class
from sts_models.sentence_transformers_settings import sentence_transformers_settings

from .conftest import in_hub_cache

SENTENCES = ["A man plays a guitar.", "A dog runs on the grass.", "Two kids play in the park."]


@pytest.fixture(scope="module")
def st_folder(tiny_encoder_dir, tmp_path_factory) -> str:
    """A SentenceTransformer folder (cls pooling, 64 tokens, normalized), written by sentence-transformers."""
    folder = tmp_path_factory.mktemp("st") / "model"
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, pooling="cls", max_seq_length=64, normalize_embeddings=True)
    model.save_sentence_transformer(str(folder))
    return str(folder)


def test_a_sentence_transformers_folder_sets_the_defaults(st_folder):
    from sentence_transformers import SentenceTransformer

    assert sentence_transformers_settings(st_folder) == {
        "pooling": "cls",
        "max_seq_length": 64,
        "normalize_embeddings": True,
    }
    model = STSSiameseModel.from_encoder(st_folder)
    assert (model.config.pooling, model.config.max_seq_length, model.config.normalize_embeddings) == ("cls", 64, True)
    ours, theirs = model.encode(SENTENCES), SentenceTransformer(st_folder).encode(SENTENCES)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)  # embeds as sentence-transformers does
    explicit = STSSiameseModel.from_encoder(st_folder, pooling="mean", normalize_embeddings=False)
    assert (explicit.config.pooling, explicit.config.normalize_embeddings) == ("mean", False)  # explicit options win


def test_a_plain_checkpoint_keeps_the_config_defaults(tiny_encoder_dir):
    assert sentence_transformers_settings(tiny_encoder_dir) == {}
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    assert (model.config.pooling, model.config.normalize_embeddings) == ("mean", False)


@pytest.mark.parametrize("arch", ["bert", "cross"])
def test_pair_models_do_not_read_the_settings(st_folder, tiny_encoder_dir, arch):
    """A sentence-transformers folder describes how to embed one sentence, not how a pair model pools a pair."""
    model, plain = (get_model_class(arch).from_encoder(path) for path in (st_folder, tiny_encoder_dir))
    assert (model.config.pooling, model.config.max_seq_length) == (plain.config.pooling, plain.config.max_seq_length)


def test_modules_the_siamese_model_lacks_are_named(st_folder, tmp_path, caplog):

    folder = tmp_path / "with-dense"
    shutil.copytree(st_folder, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": len(modules), "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with caplog.at_level(logging.WARNING, logger="sts_models.sentence_transformers_settings"):
        sentence_transformers_settings(str(folder))
    assert "modules that the siamese model does not hold (Dense)" in caplog.text


def test_settings_applied_to_the_text_before_the_tokenizer_are_named(st_folder, tmp_path, caplog):
    """sentence-transformers lowercases before a cased tokenizer (`do_lower_case`) and puts a default prompt before
    each sentence; the siamese model does neither, so its embeddings differed silently."""
    folder = tmp_path / "lowercasing"
    shutil.copytree(st_folder, folder)

    def edit(name, **values):
        path = folder / name
        path.write_text(json.dumps({**(json.loads(path.read_text()) if path.exists() else {}), **values}))

    with caplog.at_level(logging.WARNING, logger="sts_models.sentence_transformers_settings"):
        sentence_transformers_settings(str(folder))
    assert "lowercases" not in caplog.text and "prompt" not in caplog.text  # the export sets neither
    edit("sentence_bert_config.json", do_lower_case=True)
    edit("tokenizer_config.json", do_lower_case=False)
    # (its tokenizer.json's normalizer lowercases, but the config's do_lower_case false wins: a cased tokenizer)
    assert json.loads((folder / "tokenizer.json").read_text())["normalizer"]["lowercase"] is True
    edit("config_sentence_transformers.json", prompts={"query": "query: "}, default_prompt_name="query")
    with caplog.at_level(logging.WARNING, logger="sts_models.sentence_transformers_settings"):
        sentence_transformers_settings(str(folder))
    assert (
        "lowercases sentences before its cased tokenizer (do_lower_case in sentence_bert_config.json)" in caplog.text
    )
    assert "puts its prompt 'query' ('query: ') before every sentence (default_prompt_name)" in caplog.text
    # a tokenizer that lowercases anyway: by its config, or by its normalizer alone
    for name, values in (("tokenizer_config.json", {"do_lower_case": True}),
                         ("tokenizer.json", {"normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}]}})):  # fmt: skip
        edit("tokenizer_config.json", do_lower_case=name == "tokenizer_config.json")
        if name == "tokenizer.json":  # the config's setting wins where it is set (transformers applies it)
            config = json.loads((folder / "tokenizer_config.json").read_text())
            (folder / "tokenizer_config.json").write_text(
                json.dumps({k: v for k, v in config.items() if k != "do_lower_case"})
            )
        edit(name, **values)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sts_models.sentence_transformers_settings"):
            sentence_transformers_settings(str(folder))
        assert "lowercases" not in caplog.text


def test_a_cached_snapshot_without_modules_json_reads_the_bundled_copy_or_says_so(
    tiny_encoder_dir, tmp_path, monkeypatch, caplog
):
    """Offline, a Hub id loads from the local cache, which holds the files that were fetched: a snapshot that
    transformers filled has no modules.json. The bundled copy's settings apply where there is one; else a warning
    says the settings cannot be told (never a silent difference between machines)."""
    in_hub_cache(lambda folder: shutil.copytree(tiny_encoder_dir, folder), "someone/st-model", tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="sts_models.sentence_transformers_settings"):
        assert sentence_transformers_settings("someone/st-model") == {}
    assert "has no modules.json, so whether it is a sentence-transformers model" in caplog.text
    bundled = tmp_path / "bundled"
    shutil.copytree(tiny_encoder_dir, bundled)
    (bundled / "modules.json").write_text(
        json.dumps([{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    )
    (bundled / "1_Pooling").mkdir()
    (bundled / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    from sts_models import sentence_transformers_settings as module

    monkeypatch.setattr(module, "bundled_model_path", lambda model_id: str(bundled))
    assert sentence_transformers_settings("someone/st-model")["pooling"] == "cls"


@pytest.mark.parametrize(
    "files, expected",
    [
        ({}, 256),  # no limit anywhere: the encoder's positions
        ({"tokenizer_config.json": {"model_max_length": 1000}}, 256),  # the tokenizer's, capped at the positions
        ({"tokenizer_config.json": {"model_max_length": 100}}, 100),
        ({"sentence_bert_config.json": {"max_seq_length": 200}}, 200),
    ],
    ids=["no-limit", "tokenizer-over-positions", "tokenizer", "sentence-bert-config"],
)
def test_the_token_limit_is_the_one_sentence_transformers_reads(tiny_encoder_dir, tmp_path, files, expected):
    """A sentence-transformers folder that sets no `max_seq_length` truncates where sentence-transformers' own
    `Transformer` does (the tokenizer's limit, capped at the encoder's positions), not at the config's default 128."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path / "st-256"
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=256)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config.pop("model_max_length")  # transformers' "no limit"
    for name, values in {"tokenizer_config.json": tokenizer_config, **files}.items():
        if name == "tokenizer_config.json":
            values = {**tokenizer_config, **values}
        (folder / name).write_text(json.dumps(values))
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    assert SentenceTransformer(str(folder), device="cpu").max_seq_length == expected
    assert sentence_transformers_settings(str(folder))["max_seq_length"] == expected
    assert STSSiameseModel.from_encoder(str(folder)).config.max_seq_length == expected
