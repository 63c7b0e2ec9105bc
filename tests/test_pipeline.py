"""`pipeline("sentence-similarity", model=folder)` for every arch: with sts_models imported, and with
`trust_remote_code=True` where sts_models cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from transformers import AutoModel, BertTokenizer, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import sts_models
from sts_models.errors import STSUserError
from sts_models.pipeline import SentenceSimilarityPipeline

from .conftest import WITHOUT_STS_MODELS

SOURCE = "A man is playing a guitar."
SENTENCES = ["Someone plays an instrument.", "A woman slices an onion.", "A man is playing a guitar."]


@pytest.fixture(scope="module", params=list(sts_models.ARCHITECTURES))
def saved(request, tiny_encoder_dir, tmp_path_factory):
    """(model, folder): a tiny model of each arch and the folder `save_pretrained` wrote."""
    model = sts_models.get_model_class(request.param).from_encoder(tiny_encoder_dir).eval()
    folder = tmp_path_factory.mktemp(f"pipeline-{request.param}")
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture(scope="module")
def pipe(saved):
    return pipeline("sentence-similarity", model=str(saved[1]), device="cpu")


def test_the_task_is_registered_on_import():
    assert PIPELINE_REGISTRY.supported_tasks["sentence-similarity"]["impl"] is SentenceSimilarityPipeline
    assert "sentence-similarity" in PIPELINE_REGISTRY.get_supported_tasks()


def test_widget_input_scores_like_predict(saved, pipe):
    model, _ = saved
    assert isinstance(pipe, SentenceSimilarityPipeline) and type(pipe.model) is type(model)
    scores = pipe({"source_sentence": SOURCE, "sentences": SENTENCES})
    assert isinstance(scores, list) and all(type(score) is float for score in scores)
    np.testing.assert_allclose(scores, model.predict([(SOURCE, s) for s in SENTENCES]), atol=1e-5)
    np.testing.assert_allclose(
        scores, pipe({"sentences": SENTENCES, "source_sentence": SOURCE}, batch_size=1), atol=1e-5
    )


def test_list_of_pairs_scores_like_predict(saved, pipe, stsb_pairs):
    model, _ = saved
    pairs = [(a, b) for a, b, _ in stsb_pairs[:5]]
    scores = pipe(pairs)
    assert len(scores) == len(pairs)
    np.testing.assert_allclose(scores, model.predict(pairs), atol=1e-5)
    np.testing.assert_allclose(pipe([list(pair) for pair in pairs], batch_size=2), scores, atol=1e-5)
    assert model.config.score_min <= min(scores) and max(scores) <= model.config.score_max  # the model's range


def test_a_model_object_works_too(saved):
    model, _ = saved
    pipe = pipeline("sentence-similarity", model=model, device="cpu")
    np.testing.assert_allclose(pipe([(SOURCE, SENTENCES[0])]), model.predict([(SOURCE, SENTENCES[0])]), atol=1e-5)


def test_a_tokenizer_folder_is_checked_as_the_models_own(saved, tmp_path):
    """A folder without the tokenizer's vocabulary would build a tokenizer of special tokens alone: every word [UNK],
    and sentences of the same length scored alike."""
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    with pytest.raises(
        STSUserError, match=r"has no tokenizer files: BertTokenizer reads tokenizer.json or vocab"
    ) as e:
        pipeline("sentence-similarity", model=str(saved[1]), tokenizer=str(tmp_path), device="cpu")
    assert "\n" not in str(e.value)
    with pytest.raises(
        STSUserError, match=r"^model.tokenizer = BertTokenizer holds only its 5 special tokens, no voc"
    ):
        pipeline("sentence-similarity", model=str(saved[1]), tokenizer=BertTokenizer(), device="cpu")


def test_a_pipeline_given_a_tokenizer_folder_scores_and_saves_with_it(saved, tiny_encoder_dir, tmp_path):
    model, folder = saved
    pipe = pipeline("sentence-similarity", model=str(folder), tokenizer=tiny_encoder_dir, device="cpu")
    assert pipe.tokenizer is pipe.model.tokenizer and not isinstance(pipe.tokenizer, str)
    scores = pipe([(SOURCE, sentence) for sentence in SENTENCES])
    np.testing.assert_allclose(scores, model.predict([(SOURCE, s) for s in SENTENCES]), atol=1e-5)
    pipe.save_pretrained(tmp_path / "saved")  # was: AttributeError 'str' object has no attribute 'save_pretrained'
    again = pipeline("sentence-similarity", model=str(tmp_path / "saved"), device="cpu")
    np.testing.assert_allclose(again([(SOURCE, sentence) for sentence in SENTENCES]), scores, atol=1e-5)


def test_a_pipeline_save_that_fails_leaves_the_earlier_model(saved, tiny_encoder_dir, tmp_path, monkeypatch):
    """The pipeline saves as its model does, through a stage: no new config beside the earlier model's files."""
    pipe = pipeline("sentence-similarity", model=str(saved[1]), tokenizer=tiny_encoder_dir, device="cpu")
    pipe.save_pretrained(tmp_path / "saved")
    before = {path.name: path.read_bytes() for path in (tmp_path / "saved").iterdir()}
    pipe.model.config.score_max = 10.0

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(pipe.model.tokenizer), "save_pretrained", full_disk)
    with pytest.raises(OSError, match="No space left"):
        pipe.save_pretrained(tmp_path / "saved")
    assert {path.name: path.read_bytes() for path in (tmp_path / "saved").iterdir()} == before


