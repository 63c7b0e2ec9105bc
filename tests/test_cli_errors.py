"""How the commands end on an error or a signal, beyond the one line of each error (the bad-input tables).

Ctrl-C while a command still imports torch and transformers (or its own modules) ends it as Ctrl-C ends it later:
one line on stderr, `PROG: stopped by SIGINT`, and exit status 130, never a traceback; a program that imports
sts_models as a library keeps its KeyboardInterrupt. The interrupt is raised where the named module is imported, by
an import hook that `sitecustomize` installs in the child process: the same exception, in the same frame, as SIGINT
arriving while Python imports that module.

In a multi-process run (RANK, LOCAL_RANK and WORLD_SIZE set by the launcher), the line every process would print
alike is printed by the first process of each machine only. An error that names an argument of the Python API names
the command's flag where a command prints it."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import accelerate.state
import pytest

# imported here, not in a test: `datasets` (which it imports) sends its log to the stderr of the moment, a test's
# capsys stream would be closed for the tests after it
from sts_models.data import read_sentence_pairs
from sts_models.errors import STSUserError, Terminated, run_cli

from .conftest import REPO_ROOT

STOP_AT_IMPORT = """
import os, sys

class StopAt:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["STOP_AT_IMPORT"]:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, StopAt())
"""
# the script pip writes for a console entry point (`[project.scripts] sts-models = "sts_models.cli:main"`)
CONSOLE_SCRIPT = """import re
import sys
from sts_models.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def interrupted(tmp_path, stop_at: str, *argv: str, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(STOP_AT_IMPORT)
    path = os.pathsep.join([str(tmp_path), str(REPO_ROOT)])
    env = {**os.environ, "STOP_AT_IMPORT": stop_at, "PYTHONPATH": path, **env}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


@pytest.mark.parametrize(
    "stop_at, argv, prog",
    [
        ("torch", ["{console}", "train", "--help"], "sts-models train"),
        ("transformers", ["-m", "sts_models.cli", "predict", "--help"], "sts-models predict"),
        ("sts_models.cli.train", ["{console}", "train", "--help"], "sts-models train"),
        ("torch", ["{repo}/run_sts.py", "--help"], "run_sts.py"),
        ("transformers", ["{repo}/predict.py", "--help"], "predict.py"),
        ("sts_models.cli.train", ["{repo}/run_sts.py", "--help"], "run_sts.py"),
        ("sts_models.cli.export", ["{repo}/export_onnx.py", "--help"], "export_onnx.py"),
        ("torch", ["{link}/run_sts.py", "--help"], "run_sts.py"),  # the repository through a symlink
        ("torch", ["-msts_models.cli", "train", "--help"], "sts-models train"),
        ("torch", ["-X", "utf8", "-m", "sts_models.cli", "train", "--help"], "sts-models train"),
    ],
)
def test_ctrl_c_while_a_command_imports_ends_it_in_one_line(tmp_path, stop_at, argv, prog):
    console = tmp_path / "bin" / "sts-models"
    console.parent.mkdir()
    console.write_text(CONSOLE_SCRIPT)
    (tmp_path / "repo-link").symlink_to(REPO_ROOT, target_is_directory=True)
    argv = [arg.format(console=console, repo=REPO_ROOT, link=tmp_path / "repo-link") for arg in argv]
    result = interrupted(tmp_path, stop_at, *argv)
    assert result.stderr == f"{prog}: stopped by SIGINT\n", result.stderr[-3000:]
    assert result.returncode == 130


def test_ctrl_c_while_a_library_user_imports_is_its_own(tmp_path):
    result = interrupted(tmp_path, "transformers", "-c", "import sts_models")
    assert "KeyboardInterrupt" in result.stderr and result.returncode != 130, result.stderr[-3000:]


def test_ctrl_c_while_importing_under_a_launcher_is_told_by_the_first_process(tmp_path):
    """Every process of `accelerate launch` gets the SIGINT: the others end with the same status, silently."""
    run_sts = str(REPO_ROOT / "run_sts.py")
    other = interrupted(tmp_path, "torch", run_sts, RANK="1", LOCAL_RANK="1", WORLD_SIZE="2")
    assert (other.stderr, other.returncode) == ("", 130)
    first = interrupted(tmp_path, "torch", run_sts, RANK="0", LOCAL_RANK="0", WORLD_SIZE="2")
    assert (first.stderr, first.returncode) == ("run_sts.py: stopped by SIGINT\n", 130)


def failing(exception: BaseException):
    def main(argv):
        raise exception

    return main


@pytest.mark.parametrize(
    "exception, status, line",
    [
        (
            STSUserError("--train_file x.csv: data file not found"),
            1,
            "run_sts.py: error: --train_file x.csv: data file not found",
        ),
        (
            ImportError("--deepspeed needs deepspeed: pip install 'sts-models[deepspeed]'"),
            1,
            "run_sts.py: error: --deepspeed needs deepspeed: pip install 'sts-models[deepspeed]'",
        ),
        (KeyboardInterrupt(), 130, "run_sts.py: stopped by SIGINT"),
        (Terminated(), 143, "run_sts.py: stopped by SIGTERM"),
        (OSError(28, "No space left on device"), 1, "run_sts.py: error: [Errno 28] No space left on device"),
    ],
    ids=["bad-input", "missing-extra", "sigint", "sigterm", "disk-full"],
)
@pytest.mark.parametrize(
    "rank, local_rank",
    [(None, None), ("0", "0"), ("1", "1"), ("3", "1"), ("2", "0")],
    ids=["alone", "first", "second", "second-of-machine-2", "first-of-machine-2"],
)
def test_an_error_every_process_shares_is_printed_once_a_machine(
    monkeypatch, capsys, exception, status, line, rank, local_rank
):
    """Bad input, a missing extra and the signals are the same on every process: told by the first process of each
    machine. An OSError can be a process's own (its disk): each prints it, the others naming their rank."""
    monkeypatch.delitem(sys.modules, "accelerate.state", raising=False)  # as before accelerate sets up its state
    for name, value in (("RANK", rank), ("LOCAL_RANK", local_rank), ("WORLD_SIZE", rank and "4")):
        monkeypatch.setenv(name, value) if value is not None else monkeypatch.delenv(name, raising=False)
    assert run_cli("run_sts.py", failing(exception), []) == status
    first_of_machine = local_rank in (None, "0")
    if first_of_machine:
        expected = f"{line}\n"
    elif isinstance(exception, OSError):
        expected = f"[rank {rank}] {line}\n"
    else:
        expected = ""
    assert capsys.readouterr().err == expected


def test_accelerates_state_names_the_first_process_once_it_is_set_up(monkeypatch, capsys):
    """Set up (an MPI launch sets no LOCAL_RANK), accelerate's state says which process is the first."""
    # accelerate's, as set up on the sixth process, the second of its machine (PartialState shares this dict)
    shared = {"distributed_type": "MULTI_CPU", "process_index": 5, "local_process_index": 1, "num_processes": 8}
    monkeypatch.setattr(accelerate.state.PartialState, "_shared_state", shared)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert run_cli("run_sts.py", failing(STSUserError("bad")), []) == 1
    assert run_cli("run_sts.py", failing(OSError("disk")), []) == 1
    assert capsys.readouterr().err == "[rank 5] run_sts.py: error: disk\n"


def test_a_setup_of_accelerates_state_cut_short_leaves_the_launchers_ranks(monkeypatch, capsys):
    """Ctrl-C while a process waits for the others to join (or an error in the setup) leaves accelerate's state
    without the ranks: the launcher's are read, and the line is the one of Ctrl-C, not an AttributeError."""
    monkeypatch.setattr(accelerate.state.PartialState, "_shared_state", {"_cpu": True, "backend": "gloo"})
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert run_cli("run_sts.py", failing(KeyboardInterrupt()), []) == 130
    assert capsys.readouterr().err == "run_sts.py: stopped by SIGINT\n"


def test_a_score_outside_the_range_names_the_argument_or_the_flags(tmp_path, capsys):
    """The Python API names its argument `score_range`; the commands name their flags --score_min/--score_max."""
    path = tmp_path / "train.jsonl"
    path.write_text('{"sentence1": "A dog runs.", "sentence2": "A dog is running.", "score": 4.6}\n')
    with pytest.raises(STSUserError) as raised:
        list(read_sentence_pairs(str(path), score_range=(0.0, 4.0)))  # row by row (load_sts_dataset: the API table)
    assert str(raised.value).endswith("(gold scores on another scale: score_range=(min, max))")
    assert "--score" not in str(raised.value)
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)
    assert run_cli("run_sts.py", failing(raised.value), []) == 1
    assert capsys.readouterr().err == (
        f"run_sts.py: error: {path}, line 1: score 4.6 is outside the score range [0.0, 4.0] (gold scores on another "
        "scale: --score_min/--score_max)\n"
    )
