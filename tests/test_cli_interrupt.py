"""Ctrl-C while a command still imports torch and transformers (or its own modules) ends it as Ctrl-C ends it later:
one line on stderr, `PROG: stopped by SIGINT`, and exit status 130, never a traceback. A program that imports
sts_models as a library keeps its KeyboardInterrupt.

The interrupt is raised where the named module is imported, by an import hook that `sitecustomize` installs in the
child process: the same exception, in the same frame, as SIGINT arriving while Python imports that module."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


def interrupted(tmp_path, stop_at: str, *argv: str) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(STOP_AT_IMPORT)
    env = {**os.environ, "STOP_AT_IMPORT": stop_at, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
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
    ],
)
def test_ctrl_c_while_a_command_imports_ends_it_in_one_line(tmp_path, stop_at, argv, prog):
    console = tmp_path / "bin" / "sts-models"
    console.parent.mkdir()
    console.write_text(CONSOLE_SCRIPT)
    argv = [arg.format(console=console, repo=REPO_ROOT) for arg in argv]
    result = interrupted(tmp_path, stop_at, *argv)
    assert result.stderr == f"{prog}: stopped by SIGINT\n", result.stderr[-3000:]
    assert result.returncode == 130


def test_ctrl_c_while_a_library_user_imports_is_its_own(tmp_path):
    result = interrupted(tmp_path, "transformers", "-c", "import sts_models")
    assert "KeyboardInterrupt" in result.stderr and result.returncode != 130, result.stderr[-3000:]
