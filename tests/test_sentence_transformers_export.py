"""`export_sentence_transformers`: siamese -> a SentenceTransformer folder with the same embeddings, bert -> a
CrossEncoder folder with the same scores, both written by sentence-transformers' own `save`; the refusals, one line
each."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from sentence_transformers import CrossEncoder, SentenceTransformer

from sts_models import STSSiameseModel, get_model_class
from sts_models import sentence_transformers_export as export_module
from sts_models.errors import STSUserError
from sts_models.sentence_transformers_export import export_sentence_transformers


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def assert_written_by_sentence_transformers(folder, kind: str) -> None:
    """modules.json and the card come from sentence-transformers' `save`; every module is its own class, and no
    code file travels with the weights (the folder loads without sts_models and without trust_remote_code)."""
    with open(os.path.join(folder, "config_sentence_transformers.json"), encoding="utf-8") as handle:
        assert json.load(handle)["model_type"] == kind
    with open(os.path.join(folder, "modules.json"), encoding="utf-8") as handle:
        modules = json.load(handle)
    assert modules[0]["type"].endswith(".Transformer")
    assert all(module["type"].startswith("sentence_transformers.") for module in modules)
    assert os.path.isfile(os.path.join(folder, "README.md"))
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        assert "auto_map" not in json.load(handle)
    assert not [name for _, _, files in os.walk(folder) for name in files if name.endswith(".py")]


def no_leftovers(tmp_path) -> None:
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no temporary sibling left


@pytest.mark.parametrize(
    "options",
    [{}, {"pooling": "max", "normalize_embeddings": True}, {"pooling": "cls", "max_seq_length": 12}],
)
def test_siamese_exports_a_sentence_transformer_with_the_same_embeddings(
    tiny_encoder_dir, stsb_pairs, tmp_path, options
):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, **options)
    folder = tmp_path / "st"
    assert export_sentence_transformers(model, str(folder)) == "SentenceTransformer"
    assert_written_by_sentence_transformers(folder, "SentenceTransformer")
    no_leftovers(tmp_path)
    loaded = SentenceTransformer(str(folder), device="cpu")
    sentences = [s for a, b, _ in stsb_pairs[:16] for s in (a, b)]
    ours, theirs = model.encode(sentences), loaded.encode(sentences)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.9999
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    if options.get("normalize_embeddings"):
        np.testing.assert_allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)
    assert loaded.max_seq_length == model.config.max_seq_length


def test_save_sentence_transformer_method_still_writes_the_folder(tiny_encoder_dir, stsb_pairs, tmp_path):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    model.save_sentence_transformer(str(tmp_path / "st"))
    sentences = [a for a, _, _ in stsb_pairs[:8]]
    theirs = SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(sentences)
    np.testing.assert_allclose(theirs, model.encode(sentences), atol=1e-5)


def spread_scores(model, pairs) -> None:
    """Rescale the last layer of a fresh head so that its logits over `pairs` have mean 0 and deviation 1: the random
    encoder's pairs otherwise all score about 0.5, which any export would match."""
    score_range = model.config.score_max - model.config.score_min
    scores = (model.predict(pairs) - model.config.score_min) / score_range
    logits = np.log(scores / (1 - scores))
    with torch.no_grad():
        model.head.out_proj.weight /= float(logits.std())
        model.head.out_proj.bias.sub_(float(logits.mean())).div_(float(logits.std()))


@pytest.mark.parametrize(
    "options",
    [{}, {"pooling": "cls", "max_seq_length": 20, "score_max": 1.0}, {"pooling": "max", "score_max": 4.0}],
)
def test_bert_exports_a_cross_encoder_with_the_same_scores(tiny_encoder_dir, stsb_pairs, tmp_path, options):
    model = get_model_class("bert").from_encoder(tiny_encoder_dir, **options)
    pairs = [(a, b) for a, b, _ in stsb_pairs[:32]]
    spread_scores(model, pairs)
    folder = tmp_path / "ce"
    assert export_sentence_transformers(model, str(folder)) == "CrossEncoder"
    assert_written_by_sentence_transformers(folder, "CrossEncoder")
    no_leftovers(tmp_path)
    loaded = CrossEncoder(str(folder), device="cpu")
    ours = model.predict(pairs) / model.config.score_max
    theirs = loaded.predict(pairs)
    assert ours.std() > 0.1 and 0.01 < ours.min() and ours.max() < 0.99
    np.testing.assert_allclose(theirs, ours, atol=1e-5, rtol=0)
    assert loaded.max_seq_length == model.config.max_seq_length


