"""The model card written beside the weights, by `run_sts.py`, `save_pretrained` and `push_to_hub`."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import sts_models.modeling_base as modeling_base
from sts_models import STSSiameseModel

from .conftest import REPO_ROOT, STSB_DIR


def test_card_after_a_training_run(tiny_encoder_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("run_sts_card", REPO_ROOT / "run_sts.py")
    run_sts = importlib.util.module_from_spec(spec)
    sys.modules["run_sts_card"] = run_sts
    spec.loader.exec_module(run_sts)
    output_dir = tmp_path / "out"
    run_sts.main(
        ["--arch", "siamese", "--loss", "cosent", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
         "--max_train_samples", "16", "--max_eval_samples", "16", "--max_predict_samples", "16", "--num_train_epochs", "1",
         "--learning_rate", "1e-4", "--do_train", "--do_eval", "--do_predict", "--output_dir", str(output_dir)]
    )  # fmt: skip
    card = (output_dir / "README.md").read_text(encoding="utf-8")
    results = json.loads((output_dir / "all_results.json").read_text())
    assert card.startswith('---\nlibrary_name: "sts-models"')
    assert "| Architecture | Siamese bi-encoder (`STSSiameseModel`, arch `siamese`) |" in card
    assert f"| Base model | `{tiny_encoder_dir}` |" in card
    assert "| Loss | `cosent` |" in card
    assert f"- train: `{STSB_DIR}`, 16 examples (scored_pairs)" in card
    assert f"| eval_spearman | {results['eval_spearman']:.4f} |" in card  # the last evaluation: the final one
    assert f"| test_spearman | {results['test_spearman']:.4f} |" in card
    assert "| learning_rate | `0.0001` |" in card and "| num_train_epochs | `1.0` |" in card
    assert "| do_train | `True` |" in card and "report_to" not in card and "hub_token" not in card
    assert "model.encode(" in card and "model.predict(" in card


def test_save_pretrained_writes_a_card_for_every_arch(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert f"arch `{tiny_model.config.arch}`" in card
    assert "No evaluation recorded." in card
    assert "encode(" in card if tiny_model.config.arch == "siamese" else "encode(" not in card


def test_push_to_hub_uploads_our_card(tiny_encoder_dir, monkeypatch):
    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=None, exist_ok=False):
            return type("RepoUrl", (), {"repo_id": f"someone/{repo_id}"})()

        def upload_folder(self, repo_id, folder_path, **kwargs):
            uploaded["repo_id"] = repo_id
            uploaded["files"] = {
                p.name: p.read_text(encoding="utf-8")
                for p in Path(folder_path).iterdir()
                if p.suffix in (".md", ".json")
            }
            return "commit"

    monkeypatch.setattr(modeling_base, "HfApi", FakeApi)
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    assert model.push_to_hub("my-sts", tags=["demo"]) == "commit"
    assert uploaded["repo_id"] == "someone/my-sts"
    card = uploaded["files"]["README.md"]
    assert 'AutoModel.from_pretrained("someone/my-sts")' in card and '"demo"' in card
    assert "auto_map" in uploaded["files"]["config.json"]


@pytest.mark.parametrize("arch", ["bert", "cross"])
def test_card_names_the_pair_loss(arch, tiny_encoder_dir, tmp_path):
    from sts_models import get_model_class

    get_model_class(arch).from_encoder(tiny_encoder_dir).save_pretrained(tmp_path)
    assert "| Loss | `mse` (mean squared error on the 0-1 scale) |" in (tmp_path / "README.md").read_text()
