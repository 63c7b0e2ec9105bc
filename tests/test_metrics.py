from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from transformers import EvalPrediction

from sts_models import compute_metrics


def test_matches_scipy():
    rng = np.random.default_rng(0)
    labels = rng.random(50)
    predictions = labels + 0.3 * rng.standard_normal(50)
    metrics = compute_metrics(EvalPrediction(predictions=predictions.astype(np.float32), label_ids=labels))
    assert metrics["pearson"] == pytest.approx(pearsonr(predictions, labels)[0], abs=1e-6)
    assert metrics["spearman"] == pytest.approx(spearmanr(predictions, labels)[0], abs=1e-6)
    assert metrics["mse"] == pytest.approx(np.mean((predictions - labels) ** 2), abs=1e-6)


def test_uses_logits_when_the_model_returns_more():
    labels = np.array([0.1, 0.5, 0.9])
    metrics = compute_metrics(
        EvalPrediction(predictions=(np.array([0.9, 0.5, 0.1]), np.zeros((3, 4))), label_ids=labels)
    )
    assert metrics["spearman"] == pytest.approx(-1.0)