def test_mlp_head_is_refused(tiny_encoder_dir, tmp_path):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, head="mlp")
    with pytest.raises(STSUserError) as error:
        export_sentence_transformers(model, str(tmp_path / "st"))
    assert "scores a pair by the cosine" in one_line(error)
    with pytest.raises(STSUserError, match="Only the cosine head"):
        model.save_sentence_transformer(str(tmp_path / "st"))
    assert not os.listdir(tmp_path)


def test_symmetric_bert_is_refused(tiny_encoder_dir, tmp_path):
    model = get_model_class("bert").from_encoder(tiny_encoder_dir, symmetric=True)
    with pytest.raises(STSUserError) as error:
        export_sentence_transformers(model, str(tmp_path / "ce"))
    assert "symmetric models average both orders; CrossEncoder reads one" in one_line(error)
    assert not os.listdir(tmp_path)


def test_cross_arch_is_refused(tiny_encoder_dir, tmp_path):
    model = get_model_class("cross").from_encoder(tiny_encoder_dir)
    with pytest.raises(STSUserError) as error:
        export_sentence_transformers(model, str(tmp_path / "out"))
    assert "no sentence-transformers equivalent" in one_line(error)
    assert not os.listdir(tmp_path)


def test_non_empty_folder_is_refused_and_an_earlier_export_replaced_only_with_overwrite(tiny_encoder_dir, tmp_path):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    unrelated = tmp_path / "mine"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(STSUserError) as error:
            export_sentence_transformers(model, str(unrelated), overwrite=overwrite)
        assert "is not empty (notes.txt)" in one_line(error)
    assert os.listdir(unrelated) == ["notes.txt"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(STSUserError) as error:
        export_sentence_transformers(model, str(tmp_path / "a-file"))
    assert "is a file" in one_line(error)

    folder = tmp_path / "st"
    folder.mkdir()  # an empty folder is fine
    export_sentence_transformers(model, str(folder))
    (folder / "stale.txt").write_text("from the earlier export")
    bert = get_model_class("bert").from_encoder(tiny_encoder_dir)
    for other in (model, bert):  # an earlier export, of either class, is kept without overwrite
        with pytest.raises(STSUserError) as error:
            export_sentence_transformers(other, str(folder))
        assert "holds an earlier export: pass --overwrite" in one_line(error)
        assert (folder / "stale.txt").exists()
    assert export_sentence_transformers(model, str(folder), overwrite=True) == "SentenceTransformer"
    assert not (folder / "stale.txt").exists()
    assert_written_by_sentence_transformers(folder, "SentenceTransformer")
    (folder / "stale.txt").write_text("from the earlier export")
    model.save_sentence_transformer(str(folder))  # replaces it, as SentenceTransformer.save does
    assert not (folder / "stale.txt").exists()
    no_leftovers(tmp_path)


def test_a_failed_export_leaves_no_half_written_folder(tiny_encoder_dir, tmp_path, monkeypatch):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    original = export_module._save_sentence_transformer

    def fail_after_writing(model, folder, staging):
        original(model, folder, staging)
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "_save_sentence_transformer", fail_after_writing)
    with pytest.raises(OSError, match="disk full"):
        export_sentence_transformers(model, str(tmp_path / "st"))
    assert not os.listdir(tmp_path)


def test_cli_replaces_an_earlier_export_only_with_overwrite(tiny_encoder_dir, tmp_path, capsys):
    from sts_models.cli import main

    model_dir, out = tmp_path / "siamese", tmp_path / "st"
    STSSiameseModel.from_encoder(tiny_encoder_dir).save_pretrained(model_dir)
    argv = ["export", "--format", "sentence-transformers", str(model_dir), str(out)]
    assert main(argv) == 0
    assert "Done. Load it with sentence_transformers.SentenceTransformer" in capsys.readouterr().out
    (out / "stale.txt").write_text("from the earlier export")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "holds an earlier export: pass --overwrite" in err, err
    assert (out / "stale.txt").exists()
    assert main([*argv, "--overwrite"]) == 0
    assert not (out / "stale.txt").exists()
    assert_written_by_sentence_transformers(out, "SentenceTransformer")


def test_cli_on_a_plain_encoder_says_to_train_it_first(tiny_encoder_dir, tmp_path, capsys):
    """`sts-models export` has no --arch: the hint names what can be done, training a model on the encoder."""
    from sts_models.cli import main

    assert main(["export", tiny_encoder_dir, str(tmp_path / "st")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert f"{tiny_encoder_dir} is a plain encoder, not a saved STS model: train one on it first" in err
    assert "sts-models train --arch siamese" in err and "choose an architecture with --arch" not in err
    assert not (tmp_path / "st").exists()
