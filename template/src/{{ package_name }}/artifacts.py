"""The model artifact: a fitted scikit-learn estimator plus its metadata, saved side by side in one directory.

Used by training, the gate, batch scoring, explanations and the online service (runtime dependencies only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from .features import FEATURE_NAMES, build_matrix

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


class ModelArtifactError(RuntimeError):
    """The model directory is missing a file or was built for different features."""


@dataclass(frozen=True)
class ModelArtifact:
    estimator: Any
    metadata: dict[str, Any]

    @property
    def model_version(self) -> str:
        return str(self.metadata["model_version"])

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    def score(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """Churn probability of each row of raw model inputs."""
        return self.score_matrix(build_matrix(columns))

    def score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(matrix)[:, 1], dtype=np.float64)

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return (scores >= self.threshold).astype(np.int64)


def save_model(directory: Path, estimator: Any, metadata: Mapping[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, directory / MODEL_FILE)
    write_json(directory / METADATA_FILE, metadata)


def load_model(directory: Path) -> ModelArtifact:
    """Load a model directory; refuse one whose features differ from this code's FEATURE_NAMES."""
    model_path, metadata_path = directory / MODEL_FILE, directory / METADATA_FILE
    for path in (model_path, metadata_path):
        if not path.is_file():
            raise ModelArtifactError(
                f"{path} does not exist: train and promote a model first (make pipeline)"
            )
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    if list(metadata.get("feature_names", [])) != list(FEATURE_NAMES):
        raise ModelArtifactError(
            f"{directory} was trained on other features than this code builds: retrain it (make pipeline)"
        )
    return ModelArtifact(estimator=joblib.load(model_path), metadata=metadata)


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
