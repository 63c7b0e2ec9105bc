"""A saved model loads with `trust_remote_code=True` where `import sts_models` fails."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import sts_models

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


@pytest.mark.parametrize("arch", list(sts_models.ARCHITECTURES))
def test_the_code_a_saved_model_carries_needs_only_what_transformers_needs(arch, tiny_encoder_dir, tmp_path):
    """transformers checks every file of a Hub repo's code for the packages it imports (a local folder: the model
    file only). The siamese code imported sentence-transformers (for its export), so a pushed siamese model loaded
    nowhere without it."""
    import importlib.metadata

    from transformers.dynamic_module_utils import get_imports

    folder = tmp_path / arch
    sts_models.get_model_class(arch).from_encoder(tiny_encoder_dir).save_pretrained(folder)
    imported = {name for path in folder.glob("*.py") for name in get_imports(str(path))} - set(sys.stdlib_module_names)
    requirements = importlib.metadata.requires("transformers") or []
    core = {
        re.split(r"[ <>=!;\[]", line)[0].replace("-", "_").lower() for line in requirements if "extra ==" not in line
    }
    assert imported <= core | {"transformers", "torch"}, imported - core
