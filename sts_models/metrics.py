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
    predictions, references = _scores(predictions, "predictions"), _scores(references, "references")
    if len(predictions) != len(references):
        raise STSUserError(f"predictions ({len(predictions)}) and references ({len(references)}) differ in length")
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


def _scores(values, name: str) -> np.ndarray:
    """One score per pair: a column of them (n, 1) is taken as its n scores; more columns (logits of classes, pairs
    flattened together) are refused rather than flattened."""
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim == 2:
        raise STSUserError(
            f"{name} have {scores.shape[1]} values per pair (shape {scores.shape}): correlations need one score a pair"
        )
    if scores.ndim != 1:
        raise STSUserError(f"{name} have shape {scores.shape}: correlations need one score a pair, shape (n,)")
    return scores


def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
    """`compute_metrics` for `transformers.Trainer`: the predictions are the models' `scores` (0-1 scale)."""
    predictions = eval_prediction.predictions
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return correlation_metrics(predictions, eval_prediction.label_ids)
