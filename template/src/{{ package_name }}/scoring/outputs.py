"""What a prediction is, per task: the one definition the service, batch scoring, logs and monitoring share.

    binary       {"score": P(positive class), "predicted_class": label}   (positive when score >= threshold)
    multiclass   {"predicted_class": label, "probabilities": {label: p}}  (the most probable class)
    regression   {"prediction": value}   (clipped to the contract's target min/max when it has them)

Each prediction also has a primary value (the score, the top probability, or the value: histograms and
explanations use it) and a monitoring bucket (the class label, or the decile q0..q9 of the test-split
predictions for regression), so one alert and one drift check cover every task.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..contract import Target
from ..metadata import Label, ModelMetadata


@dataclass(frozen=True)
class Predictions:
    """Predictions of a batch of rows, with the JSON form of each."""

    task: str
    primary: list[float]
    buckets: list[str]
    records: list[dict[str, Any]]
    # Regression: whether each prediction was clipped to the target's range (empty: none could be).
    clipped: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def clipped_count(self) -> int:
        return sum(self.clipped)

    def rows(self, start: int, end: int) -> Predictions:
        return Predictions(
            self.task,
            self.primary[start:end],
            self.buckets[start:end],
            self.records[start:end],
            self.clipped[start:end],
        )


class OutputSpec:
    """Turns raw model output (class probabilities, or values) into Predictions for one trained model."""

    def __init__(
        self,
        task: str,
        classes: Sequence[Label],
        threshold: float | None,
        bucket_edges: Sequence[float] = (),
        value_range: tuple[float | None, float | None] = (None, None),
    ) -> None:
        self.task = task
        self.classes: list[Label] = list(classes)
        self.threshold = threshold if threshold is not None else 0.5
        self.bucket_edges = list(bucket_edges)
        self.value_range = value_range
        self._class_names = [str(label) for label in self.classes]

    @classmethod
    def of(cls, metadata: ModelMetadata, target: Target | None = None) -> OutputSpec:
        """The outputs of a trained model; `target` (the contract's) bounds regression predictions."""
        value_range = (target.minimum, target.maximum) if target is not None else (None, None)
        return cls(
            metadata.task, metadata.classes, metadata.threshold, metadata.monitoring.bucket_edges, value_range
        )

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    def from_output(self, output: np.ndarray) -> Predictions:
        """`output`: probabilities of shape (rows, classes), or predicted values of shape (rows,)."""
        if self.task == "binary":
            return self._binary(output[:, 1])
        if self.task == "multiclass":
            return self._multiclass(output)
        return self._regression(np.asarray(output, dtype=np.float64).reshape(-1))

    def _binary(self, scores: np.ndarray) -> Predictions:
        negative, positive = self.classes
        score_list = [float(score) for score in scores]
        labels = [positive if score >= self.threshold else negative for score in score_list]
        return Predictions(
            task=self.task,
            primary=score_list,
            buckets=[str(label) for label in labels],
            records=[
                {"score": score, "predicted_class": label}
                for score, label in zip(score_list, labels, strict=True)
            ],
        )

    def _multiclass(self, probabilities: np.ndarray) -> Predictions:
        best = probabilities.argmax(axis=1)
        rows = probabilities.tolist()
        labels = [self.classes[i] for i in best]
        return Predictions(
            task=self.task,
            primary=[row[i] for row, i in zip(rows, best, strict=True)],
            buckets=[self._class_names[i] for i in best],
            records=[
                {"predicted_class": label, "probabilities": dict(zip(self._class_names, row, strict=True))}
                for label, row in zip(labels, rows, strict=True)
            ],
        )

    def _regression(self, values: np.ndarray) -> Predictions:
        low, high = self.value_range
        bounded = np.clip(values, -np.inf if low is None else low, np.inf if high is None else high)
        value_list = [float(value) for value in bounded]
        return Predictions(
            task=self.task,
            primary=value_list,
            buckets=[self.bucket(value) for value in value_list],
            records=[{"prediction": value} for value in value_list],
            clipped=[bool(flag) for flag in bounded != values],
        )

    def bucket(self, value: float) -> str:
        """Regression: the decile bucket of a predicted value."""
        return f"q{bisect_right(self.bucket_edges, value)}"

    def batch_columns(self, predictions: Predictions) -> dict[str, list[Any]]:
        """Batch output: score + predicted_class; predicted_class + probability_<label>; prediction."""
        records = predictions.records
        if self.task == "binary":
            return {
                "score": [record["score"] for record in records],
                "predicted_class": [record["predicted_class"] for record in records],
            }
        if self.task == "multiclass":
            columns: dict[str, list[Any]] = {
                "predicted_class": [record["predicted_class"] for record in records]
            }
            for name in self._class_names:
                columns[f"probability_{name}"] = [record["probabilities"][name] for record in records]
            return columns
        return {"prediction": [record["prediction"] for record in records]}


def bucket_names(task: str, classes: Sequence[Label], deciles: int = 10) -> list[str]:
    """Every monitoring bucket of a task (classes, or q0..q9)."""
    return [str(label) for label in classes] if task != "regression" else [f"q{i}" for i in range(deciles)]
