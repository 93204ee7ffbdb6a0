"""The champion model as the service uses it: loaded once from MODEL_DIR, then scored on validated records."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..artifacts import ModelArtifactError
from ..features import build_matrix
from ..onnx_model import OnnxModel, load_onnx_model
from .example import example_record

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


class Predictor:
    """The loaded model: validated model inputs in, positive-class scores and thresholded classes out."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.metadata = ModelMetadata.from_json(model.metadata)

    @classmethod
    def load(cls, model_dir: Path) -> Predictor:
        """Load and warm up model.onnx in `model_dir`; raises ModelArtifactError when it cannot be served."""
        predictor = cls(load_onnx_model(model_dir))
        predictor.score_columns({name: [value] for name, value in example_record().items()})  # one-off costs
        logger.info(
            "model loaded",
            extra={"model_dir": str(model_dir), "model_version": predictor.model.model_version},
        )
        return predictor

    def score_columns(self, columns: Mapping[str, Sequence[Any]]) -> Scores:
        """Positive-class probabilities and thresholded classes for validated model inputs (see features)."""
        scores = self.model.score_matrix(build_matrix(columns))
        return Scores(scores=scores.tolist(), classes=self.model.predict(scores).tolist())


def _epoch(timestamp: str) -> float | None:
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None
