"""The estimators of each task, built from params.yaml, and the baselines a model must beat.

    task         linear                                  hist_gradient_boosting
    binary       StandardScaler + LogisticRegression     HistGradientBoostingClassifier
    multiclass   StandardScaler + LogisticRegression     HistGradientBoostingClassifier
    regression   StandardScaler + Ridge                  HistGradientBoostingRegressor

Baselines: binary, a one-feature logistic regression; multiclass, the class shares of the train split (so it
always predicts the most frequent class); regression, the mean of the train split. Classifiers learn class
indices (0..k-1, in the contract's order of classes), so their probability columns follow the contract.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..params import ModelParams

ESTIMATORS: dict[tuple[str, bool], Any] = {
    ("linear", True): LogisticRegression,
    ("linear", False): Ridge,
    ("hist_gradient_boosting", True): HistGradientBoostingClassifier,
    ("hist_gradient_boosting", False): HistGradientBoostingRegressor,
}


def build_estimator(task: str, params: ModelParams) -> Any:
    """An unfitted estimator of params.type for `task`, with its hyperparameters from params.yaml.

    The hyperparameters of a type may serve both estimators (C and max_iter for logistic regression, alpha for
    ridge): each gets those it takes. A name that neither takes is a mistake, refused with its name.
    """
    classification = task != "regression"
    chosen, other = ESTIMATORS[(params.type, classification)], ESTIMATORS[(params.type, not classification)]
    accepted, known = set(chosen().get_params()), set(chosen().get_params()) | set(other().get_params())
    unknown = sorted(set(params.hyperparameters) - known)
    if unknown:
        raise ValueError(
            f"model.{params.type} has hyperparameters no {params.type} estimator takes: {', '.join(unknown)}"
        )
    kwargs = {name: value for name, value in params.hyperparameters.items() if name in accepted}
    model = chosen(random_state=params.seed, **kwargs)
    if params.type == "linear":
        return Pipeline([("scale", StandardScaler()), ("model", model)])
    return model


def raw_output(estimator: Any, task: str, matrix: np.ndarray) -> np.ndarray:
    """Class probabilities (rows, classes) or predicted values (rows,): what the ONNX export returns too."""
    if task == "regression":
        return np.asarray(estimator.predict(matrix), dtype=np.float64)
    return np.asarray(estimator.predict_proba(matrix), dtype=np.float64)


def best_single_feature(matrix: np.ndarray, y: np.ndarray, names: tuple[str, ...]) -> str:
    """The feature that alone ranks the positive class best on the train split (either direction)."""
    best, best_auc = names[0], -1.0
    for position, name in enumerate(names):
        column = matrix[:, position]
        if np.ptp(column) == 0:
            continue
        auc = roc_auc_score(y, column)
        if max(auc, 1 - auc) > best_auc:
            best, best_auc = name, max(auc, 1 - auc)
    return best


def baseline_output(
    task: str,
    train_matrix: np.ndarray,
    y_train: np.ndarray,
    test_matrix: np.ndarray,
    names: tuple[str, ...],
    feature: str | None,
    seed: int,
) -> tuple[np.ndarray, str]:
    """(raw output of the baseline on the test matrix, what the baseline is)."""
    if task == "binary":
        feature = feature or best_single_feature(train_matrix, y_train, names)
        if feature not in names:
            raise ValueError(
                f"evaluate.baseline_feature {feature!r} is not a feature (features: {', '.join(names)})"
            )
        column = [names.index(feature)]
        model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(random_state=seed))])
        model.fit(train_matrix[:, column], y_train)
        return np.asarray(
            model.predict_proba(test_matrix[:, column])
        ), f"one-feature logistic regression ({feature})"
    if task == "multiclass":
        prior = DummyClassifier(strategy="prior").fit(train_matrix, y_train)
        probabilities = np.zeros((len(test_matrix), int(y_train.max()) + 1))
        probabilities[:, prior.classes_] = prior.predict_proba(test_matrix)
        return probabilities, "the class shares of the train split"
    mean = DummyRegressor(strategy="mean").fit(train_matrix, y_train)
    return np.asarray(mean.predict(test_matrix), dtype=np.float64), "the mean of the train split"


def encode_target(values: np.ndarray, task: str, classes: tuple[object, ...]) -> np.ndarray:
    """Class indices (classification, in the contract's order of classes) or float values (regression)."""
    if task == "regression":
        return np.asarray(values, dtype=np.float64)
    index = {label: position for position, label in enumerate(classes)}
    try:
        return np.array([index[label] for label in values], dtype=np.int64)
    except KeyError as unknown:
        raise ValueError(
            f"the target has the value {unknown.args[0]!r}, which is not one of the contract's classes"
        ) from None
