"""A saved model loads with `trust_remote_code=True` where `import sts_models` fails."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from .conftest import WITHOUT_STS_MODELS

SCRIPT = (
    WITHOUT_STS_MODELS
    + """from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
pairs = json.loads(sys.argv[2])
print(json.dumps({"class": type(model).__module__ + "." + type(model).__name__,
                  "scores": model.predict(pairs).tolist()}))
"""
)


def test_loads_without_the_package(tiny_model, stsb_pairs, tmp_path):
    pairs = [[a, b] for a, b, _ in stsb_pairs[:4]]
    expected = tiny_model.predict(pairs)
    folder = tmp_path / "model"
    tiny_model.save_pretrained(folder)
    assert (folder / "modeling_base.py").exists() and (folder / "configuration.py").exists()
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), json.dumps(pairs)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["class"].startswith("transformers_modules.")
    assert output["class"].endswith(type(tiny_model).__name__)
    np.testing.assert_allclose(output["scores"], expected, atol=1e-6)
