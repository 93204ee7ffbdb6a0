"""Classification metrics of churn scores, shared by training, evaluation and the gate."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss, f1_score, precision_score, recall_score, roc_auc_score


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """ROC AUC, F1, precision, recall and Brier score; ROC AUC is left out when only one class is present."""
    predicted = (scores >= threshold).astype(int)
    metrics = {
        "f1": f1_score(y_true, predicted, zero_division=0),
        "precision": precision_score(y_true, predicted, zero_division=0),
        "recall": recall_score(y_true, predicted, zero_division=0),
        "brier": brier_score_loss(y_true, scores),
        "positive_rate": float(np.mean(y_true)),
        "predicted_positive_rate": float(np.mean(predicted)),
    }
    if len(np.unique(y_true)) == 2:
        metrics["roc_auc"] = roc_auc_score(y_true, scores)
    return {name: round(float(value), 6) for name, value in sorted(metrics.items())}
