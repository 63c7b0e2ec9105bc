"""Multi-process training and prediction on CPU (gloo): the same results as one process.

The worker (tests/distributed_worker.py) runs once alone and once as two processes under
`torch.distributed.run`; run_sts.py runs under two processes for prediction and resuming.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import pearsonr, spearmanr
from transformers import AutoModel

from sts_models.cli.output_dir import output_dir_locked

from .conftest import REPO_ROOT, STSB_DIR, assert_no_setup_warnings, read_stsb
from .distributed_worker import EVAL_CASES, GATHERED_LOSSES, STEP_CASES, step_case_name

SCRIPT = str(REPO_ROOT / "run_sts.py")
WORKER = str(REPO_ROOT / "tests" / "distributed_worker.py")
TEARDOWN_PROBE = str(REPO_ROOT / "tests" / "teardown_probe.py")


def launch(*args: str, processes: int = 2, status: int = 0) -> str:
    """Run a script in `processes` processes (torch.distributed.run, as `accelerate launch` does); what it printed,
    once its exit status is checked to be `status`."""
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)] if processes > 1 else []
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # CPU processes over gloo, also on a machine with a GPU
    result = subprocess.run([sys.executable, *launcher, *args], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == status, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def worlds(tiny_encoder_dir, tmp_path_factory):
    """The worker's outputs at world size 1 and 2."""
    folders = {}
    for processes in (1, 2):
        folders[processes] = tmp_path_factory.mktemp(f"world{processes}")
        launch(WORKER, tiny_encoder_dir, str(folders[processes]), processes=processes)
    return folders


@pytest.mark.parametrize("loss", list(GATHERED_LOSSES))
def test_gathered_in_batch_loss_equals_the_single_process_loss(worlds, loss):
    single = load_file(worlds[1] / "losses-0.safetensors")
    ranks = [load_file(worlds[2] / f"losses-{rank}.safetensors") for rank in (0, 1)]
    for rank in ranks:  # every process computes the loss of the whole global batch
        torch.testing.assert_close(rank[f"{loss}.loss"], single[f"{loss}.loss"], rtol=0, atol=1e-6)
    gradient = torch.cat([rank[f"{loss}.grad"] for rank in ranks])
    assert single[f"{loss}.grad"].abs().max() > 0
    torch.testing.assert_close(gradient, single[f"{loss}.grad"], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "case",
    [c for c in STEP_CASES if c[2]] + [c for c in STEP_CASES if c[1] in ("mse", "cosine_similarity")],
    ids=lambda c: step_case_name(*c),
)
def test_one_step_on_two_processes_equals_one_step_on_the_whole_batch(worlds, case):
    """World 2 x batch 8 leaves the weights of world 1 x batch 16: the loss is averaged right (DDP), the
    in-batch losses see the whole batch (gather_across_devices) and no parameter is left out."""
    name = f"step-{step_case_name(*case)}.safetensors"
    single, double = load_file(worlds[1] / name), load_file(worlds[2] / name)
    assert single.pop("__moved__").all() and double.pop("__moved__").all()  # every trainable tensor learned
    assert single.keys() == double.keys()
    for key in single:
        torch.testing.assert_close(double[key], single[key], rtol=0, atol=1e-6, msg=key)


def test_without_the_gather_an_in_batch_loss_sees_only_each_process_slice(worlds):
    name = f"step-{step_case_name('siamese', 'cosent', False)}.safetensors"
    single, double = load_file(worlds[1] / name), load_file(worlds[2] / name)
    assert max((single[key] - double[key]).abs().max().item() for key in single if key != "__moved__") > 1e-4


@pytest.mark.parametrize("arch, pairs", EVAL_CASES)
def test_eval_loss_on_two_processes_leaves_out_the_copies_that_fill_the_last_batch(worlds, arch, pairs):
    """Two processes evaluating 4 pairs each a step: accelerate fills the last step up with copies of the first pairs,
    which the metrics leave out (`gather_for_metrics`). So does `eval_loss`: one process's, the MSE loss of every
    pair once (the metrics' `eval_mse`)."""
    single, double = (load_file(worlds[world] / f"eval-{arch}-{pairs}.safetensors") for world in (1, 2))
    torch.testing.assert_close(single["loss"], single["mse"], rtol=0, atol=1e-6)
    for name in ("loss", "mse", "spearman"):
        torch.testing.assert_close(double[name], single[name], rtol=0, atol=1e-6, msg=name)


def run_args(tiny_encoder_dir, output_dir, *extra: str, script: str = SCRIPT) -> list[str]:
    return [
        script, "--arch", "cross", "--model_name_or_path", tiny_encoder_dir, "--dataset_name", str(STSB_DIR),
        "--per_device_train_batch_size", "8", "--output_dir", str(output_dir), *extra,
    ]  # fmt: skip


