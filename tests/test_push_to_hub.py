"""Pushing to the Hub, offline: `model.push_to_hub` and `run_sts.py --push_to_hub` upload this package's card, and a
Hub out of reach (offline mode, no connection) is one line naming the repo, not a traceback."""

from __future__ import annotations

import json
import socket
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest
import transformers.utils.hub
from huggingface_hub import HfApi, ModelCard, constants

from sts_models import STSSiameseModel
from sts_models.errors import HubPushError, STSUserError
from sts_models.model_card_data import CARD_DATA_NAME

from .conftest import STSB_DIR


@pytest.fixture
def uploads(monkeypatch) -> list[dict[str, str]]:
    """Every `HfApi.upload_folder` call (the model's and the Trainer's), as the text of the README.md, config.json
    and *_results.json files it would upload; `create_repo` answers under the namespace `someone`."""
    calls = []

    def create_repo(self, repo_id, **kwargs):
        return SimpleNamespace(repo_id=repo_id if "/" in repo_id else f"someone/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, run_as_future=False, **kwargs):
        files = {
            p.name: p.read_text(encoding="utf-8") for p in Path(folder_path).iterdir() if p.suffix in (".md", ".json")
        }
        calls.append(
            {"repo_id": repo_id, **kwargs, **files, "files": sorted(p.name for p in Path(folder_path).iterdir())}
        )
        if not run_as_future:
            return "commit"
        future = Future()  # the Trainer pushes checkpoints in the background
        future.set_result("commit")
        return future

    def create_branch(self, *, repo_id, branch, exist_ok=False, **kwargs):
        calls.append({"repo_id": repo_id, "branch": branch, "exist_ok": exist_ok})

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "list_repo_files", lambda self, repo_id, **kwargs: [".gitattributes"])  # a new repo
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    return calls


