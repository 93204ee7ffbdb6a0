"""The model as the service and batch jobs run it: model.onnx with onnxruntime, no scikit-learn.

One thread per session and sequential execution: a request is a few rows, so thread pools only add
contention; the service scales with worker processes (WEB_CONCURRENCY) instead.

The exported graph takes the model matrix (input "features") and returns class probabilities
("probabilities", classification) or values ("variable", regression).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from ..contract import Contract, load_contract
from ..metadata import ModelArtifactError, ModelMetadata, file_sha256, read_metadata
from .features import FeatureSpace
from .outputs import OutputSpec, Predictions

ONNX_FILE = "model.onnx"
INPUT_NAME = "features"
PROBABILITIES = "probabilities"
VALUES = "variable"
_INPUT_DTYPES = {"tensor(double)": np.float64, "tensor(float)": np.float32}


def output_name(task: str) -> str:
    return VALUES if task == "regression" else PROBABILITIES


@dataclass(frozen=True)
class ScoringModel(ABC):
    """What every consumer of a model uses: metadata, the feature matrix, and predictions of raw inputs."""

    metadata: ModelMetadata
    features: FeatureSpace
    outputs: OutputSpec

    @property
    def model_version(self) -> str:
        return self.metadata.model_version

    @abstractmethod
    def raw_output(self, matrix: np.ndarray) -> np.ndarray:
        """Class probabilities (rows, classes) or predicted values (rows,) of a model matrix."""

    def predict_matrix(self, matrix: np.ndarray) -> Predictions:
        return self.outputs.from_output(self.raw_output(matrix))

    def predict_columns(self, columns: Mapping[str, Sequence[Any]]) -> Predictions:
        return self.predict_matrix(self.features.matrix(columns))

    def output_columns(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
        """The batch output's columns (OutputSpec.columns) of columns of raw model inputs: batch scoring's
        column-wise path, without the per-row forms of Predictions."""
        if not self.features.row_count(columns):  # no rows for onnxruntime: the columns, empty
            shape = (0, len(self.outputs.classes)) if self.outputs.is_classification else (0,)
            return self.outputs.columns(np.empty(shape))
        return self.outputs.columns(self.raw_output(self.features.matrix(columns)))

    def predict_records(self, records: Iterable[Mapping[str, Any]]) -> Predictions:
        return self.predict_columns(self.features.records_to_columns(records))


@dataclass(frozen=True)
class OnnxModel(ScoringModel):
    """model.onnx run by onnxruntime."""

    session: Any  # onnxruntime.InferenceSession
    input_dtype: Any  # the numpy dtype of the graph's input

    def raw_output(self, matrix: np.ndarray) -> np.ndarray:
        features = matrix.astype(self.input_dtype, copy=False)
        result = self.session.run([output_name(self.metadata.task)], {INPUT_NAME: features})[0]
        return np.asarray(result, dtype=np.float64)


def check_compatible(metadata: ModelMetadata, features: FeatureSpace, directory: Path) -> None:
    """Refuse a model trained for other features or another task than the contract describes now."""
    contract = features.contract
    if metadata.task != contract.task or metadata.target != contract.target.column:
        raise ModelArtifactError(
            f"{directory} predicts {metadata.target!r} ({metadata.task}), but the contract's target is "
            f"{contract.target.column!r} ({contract.task}): retrain it (make pipeline)"
        )
    if list(metadata.feature_names) != list(features.names):
        raise ModelArtifactError(
            f"{directory} was trained on other features than the contract builds now: "
            "retrain it (make pipeline)"
        )


def load_onnx_model(directory: Path, contract: Contract | None = None) -> OnnxModel:
    """model.onnx + metadata.json of a model directory; raises ModelArtifactError when they cannot be used."""
    metadata = read_metadata(directory, ONNX_FILE)
    if metadata.onnx_sha256 and file_sha256(directory / ONNX_FILE) != metadata.onnx_sha256:
        raise ModelArtifactError(
            f"{directory / ONNX_FILE} is not the model its metadata.json describes (SHA-256 differs): "
            "deploy the two files of one training together"
        )
    features = FeatureSpace(contract or load_contract(), metadata.imputation)
    check_compatible(metadata, features, directory)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    try:
        session = onnxruntime.InferenceSession(
            str(directory / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own exception types for unreadable models
        raise ModelArtifactError(
            f"{directory / ONNX_FILE} is not a model onnxruntime can run: {error}"
        ) from error
    inputs, outputs = session.get_inputs(), [output.name for output in session.get_outputs()]
    expected = output_name(metadata.task)
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME or expected not in outputs:
        raise ModelArtifactError(
            f"{directory / ONNX_FILE} must take one input {INPUT_NAME!r} and return {expected!r}"
        )
    dtype = _INPUT_DTYPES.get(inputs[0].type)
    if dtype is None:
        raise ModelArtifactError(f"{directory / ONNX_FILE} takes {inputs[0].type}, not float or double")
    return OnnxModel(metadata, features, OutputSpec.of(metadata, features.contract.target), session, dtype)