def test_two_processes_train_and_predict_every_pair_once(tiny_encoder_dir, tmp_path):
    """The stock Trainer's DDP path (as `accelerate launch`/`torchrun` on GPUs), with no --use_cpu: the
    data split across processes, one set of results, no pair dropped or repeated when 15 test pairs do
    not divide between 2 processes, and each process's DDP model freed before its process group is
    destroyed (tests/teardown_probe.py)."""
    output_dir = tmp_path / "out"
    output = launch(
        *run_args(tiny_encoder_dir, output_dir, "--max_train_samples", "32", "--max_eval_samples", "15",
                  "--max_predict_samples", "15", "--num_train_epochs", "1", "--do_train", "--do_eval", "--do_predict",
                  script=TEARDOWN_PROBE)
    )  # fmt: skip
    assert_no_setup_warnings(output)  # DDP's among them
    # the run's DDP model is freed before the process group goes, not left to interpreter exit (where gloo can abort)
    assert output.count("DDP models alive at teardown: 0") == 2, output[-3000:]
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 2  # 32 pairs / (2 processes x 8 per device)
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["test_samples"] == 15 and results["eval_samples"] == 15

    rows = [line.split("\t") for line in (output_dir / "predict_results.tsv").read_text().splitlines()[1:]]
    test = read_stsb("sts-test.csv", limit=15)
    assert [(a, b) for _, a, b, *_ in rows] == [(a, b) for a, b, _ in test]  # each pair once, in order
    written = [float(row[4]) for row in rows]
    alone = AutoModel.from_pretrained(output_dir).predict([(a, b) for a, b, _ in test])  # one process
    assert written == pytest.approx(list(alone), abs=1e-4)
    gold = [score for *_, score in test]
    assert results["test_spearman"] == pytest.approx(spearmanr(alone, gold)[0], abs=1e-4)
    assert results["test_pearson"] == pytest.approx(pearsonr(alone, gold)[0], abs=1e-4)


def test_two_processes_resume_from_a_checkpoint(tiny_encoder_dir, tmp_path):
    """Stopping after step 2 of 4 and resuming from checkpoint-2 ends with the weights of the run that
    went through."""
    common = ["--max_train_samples", "32", "--max_steps", "4", "--do_train", "--eval_strategy", "no",
              "--save_strategy", "steps", "--save_steps", "2", "--save_total_limit", "3",
              "--load_best_model_at_end", "false", "--learning_rate", "1e-3"]  # fmt: skip
    launch(*run_args(tiny_encoder_dir, tmp_path / "through", *common))
    launch(
        *run_args(tiny_encoder_dir, tmp_path / "resumed", *common,
                  "--resume_from_checkpoint", str(tmp_path / "through" / "checkpoint-2"))
    )  # fmt: skip
    through = load_file(tmp_path / "through" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    start = load_file(tmp_path / "through" / "checkpoint-2" / "model.safetensors")
    assert any(not torch.equal(start[key], through[key]) for key in through)  # steps 3-4 did train
    for key in through:
        torch.testing.assert_close(resumed[key], through[key], rtol=0, atol=1e-6, msg=key)


def test_a_locked_output_dir_stops_every_process_with_the_first_ones_line(tiny_encoder_dir, tmp_path):
    """Only the first process takes the folder's lock; its refusal reaches the others, which stopped at the next
    collective with a gloo "Connection closed by peer" traceback once it had gone. Both end with status 1; the line
    is printed once, by the first process (the second printed it again)."""
    output_dir = tmp_path / "out"
    with output_dir_locked(str(output_dir)):  # another run holds it
        output = launch(*run_args(tiny_encoder_dir, output_dir, "--max_train_samples", "16", "--do_train"), status=1)
    assert (
        output.count(f"run_sts.py: error: --output_dir {output_dir} is in use by another run (pid {os.getpid()}") == 1
    )
    assert "gloo" not in output and "[rank1]: Traceback" not in output, output[-3000:]


def test_accelerate_launches_with_the_project_config_without_listing_defaults(tmp_path):
    """`accelerate launch --config_file configs/accelerate_ddp.yaml --num_processes N` (docs/distributed.md)
    starts N processes without the list of defaults accelerate prints when given no config."""
    script = tmp_path / "rank.py"
    # one write of one line: print's separate writes of its parts interleave across processes when unbuffered
    script.write_text("import os\nos.write(1, f\"rank {os.environ['RANK']}\\n\".encode())\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HOME": str(tmp_path)}  # no `accelerate config` file here
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    config = ["--config_file", str(REPO_ROOT / "configs" / "accelerate_ddp.yaml")]
    outputs = []
    for flags in (["--multi_gpu"], config):
        result = subprocess.run(
            [*launcher, *flags, "--num_processes", "2", str(script)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert sorted(line for line in result.stdout.splitlines() if line.startswith("rank")) == ["rank 0", "rank 1"]
        outputs.append(result.stderr)
    without, with_config = outputs
    assert "were not passed to `accelerate launch`" in without
    assert "were not passed to `accelerate launch`" not in with_config
