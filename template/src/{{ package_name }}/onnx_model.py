"""The model as the service and batch jobs run it: model.onnx with onnxruntime, no scikit-learn.

One thread per session and sequential execution: a request is a few rows, so thread pools only add
contention; the service scales with worker processes (WEB_CONCURRENCY) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from .artifacts import ONNX_FILE, ModelArtifactError, ScoringModel, read_metadata

INPUT_NAME = "features"
PROBABILITIES = "probabilities"
_INPUT_DTYPES = {"tensor(double)": np.float64, "tensor(float)": np.float32}


@dataclass(frozen=True)
class OnnxModel(ScoringModel):
    session: Any  # onnxruntime.InferenceSession
    input_dtype: Any  # the numpy dtype of the graph's input

    def score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        features = matrix.astype(self.input_dtype, copy=False)
        probabilities = self.session.run([PROBABILITIES], {INPUT_NAME: features})[0]
        return np.asarray(probabilities[:, 1], dtype=np.float64)


def load_onnx_model(directory: Path) -> OnnxModel:
    """model.onnx + metadata.json of a model directory; raises ModelArtifactError when they cannot be used."""
    metadata = read_metadata(directory, ONNX_FILE)
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
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME or PROBABILITIES not in outputs:
        raise ModelArtifactError(
            f"{directory / ONNX_FILE} must take one input {INPUT_NAME!r} and return {PROBABILITIES!r}"
        )
    dtype = _INPUT_DTYPES.get(inputs[0].type)
    if dtype is None:
        raise ModelArtifactError(f"{directory / ONNX_FILE} takes {inputs[0].type}, not float or double")
    return OnnxModel(metadata=metadata, session=session, input_dtype=dtype)
