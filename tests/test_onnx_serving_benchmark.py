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


def test_two_models_of_one_arch_are_both_scored(tiny_encoder_dir, tmp_path):
    """The exports were named by arch: a second siamese model found the first one's export and stopped the run
    (the documented command scores the untrained and the trained siamese model)."""
    import json

    import sts_models

    onnx_serving = load_script(REPO_ROOT / "benchmarks" / "onnx_serving.py", "onnx_serving_benchmark")
    for name in ("first", "second"):
        sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir).save_pretrained(tmp_path / name)
    results = tmp_path / "onnx.json"
    onnx_serving.main(["--skip_speed", "--model", str(tmp_path / "first"), "--model", str(tmp_path / "second"),
                       "--results", str(results)])  # fmt: skip
    assert [entry["model"] for entry in json.loads(results.read_text())["quality"]] == [
        str(tmp_path / "first"), str(tmp_path / "second")
    ]  # fmt: skip
