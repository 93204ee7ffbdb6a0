"""Metrics of each task, shared by training, evaluation and the gate (every one rounded to 6 decimals).

    binary       roc_auc, pr_auc, f1, precision, recall, brier, log_loss, positive_rate,
                 predicted_positive_rate
    multiclass   macro_f1, accuracy, log_loss, recall_<class> for each class (with `present_only`, as on
                 a slice of the test split: macro F1 and recalls over the classes present in the target
                 only, so a slice that holds one class is not scored 0 on the classes it does not hold)
    regression   rmse, mae, r2

A metric that is undefined on the data (ROC AUC with one class present, R² of one row) is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

# The metric each task's gate, baseline comparison and permutation importance use by default.
PRIMARY_METRIC = {"binary": "roc_auc", "multiclass": "macro_f1", "regression": "r2"}
LOWER_IS_BETTER = frozenset({"brier", "log_loss", "rmse", "mae"})


def task_metrics(
    task: str,
    y: np.ndarray,
    output: np.ndarray,
    classes: Sequence[object],
    threshold: float,
    present_only: bool = False,
) -> dict[str, float]:
    """Metrics of raw model output (probabilities or values) against the target (class indices or values)."""
    if task == "binary":
        metrics = _binary(y, output[:, 1], threshold)
    elif task == "multiclass":
        metrics = _multiclass(y, output, classes, present_only)
    else:
        metrics = _regression(y, output)
    return {name: round(float(value), 6) for name, value in sorted(metrics.items())}


def _binary(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (scores >= threshold).astype(int)
    metrics = {
        "f1": f1_score(y, predicted, zero_division=0),
        "precision": precision_score(y, predicted, zero_division=0),
        "recall": recall_score(y, predicted, zero_division=0),
        "brier": brier_score_loss(y, scores),
        "positive_rate": float(np.mean(y)),
        "predicted_positive_rate": float(np.mean(predicted)),
    }
    if len(np.unique(y)) == 2:
        metrics["roc_auc"] = roc_auc_score(y, scores)
        metrics["pr_auc"] = average_precision_score(y, scores)
        metrics["log_loss"] = log_loss(y, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1])
    return metrics


def _multiclass(
    y: np.ndarray, probabilities: np.ndarray, classes: Sequence[object], present_only: bool
) -> dict[str, float]:
    predicted = probabilities.argmax(axis=1)
    every = list(range(len(classes)))
    scored = sorted({int(label) for label in y}) if present_only else every
    recalls = recall_score(y, predicted, labels=scored, average=None, zero_division=0)
    metrics = {
        "macro_f1": f1_score(y, predicted, labels=scored, average="macro", zero_division=0),
        "accuracy": accuracy_score(y, predicted),
        "log_loss": log_loss(y, np.clip(probabilities, 1e-15, 1.0), labels=every),
    }
    metrics.update(
        {f"recall_{classes[label]}": recall for label, recall in zip(scored, recalls, strict=True)}
    )
    return metrics


def _regression(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    metrics = {
        "rmse": float(np.sqrt(mean_squared_error(y, predicted))),
        "mae": mean_absolute_error(y, predicted),
    }
    if len(y) > 1:
        metrics["r2"] = r2_score(y, predicted)
    return metrics
