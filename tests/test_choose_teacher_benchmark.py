"""benchmarks/choose_teacher.py: models on different score ranges are refused in one line (averages of their
scores mean nothing, and run_sts.py refuses them as teachers together)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sts_models

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "choose_teacher.py"


def test_models_on_different_score_ranges_are_refused(tiny_encoder_dir, tmp_path):
    model = sts_models.STSSiameseModel.from_encoder(tiny_encoder_dir)
    model.save_pretrained(tmp_path / "five")
    model.config.score_max = 1.0
    model.save_pretrained(tmp_path / "one")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "five"), str(tmp_path / "one"), "--results", str(tmp_path / "r")],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and not (tmp_path / "r").exists()
    last = result.stderr.strip().splitlines()[-1]
    assert f"the models score on different ranges ({tmp_path / 'five'} 0-5, {tmp_path / 'one'} 0-1)" in last
