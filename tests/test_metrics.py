from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from transformers import EvalPrediction

from sts_models import compute_metrics
from sts_models.errors import STSUserError
from sts_models.metrics import correlation_metrics


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


def test_a_column_of_scores_is_read_as_scores():
    metrics = correlation_metrics([[0.1], [0.5], [0.9]], [0.0, 0.4, 1.0])
    assert metrics["spearman"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "predictions, references, message",
    [
        # scipy said nothing of the lengths (NaNs and an MSE broadcast over 3 values, or its own ValueError)
        ([0.5], [0, 1, 2], r"^predictions \(1\) and references \(3\) differ in length$"),
        ([0.1, 0.2], [0, 1, 2], r"^predictions \(2\) and references \(3\) differ in length$"),
        # 2 pairs of 2 logits were flattened into 4 scores and correlated with 4 references
        ([[0.1, 0.9], [0.2, 0.3]], [0, 1, 2, 3], r"^predictions have 2 values per pair \(shape \(2, 2\)\)"),
        (np.zeros((3, 1, 2)), [0, 1, 2], r"^predictions have shape \(3, 1, 2\)"),
        ([0.1, 0.2, 0.3], [[0, 1], [1, 0], [2, 2]], r"^references have 2 values per pair"),
    ],
)
def test_scores_of_another_shape_are_refused(predictions, references, message):
    with pytest.raises(STSUserError, match=message):
        correlation_metrics(predictions, references)
    with pytest.raises(STSUserError, match=message):
        compute_metrics(EvalPrediction(predictions=np.asarray(predictions), label_ids=np.asarray(references)))