@pytest.fixture
def hub_unreachable(monkeypatch):
    """Online mode, but the Hub endpoint is a local port nobody listens on: every request fails to connect."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)  # the Trainer's HfApi, made again on that endpoint


def train_and_push_args(tiny_encoder_dir, output_dir, *extra) -> list[str]:
    return [
        "--arch", "siamese", "--loss", "cosent", "--model_name_or_path", tiny_encoder_dir,
        "--dataset_name", str(STSB_DIR), "--max_train_samples", "16", "--max_eval_samples", "16",
        "--max_predict_samples", "16", "--num_train_epochs", "1", "--do_train", "--do_eval", "--do_predict",
        "--push_to_hub", "--hub_model_id", "someone/tiny-sts", "--output_dir", str(output_dir), *extra,
    ]  # fmt: skip


def test_model_push_to_hub_uploads_our_card(tiny_encoder_dir, uploads):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    assert model.push_to_hub("my-sts", tags=["demo"]) == "commit"
    [upload] = uploads
    assert upload["repo_id"] == "someone/my-sts"
    card = ModelCard(upload["README.md"])
    assert card.data.library_name == "transformers" and "demo" in card.data.tags
    assert 'AutoModel.from_pretrained("someone/my-sts")' in card.text
    assert "auto_map" in upload["config.json"]


def test_a_loaded_model_pushes_to_a_new_branch_with_a_description(tiny_encoder_dir, tmp_path, uploads):
    """As `PreTrainedModel.push_to_hub`: the branch `revision` is made first, `commit_description` goes along; a model
    loaded from disk uploads its tokenizer though it never read it."""
    STSSiameseModel.from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / "saved")
    model = STSSiameseModel.from_pretrained(tmp_path / "saved")
    model.push_to_hub("my-sts", revision="dev", commit_description="the first model")
    branch, upload = uploads
    assert branch == {"repo_id": "someone/my-sts", "branch": "dev", "exist_ok": True}
    assert upload["revision"] == "dev" and upload["commit_description"] == "the first model"
    assert "tokenizer.json" in upload["files"]


def test_save_pretrained_pushes_the_folder_once_it_is_whole(tiny_encoder_dir, tmp_path, uploads):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    model.save_pretrained(tmp_path / "my-sts", push_to_hub=True, commit_message="first")
    [upload] = uploads
    assert upload["repo_id"] == "someone/my-sts" and upload["commit_message"] == "first"
    assert {"tokenizer.json", "README.md", "model.safetensors"} <= set(upload["files"])
    assert 'AutoModel.from_pretrained("someone/my-sts")' in ModelCard(upload["README.md"]).text  # our card


def test_run_sts_push_to_hub_uploads_our_card(run_sts_module, tiny_encoder_dir, tmp_path, uploads):
    output_dir = tmp_path / "out"
    run_sts_module.main(train_and_push_args(tiny_encoder_dir, output_dir))
    cards = [ModelCard(upload["README.md"]) for upload in uploads if "README.md" in upload]
    assert {upload["repo_id"] for upload in uploads} == {"someone/tiny-sts"}
    assert uploads[-1]["commit_message"] == "End of training" and len(cards) >= 2  # also "Model save" after training
    # every card that went up is ours, never the Trainer's generic one
    assert all(
        card.data.library_name == "transformers" and "generated_from_trainer" not in card.text for card in cards
    )
    final = cards[-1]
    assert 'AutoModel.from_pretrained("someone/tiny-sts")' in final.text and final.data.model_name == "tiny-sts"
    assert {(r.dataset_split, r.metric_type) for r in final.data.eval_results} == {
        (split, metric) for split in ("validation", "test") for metric in ("pearsonr", "spearmanr")
    }
    assert "test_spearman" in uploads[-1]["all_results.json"]
    assert (output_dir / "README.md").read_text(encoding="utf-8") == uploads[-1]["README.md"]


def test_checkpoint_pushes_carry_the_model_code_and_our_card(run_sts_module, tiny_encoder_dir, tmp_path, uploads):
    """A repo pushed at a checkpoint loads with `trust_remote_code=True`: the code its config names goes up too."""
    output_dir = tmp_path / "out"
    run_sts_module.main(train_and_push_args(tiny_encoder_dir, output_dir, "--save_strategy", "epoch"))
    [checkpoint_push] = [upload for upload in uploads if upload["commit_message"].startswith("Training in progress")]
    assert {"configuration.py", "modeling_siamese.py", "README.md", "config.json"} <= set(checkpoint_push["files"])
    assert ModelCard(checkpoint_push["README.md"]).data.library_name == "transformers"  # ours


def assert_one_line_naming_the_repo(message: str, repo_id: str, reason: str) -> None:
    assert "\n" not in message
    assert f"cannot push to the Hub repo {repo_id}: " in message and reason in message
    assert "check the network connection and your token" in message.lower()


@pytest.mark.parametrize("hub", ["offline mode", "no connection"])
def test_model_push_to_hub_without_the_hub_is_one_line(hub, tiny_encoder_dir, monkeypatch, request):
    if hub == "offline mode":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    else:
        request.getfixturevalue("hub_unreachable")
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    with pytest.raises(HubPushError) as error:
        model.push_to_hub("someone/my-sts")
    reason = "offline mode is on (HF_HUB_OFFLINE=1)" if hub == "offline mode" else "ConnectError: "
    assert_one_line_naming_the_repo(str(error.value), "someone/my-sts", reason)
    assert isinstance(error.value, ConnectionError)


@pytest.mark.parametrize("hub", ["offline mode", "no connection"])
def test_run_sts_push_to_hub_without_the_hub_is_one_line(hub, run_sts_module, tiny_encoder_dir, tmp_path, capsys,
                                                         monkeypatch, request):  # fmt: skip
    if hub == "offline mode":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    else:
        request.getfixturevalue("hub_unreachable")
    output_dir = tmp_path / "out"
    assert run_sts_module.cli(train_and_push_args(tiny_encoder_dir, output_dir)) == 1
    stderr = capsys.readouterr().err
    line = stderr.strip().splitlines()[-1]
    assert "Traceback" not in stderr and line.startswith("run_sts.py: error: ")
    reason = "offline mode is on (HF_HUB_OFFLINE=1)" if hub == "offline mode" else "ConnectError: "
    assert_one_line_naming_the_repo(line, "someone/tiny-sts", reason)
    assert not output_dir.exists() or not any(output_dir.iterdir())  # refused before anything was written


def test_a_push_to_an_invalid_repo_id_is_one_line(tiny_encoder_dir, uploads):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    with pytest.raises(HubPushError, match=r"cannot push to the Hub repo 'my model': it is no valid repo id \("):
        model.push_to_hub("my model")
    assert uploads == []


def test_a_model_without_its_tokenizer_is_not_pushed(tiny_encoder_dir, tmp_path, uploads):
    STSSiameseModel.from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / "saved")
    for name in Path(tmp_path / "saved").glob("tokenizer*"):
        name.unlink()
    model = STSSiameseModel.from_pretrained(tmp_path / "saved")
    with pytest.raises(STSUserError, match="^not pushed to my-sts: the model has no tokenizer"):
        model.push_to_hub("my-sts")
    with pytest.raises(STSUserError, match="^not pushed to my-sts"):
        model.save_pretrained(tmp_path / "my-sts", push_to_hub=True)
    assert uploads == []


def test_a_push_over_weights_of_another_layout_deletes_them_in_the_same_commit(tiny_encoder_dir, uploads, monkeypatch):
    """Sharded weights pushed to a repo that holds a whole model.safetensors left it there, and loading the repo read
    it first: the earlier model came back. Weights of another variant stay."""
    held = [".gitattributes", "README.md", "config.json", "model.safetensors", "model.fp16.safetensors", "notes.txt"]
    monkeypatch.setattr(HfApi, "list_repo_files", lambda self, repo_id, **kwargs: held)
    STSSiameseModel.from_encoder(tiny_encoder_dir).push_to_hub("someone/sharded", max_shard_size="20KB")
    [upload] = uploads
    assert any("-of-" in name for name in upload["files"])
    assert upload["delete_patterns"] == ["model.safetensors"]


def test_trainer_pushes_over_weights_of_another_layout_delete_them_in_the_same_commit(
    run_sts_module, tiny_encoder_dir, tmp_path, uploads, monkeypatch
):
    """`run_sts.py --push_to_hub` into a repo holding sharded weights: each push of the whole model.safetensors (at
    the checkpoint and at the end) deletes the shards and their index in its commit; loading the repo read them."""
    held = [".gitattributes", "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "model.safetensors.index.json", "model.fp16.safetensors", "last-checkpoint/model.safetensors"]  # fmt: skip
    tokens = []
    monkeypatch.setattr(
        HfApi, "list_repo_files", lambda self, repo_id, **kwargs: tokens.append(kwargs["token"]) or held
    )
    output_dir = tmp_path / "out"
    flags = ("--save_strategy", "epoch", "--hub_token", "hf_secret")  # a private repo, without a login
    run_sts_module.main(train_and_push_args(tiny_encoder_dir, output_dir, *flags))
    assert tokens and set(tokens) == {"hf_secret"}
    pushes = [upload for upload in uploads if "model.safetensors" in upload.get("files", [])]
    assert {upload["commit_message"].split(",")[0] for upload in pushes} >= {"Training in progress", "End of training"}
    for upload in pushes:
        stale = [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
        ]
        assert upload["delete_patterns"] == stale


def test_a_trainer_push_whose_listing_fails_still_uploads(run_sts_module, tiny_encoder_dir, tmp_path, uploads,
                                                           monkeypatch, caplog):  # fmt: skip
    """The listing of the repo's files is asked before each push, also the checkpoints' background ones: a Hub that
    does not answer it does not end training; the push goes up without deleting, with a warning."""

    def list_repo_files(self, repo_id, **kwargs):
        raise ConnectionError("the Hub did not answer")

    monkeypatch.setattr(HfApi, "list_repo_files", list_repo_files)
    run_sts_module.main(train_and_push_args(tiny_encoder_dir, tmp_path / "out", "--save_strategy", "epoch"))
    pushes = [upload for upload in uploads if "files" in upload]
    assert pushes and all(upload["delete_patterns"] is None for upload in pushes)
    assert "Could not list someone/tiny-sts's files to delete stale weights" in caplog.text


def test_a_push_after_evaluating_only_keeps_the_training_data_on_the_card(
    run_sts_module, tiny_encoder_dir, tmp_path, uploads
):
    """Evaluating a trained model on other dev data, then pushing: the card gave that dev data alone as the model's
    data, beside the test correlations of the first run (measured on data it no longer named)."""
    trained = tmp_path / "trained"
    run_sts_module.main(["--arch", "siamese", "--model_name_or_path", tiny_encoder_dir, "--dataset_name",
                         str(STSB_DIR), "--max_train_samples", "8", "--max_eval_samples", "8", "--max_predict_samples",
                         "8", "--max_steps", "1", "--do_train", "--do_eval", "--do_predict", "--output_dir",
                         str(trained)])  # fmt: skip
    other_dev = tmp_path / "other-dev.jsonl"
    other_dev.write_text("".join(json.dumps({"sentence1": f"a man plays {i}", "sentence2": f"a man sings {i}",
                                             "score": float(i % 5)}) + "\n" for i in range(10)))  # fmt: skip
    run_sts_module.main(["--model_name_or_path", str(trained), "--validation_file", str(other_dev), "--do_eval",
                         "--push_to_hub", "--hub_model_id", "someone/b", "--output_dir", str(tmp_path / "b")])  # fmt: skip
    before = json.loads((trained / CARD_DATA_NAME).read_text())
    after = json.loads(uploads[-1][CARD_DATA_NAME])
    splits = {entry["split"]: entry for entry in after["datasets"]}
    assert set(splits) == {"train", "validation", "test"}
    assert [splits[split] for split in ("train", "test")] == [
        next(entry for entry in before["datasets"] if entry["split"] == split) for split in ("train", "test")
    ]
    assert splits["validation"]["source"] == str(other_dev) and splits["validation"]["size"] == 10
    assert after["eval_metrics"]["test_spearman"] == before["eval_metrics"]["test_spearman"]  # of the data named
    evaluation = json.loads((tmp_path / "b" / "all_results.json").read_text())
    assert after["eval_metrics"]["eval_loss"] == pytest.approx(evaluation["eval_loss"])  # this run's


@pytest.fixture
def failing_upload(uploads, monkeypatch):
    """The repo is made, but the upload fails (e.g. a token that may not write)."""
    from huggingface_hub.errors import HfHubHTTPError

    def upload_folder(self, *, repo_id, **kwargs):
        raise HfHubHTTPError.__bases__[0](
            "403 Forbidden: no write access"
        )  # the HTTP client's error, as hub_push_errors

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)


def assert_names_no_repo(folder: Path, repo_id: str) -> None:
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert repo_id not in card and repo_id.split("/")[-1] not in card, card
    assert repo_id not in (folder / "sts_model_card.json").read_text(encoding="utf-8")


def test_a_failed_push_leaves_no_card_naming_the_repo(tiny_encoder_dir, tmp_path, failing_upload):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    with pytest.raises(HubPushError, match="^cannot push to the Hub repo someone/my-sts: .*403 Forbidden"):
        model.push_to_hub("my-sts", tags=["demo"])
    assert model.model_card_data.model_id is None and "demo" not in model.model_card_data.tags
    model.save_pretrained(tmp_path / "saved")
    assert_names_no_repo(tmp_path / "saved", "someone/my-sts")
    with pytest.raises(HubPushError, match="^cannot push to the Hub repo someone/my-sts: "):
        model.save_pretrained(tmp_path / "my-sts", push_to_hub=True)
    assert_names_no_repo(tmp_path / "my-sts", "someone/my-sts")


def test_a_failed_trainer_push_leaves_no_card_naming_the_repo(tiny_encoder_dir, tmp_path, failing_upload):
    from sts_models.trainer import STSTrainer
    from sts_models.training_args import STSTrainingArguments

    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    args = STSTrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", push_to_hub=True,
                                hub_model_id="someone/tiny-sts")  # fmt: skip
    args.disable_evaluation()
    trainer = STSTrainer(model=model, args=args)
    with pytest.raises(HubPushError, match="^cannot push to the Hub repo someone/tiny-sts: .*403 Forbidden"):
        trainer.push_to_hub()
    assert_names_no_repo(tmp_path / "out", "someone/tiny-sts")
