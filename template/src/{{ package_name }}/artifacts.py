"""The model directory: the fitted scikit-learn estimator, the same model as ONNX, and their metadata.

    model.joblib   the estimator: the pipeline stages (evaluate, gate, explain) load it with `load_model`
    model.onnx     the estimator exported for onnxruntime: the service and batch jobs load it (onnx_model.py),
                   so the serving image needs neither scikit-learn, scipy nor joblib
    metadata.json  version, metrics, feature names, threshold, training ranges

This module imports no training dependency at the top: the service uses its metadata checks and error type.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .features import FEATURE_NAMES, build_matrix

MODEL_FILE = "model.joblib"
ONNX_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
MODEL_FILES = (MODEL_FILE, ONNX_FILE, METADATA_FILE)


class ModelArtifactError(RuntimeError):
    """The model directory is missing a file or was built for different features."""


@dataclass(frozen=True)
class ScoringModel(ABC):
    """What every consumer of a model uses: metadata, scores of raw model inputs, thresholded classes."""

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

    @abstractmethod
    def score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Churn probability of each row of a model matrix (features.build_matrix)."""

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return (scores >= self.threshold).astype(np.int64)


@dataclass(frozen=True)
class ModelArtifact(ScoringModel):
    """The fitted scikit-learn estimator (training side)."""

    estimator: Any

    def score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(matrix)[:, 1], dtype=np.float64)


def save_model(
    directory: Path, estimator: Any, metadata: Mapping[str, Any], parity_matrix: np.ndarray
) -> None:
    """Write the estimator, its ONNX export (checked against it on `parity_matrix`) and the metadata."""
    import joblib  # training-side dependency (the `train` group)

    from .onnx_export import export_onnx

    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, directory / MODEL_FILE)
    export_onnx(estimator, directory / ONNX_FILE, parity_matrix)
    write_json(directory / METADATA_FILE, metadata)


def read_metadata(directory: Path, model_file: str) -> dict[str, Any]:
    """metadata.json of a model directory holding `model_file`; refuses features other than FEATURE_NAMES."""
    for path in (directory / model_file, directory / METADATA_FILE):
        if not path.is_file():
            raise ModelArtifactError(
                f"{path} does not exist: train and promote a model first (make pipeline)"
            )
    metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    if list(metadata.get("feature_names", [])) != list(FEATURE_NAMES):
        raise ModelArtifactError(
            f"{directory} was trained on other features than this code builds: retrain it (make pipeline)"
        )
    return dict(metadata)


def load_model(directory: Path) -> ModelArtifact:
    """The scikit-learn estimator of a model directory (joblib unpickles: load only models you produced)."""
    import joblib  # training-side dependency (the `train` group)

    metadata = read_metadata(directory, MODEL_FILE)
    return ModelArtifact(metadata=metadata, estimator=joblib.load(directory / MODEL_FILE))


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
