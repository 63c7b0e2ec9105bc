"""Evaluation metrics for the Trainer: Pearson, Spearman and MSE, computed with scipy (no hub)."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from transformers import EvalPrediction

from .errors import STSUserError

# what `compute_metrics` reports (the Trainer prefixes them with `eval_`), e.g. for `--metric_for_best_model`
METRIC_NAMES = ("pearson", "spearman", "mse")


def correlation_metrics(predictions, references) -> dict[str, float]:
    """Pearson and Spearman correlation and mean squared error of two score arrays (the commands report them on the
    0-1 scale the models train on). Fewer than two pairs, or gold scores all equal, allow no correlation: refused
    in one line (`STSUserError`) rather than reported as NaN. Predictions all equal (a collapsed model) give NaN
    correlations."""
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    references = np.asarray(references, dtype=np.float64).reshape(-1)
    if len(references) < 2:
        raise STSUserError(f"a correlation needs at least 2 scored pairs, got {len(references)}")
    if np.all(references == references[0]):
        raise STSUserError(f"the {len(references)} gold scores are all {references[0]:g}: no correlation to measure")
    if np.all(predictions == predictions[0]):  # a model that scores every pair alike: no correlation, as scipy
        correlations = (float("nan"), float("nan"))  # says, without its warnings (a training run goes on)
    else:
        correlations = (pearsonr(predictions, references)[0], spearmanr(predictions, references)[0])
    values = (*correlations, np.mean((predictions - references) ** 2))
    return {name: float(value) for name, value in zip(METRIC_NAMES, values)}


def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
    """`compute_metrics` for `transformers.Trainer`: the predictions are the models' `scores` (0-1 scale)."""
    predictions = eval_prediction.predictions
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return correlation_metrics(predictions, eval_prediction.label_ids)
