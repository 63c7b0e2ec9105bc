"""Evaluation metrics for the Trainer: Pearson, Spearman and MSE, computed with scipy (no hub)."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from transformers import EvalPrediction

# what `compute_metrics` reports (the Trainer prefixes them with `eval_`), e.g. for `--metric_for_best_model`
METRIC_NAMES = ("pearson", "spearman", "mse")


def correlation_metrics(predictions, references) -> dict[str, float]:
    """Pearson and Spearman correlation and mean squared error of two score arrays."""
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    references = np.asarray(references, dtype=np.float64).reshape(-1)
    values = (
        pearsonr(predictions, references)[0],
        spearmanr(predictions, references)[0],
        np.mean((predictions - references) ** 2),
    )
    return {name: float(value) for name, value in zip(METRIC_NAMES, values)}


def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
    """`compute_metrics` for `transformers.Trainer`: the logits are the scores (0-1 scale)."""
    predictions = eval_prediction.predictions
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return correlation_metrics(predictions, eval_prediction.label_ids)
