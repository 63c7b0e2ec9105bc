"""benchmarks/onnx_serving.py's arguments: the quality split is validation or test, anything else refused."""

from __future__ import annotations

import pytest

from .conftest import REPO_ROOT, load_script

pytest.importorskip("onnxruntime")


def test_an_unknown_split_is_refused_in_one_line(tmp_path, capsys):
    onnx_serving = load_script(REPO_ROOT / "benchmarks" / "onnx_serving.py", "onnx_serving_benchmark")
    results = tmp_path / "onnx.json"
    with pytest.raises(SystemExit) as stop:
        onnx_serving.main(["--skip_speed", "--split", "dev", "--results", str(results)])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--split: invalid choice: 'dev'" in error and "validation" in error and "test" in error
    assert not results.exists()
