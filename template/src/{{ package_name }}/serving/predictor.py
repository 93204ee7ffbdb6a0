"""The champion model as the service uses it: loaded once from MODEL_DIR, then scored on validated records."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import ModelArtifact, ModelArtifactError, load_model
from ..contract import CATEGORICAL, NUMERIC
from ..features import build_matrix
from .example import example_record
from .linear_fast_path import Scorer, linear_scorer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelMetadata:
    """The parts of metadata.json the service uses, checked once at load time."""

    model_version: str
    git_sha: str
    trained_at: str
    trained_at_epoch: float | None
    training_ranges: dict[str, tuple[float, float]]

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ModelMetadata:
        try:
            trained_at = str(document["trained_at"])
            return cls(
                model_version=str(document["model_version"]),
                git_sha=str(document["git_sha"]),
                trained_at=trained_at,
                trained_at_epoch=_epoch(trained_at),
                training_ranges={
                    name: (float(bounds["min"]), float(bounds["max"]))
                    for name, bounds in document["training_ranges"].items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelArtifactError(f"metadata.json is incomplete or malformed: {error!r}") from error


@dataclass(frozen=True)
class Scores:
    scores: list[float]
    classes: list[int]


# The fast path must match predict_proba within this absolute tolerance on the probe records to be used.
FAST_PATH_TOLERANCE = 1e-9


class Predictor:
    """The loaded model: validated model inputs in, positive-class scores and thresholded classes out."""

    def __init__(self, artifact: ModelArtifact) -> None:
        self.artifact = artifact
        self.metadata = ModelMetadata.from_json(artifact.metadata)
        fast_path = _checked_fast_path(artifact)
        self.uses_fast_path = fast_path is not None
        self._score_matrix: Scorer = fast_path or artifact.score_matrix

    @classmethod
    def load(cls, model_dir: Path) -> Predictor:
        """Load and warm up the model in `model_dir`; raises ModelArtifactError when it cannot be served."""
        # joblib unpickles: point MODEL_DIR only at models this project's pipeline produced.
        artifact = load_model(model_dir)
        if not callable(getattr(artifact.estimator, "predict_proba", None)):
            raise ModelArtifactError(
                f"{model_dir} holds a {type(artifact.estimator).__name__} without predict_proba"
            )
        predictor = cls(artifact)
        predictor.score_columns({name: [value] for name, value in example_record().items()})  # one-off costs
        logger.info(
            "model loaded",
            extra={
                "model_dir": str(model_dir),
                "model_version": artifact.model_version,
                "fast_path": predictor.uses_fast_path,
            },
        )
        return predictor

    def score_columns(self, columns: Mapping[str, Sequence[Any]]) -> Scores:
        """Positive-class probabilities and thresholded classes for validated model inputs (see features)."""
        scores = self._score_matrix(build_matrix(columns))
        return Scores(scores=scores.tolist(), classes=self.artifact.predict(scores).tolist())


def _checked_fast_path(artifact: ModelArtifact) -> Scorer | None:
    """The linear fast path when it applies and agrees with the estimator's own predict_proba."""
    fast = linear_scorer(artifact.estimator)
    if fast is None:
        return None
    probe = build_matrix(_probe_columns())
    difference = float(np.max(np.abs(fast(probe) - artifact.score_matrix(probe))))
    if difference > FAST_PATH_TOLERANCE:
        logger.warning("fast path disagrees with predict_proba; not used", extra={"difference": difference})
        return None
    return fast


def _probe_columns() -> dict[str, list[Any]]:
    """Records covering the contract: every range end and every category."""
    records = [
        example_record(),
        {**example_record(), **{name: spec.minimum for name, spec in NUMERIC.items()}},
        {**example_record(), **{name: spec.maximum for name, spec in NUMERIC.items()}},
        *(
            {**example_record(), name: category}
            for name, spec in CATEGORICAL.items()
            for category in spec.categories
        ),
    ]
    return {name: [record[name] for record in records] for name in records[0]}


def _epoch(timestamp: str) -> float | None:
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None
