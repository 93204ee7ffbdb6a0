"""A fast scorer for linear models: the fitted weights folded into one dot product.

scikit-learn's `predict_proba` spends ~100-250 us per call on input validation and pipeline plumbing before
the arithmetic, which for a logistic regression is one dot product. For the estimators the training pipeline
builds as `logistic_regression` (a StandardScaler + LogisticRegression pipeline, or a bare binary
LogisticRegression) this module folds the scaler into the weights once, so scoring is `expit(x @ w + b)`:
the same numbers up to floating-point rounding. Predictor checks that against `predict_proba` when it loads
the model and uses the estimator itself for anything else (gradient boosting, a different pipeline).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

Scorer = Callable[[np.ndarray], np.ndarray]


def linear_scorer(estimator: Any) -> Scorer | None:
    """Positive-class probability as one dot product, or None when the estimator is not a supported shape."""
    steps = [step for _, step in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]
    *transforms, model = steps
    if not _is_binary_logistic_regression(model) or len(transforms) > 1:
        return None
    weights = np.asarray(model.coef_[0], dtype=np.float64)
    intercept = float(model.intercept_[0])
    if transforms:
        scaler = transforms[0]
        if not isinstance(scaler, StandardScaler):
            return None
        # w . (x - mean) / scale + b  ==  (w / scale) . x + (b - (w / scale) . mean)
        if scaler.with_std:
            weights = weights / scaler.scale_
        if scaler.with_mean:
            intercept -= float(weights @ scaler.mean_)
    folded_weights, folded_intercept = weights.copy(), intercept

    def score(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(expit(matrix @ folded_weights + folded_intercept), dtype=np.float64)

    return score


def _is_binary_logistic_regression(model: Any) -> bool:
    return (
        isinstance(model, LogisticRegression)
        and model.coef_.shape[0] == 1
        and [int(label) for label in model.classes_] == [0, 1]
    )
