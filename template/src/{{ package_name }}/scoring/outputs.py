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

    def columns(self, output: np.ndarray) -> dict[str, np.ndarray]:
        """The batch output's columns of raw model output: score + predicted_class; predicted_class +
        probability_<label>; prediction. The one place where a threshold, an argmax or a clip turns model
        output into predictions (from_output derives the per-row forms from these); the labels are an object
        array of the classes themselves (str, int or bool)."""
        if self.task == "binary":
            scores = np.asarray(output[:, 1], dtype=np.float64)
            labels = np.array(self.classes, dtype=object)[(scores >= self.threshold).astype(np.intp)]
            return {"score": scores, "predicted_class": labels}
        if self.task == "multiclass":
            probabilities = np.asarray(output, dtype=np.float64)
            columns = {"predicted_class": np.array(self.classes, dtype=object)[probabilities.argmax(axis=1)]}
            for i, name in enumerate(self._class_names):
                columns[f"probability_{name}"] = probabilities[:, i]
            return columns
        values = np.asarray(output, dtype=np.float64).reshape(-1)
        low, high = self.value_range
        low, high = -np.inf if low is None else low, np.inf if high is None else high
        return {"prediction": np.clip(values, low, high)}

    def from_output(self, output: np.ndarray) -> Predictions:
        """`output`: probabilities of shape (rows, classes), or predicted values of shape (rows,)."""
        columns = self.columns(output)
        if self.task == "binary":
            scores, labels = columns["score"].tolist(), columns["predicted_class"].tolist()
            return Predictions(
                task=self.task,
                primary=scores,
                buckets=[str(label) for label in labels],
                records=[
                    {"score": score, "predicted_class": label}
                    for score, label in zip(scores, labels, strict=True)
                ],
            )
        if self.task == "multiclass":
            probabilities = np.asarray(output, dtype=np.float64)
            rows, labels = probabilities.tolist(), columns["predicted_class"].tolist()
            names = self._class_names
            return Predictions(
                task=self.task,
                primary=probabilities.max(axis=1).tolist(),
                buckets=[str(label) for label in labels],
                records=[
                    {"predicted_class": label, "probabilities": dict(zip(names, row, strict=True))}
                    for label, row in zip(labels, rows, strict=True)
                ],
            )
        bounded = columns["prediction"]
        values = bounded.tolist()
        return Predictions(
            task=self.task,
            primary=values,
            buckets=[self.bucket(value) for value in values],
            records=[{"prediction": value} for value in values],
            clipped=(bounded != np.asarray(output, dtype=np.float64).reshape(-1)).tolist(),
        )

    def bucket(self, value: float) -> str:
        """Regression: the decile bucket of a predicted value."""
        return f"q{bisect_right(self.bucket_edges, value)}"


def bucket_names(task: str, classes: Sequence[Label], deciles: int = 10) -> list[str]:
    """Every monitoring bucket of a task (classes, or q0..q9)."""
    return [str(label) for label in classes] if task != "regression" else [f"q{i}" for i in range(deciles)]
