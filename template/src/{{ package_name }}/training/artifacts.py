"""The model directory as training writes it and the pipeline stages read it.

model.joblib   the fitted scikit-learn estimator: evaluate, gate and explain load it (load_model)
model.onnx     the same model for onnxruntime: the service and batch jobs load it (scoring/model.py), so the
               serving image needs neither scikit-learn, scipy nor joblib
metadata.json  ModelMetadata (metadata.py)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ..contract import Contract, load_contract
from ..metadata import METADATA_FILE, ModelMetadata, file_sha256, read_metadata, write_json
from ..scoring.features import FeatureSpace
from ..scoring.model import ONNX_FILE, ScoringModel, check_compatible
from ..scoring.outputs import OutputSpec
from .estimators import raw_output
from .onnx_export import export_onnx

MODEL_FILE = "model.joblib"
MODEL_FILES = (MODEL_FILE, ONNX_FILE, METADATA_FILE)


@dataclass(frozen=True)
class EstimatorModel(ScoringModel):
    """The fitted scikit-learn estimator (training side)."""

    estimator: Any

    def raw_output(self, matrix: np.ndarray) -> np.ndarray:
        return raw_output(self.estimator, self.metadata.task, matrix)


def save_model(directory: Path, estimator: Any, metadata: ModelMetadata, parity_matrix: np.ndarray) -> float:
    """Write the estimator, its ONNX export (checked on `parity_matrix`) and the metadata; return parity."""
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, directory / MODEL_FILE)
    parity = export_onnx(estimator, metadata.task, directory / ONNX_FILE, parity_matrix)
    bound = replace(metadata, onnx_sha256=file_sha256(directory / ONNX_FILE))  # binds the pair of files
    write_json(directory / METADATA_FILE, bound.to_json(), sort_keys=False)
    return parity


def load_model(directory: Path, contract: Contract | None = None) -> EstimatorModel:
    """The scikit-learn model of a model directory (joblib unpickles: load only models you produced)."""
    metadata = read_metadata(directory, MODEL_FILE)
    features = FeatureSpace(contract or load_contract(), metadata.imputation)
    check_compatible(metadata, features, directory)
    return EstimatorModel(
        metadata,
        features,
        OutputSpec.of(metadata, features.contract.target),
        joblib.load(directory / MODEL_FILE),
    )