@pytest.mark.parametrize("given", ["folder", "model object"])
def test_a_plain_encoder_is_refused_at_construction(tiny_encoder_dir, given):
    """Not on the first call (AttributeError 'BertModel' object has no attribute 'normalized_text')."""
    model = tiny_encoder_dir if given == "folder" else AutoModel.from_pretrained(tiny_encoder_dir)
    with pytest.raises(STSUserError) as error:
        pipeline("sentence-similarity", model=model, device="cpu")
    assert str(error.value) == (
        f"{tiny_encoder_dir} is a plain encoder, not a saved STS model: build one on it with "
        "STSSiameseModel.from_encoder (or STSRegressionModel or STSCrossAttentionModel)"
    )


def test_saved_folder_names_the_pipeline(saved):
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "sentence-similarity": {"impl": "pipeline.SentenceSimilarityPipeline", "pt": ["AutoModel"], "type": "text"}
    }
    assert (folder / "pipeline.py").exists() and (folder / "errors.py").exists()


def test_a_batch_size_of_zero_is_refused_not_replaced(pipe):
    with pytest.raises(STSUserError, match="batch_size must be a positive integer, got 0"):
        pipe([("A man plays.", "A dog runs.")], batch_size=0)


@pytest.mark.parametrize(
    "inputs, message",
    [
        ("A man is playing a guitar.", r"got one string 'A man is playing a guitar\.'"),
        ([], r"no sentence pairs to score"),
        ({}, r"input dict has no 'source_sentence' or 'sentences'"),
        ({"source": SOURCE, "sentences": SENTENCES}, r"has no 'source_sentence', unknown key\(s\) \['source'\]"),
        ({"source_sentence": SOURCE, "sentences": []}, r"sentences is empty"),
        ({"source_sentence": SOURCE, "sentences": "Someone plays."}, r"sentences must be a list of strings, got str"),
        ({"source_sentence": SOURCE, "sentences": ["ok", 3]}, r"sentences\[1\] must be a string, got 3"),
        ({"source_sentence": None, "sentences": SENTENCES}, r"source_sentence must be a string, got NoneType"),
        ({"source_sentence": " \t", "sentences": SENTENCES}, r"^source_sentence holds no text, only whitespace"),
        # text the tokenizer's normalizer drops (U+FFFD), named as the widget's keys, not as sentence_pairs[i]
        ({"source_sentence": "\ufffd", "sentences": SENTENCES}, r"^source_sentence holds a sentence the tokenizer "),
        (
            {"source_sentence": SOURCE, "sentences": ["ok", "\ufffd"]},
            r"^sentences\[1\] holds a sentence the tokenizer",
        ),
        ([("a", "b"), ("c",)], r"sentence_pairs\[1\] must be a pair of strings, got \('c',\)"),
        (42, r"sentence_pairs must be a list of \(sentence_1, sentence_2\) pairs, got int 42"),
    ],
)
def test_bad_input_raises_one_line(pipe, inputs, message):
    with pytest.raises(STSUserError, match=message) as error:
        pipe(inputs)
    assert "\n" not in str(error.value)


def test_config_loaded_with_the_package_leaves_its_own_pipeline_out(saved):
    """`pipeline()` would ask for trust_remote_code to run a task named in `custom_pipelines`: the package runs it."""
    model = sts_models.get_model_class(saved[0].config.arch).from_pretrained(saved[1])
    assert model.config.custom_pipelines == {}
    assert "sentence-similarity" in model.config.to_dict()["custom_pipelines"]  # and saves it again


SCRIPT = (
    WITHOUT_STS_MODELS
    + """from transformers import pipeline
pipe = pipeline("sentence-similarity", model=sys.argv[1], trust_remote_code=True, device="cpu")
inputs = json.loads(sys.argv[2])
try:
    pipe("one string")
except ValueError as error:
    refused = type(error).__name__ + ": " + str(error)
print(json.dumps({"pipeline": type(pipe).__module__ + "." + type(pipe).__name__,
                  "model": type(pipe.model).__module__ + "." + type(pipe.model).__name__,
                  "widget": pipe(inputs["widget"]), "pairs": pipe(inputs["pairs"]), "refused": refused}))
"""
)


def test_remote_code_pipeline_without_the_package(saved, stsb_pairs, tmp_path):
    model, folder = saved
    pairs = [[a, b] for a, b, _ in stsb_pairs[:4]]
    widget = {"source_sentence": SOURCE, "sentences": SENTENCES}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), json.dumps({"widget": widget, "pairs": pairs})],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["pipeline"].startswith("transformers_modules.")
    assert output["pipeline"].endswith(".pipeline.SentenceSimilarityPipeline")
    assert output["model"].startswith("transformers_modules.") and output["model"].endswith(type(model).__name__)
    np.testing.assert_allclose(output["widget"], model.predict([(SOURCE, s) for s in SENTENCES]), atol=1e-5)
    np.testing.assert_allclose(output["pairs"], model.predict(pairs), atol=1e-5)
    assert output["refused"].startswith("STSUserError: a sentence-similarity pipeline compares sentences")
