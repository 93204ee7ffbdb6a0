"""Export of the fitted estimator to ONNX, the format the service and batch jobs score with (onnxruntime).

The exported graph takes the model matrix of features.build_matrix (input "features", one row per record) and
returns the class probabilities (output "probabilities"). Logistic regression is exported in float64 and
matches scikit-learn to the last bits; tree ensembles run in float32 in ONNX (TreeEnsembleClassifier has no
float64 output), which moves probabilities by ~1e-7. `export_onnx` checks the export against predict_proba on
the rows it is given and refuses one that differs by more than PARITY_TOLERANCE.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from .features import FEATURE_NAMES
from .onnx_model import INPUT_NAME, PROBABILITIES

PARITY_TOLERANCE = 1e-5  # max absolute difference of a probability, ONNX vs predict_proba
# Opsets onnxruntime >= 1.20 runs; ai.onnx.ml 3 is the first with float64 attributes for linear models.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}


class OnnxExportError(RuntimeError):
    """The estimator cannot be exported, or its export does not give the estimator's probabilities."""


def _is_linear(estimator: Any) -> bool:
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    return isinstance(final, LogisticRegression)


def export_onnx(estimator: Any, path: Path, parity_matrix: np.ndarray) -> float:
    """Write `estimator` as ONNX to `path`; return the largest probability difference on `parity_matrix`."""
    tensor_type = DoubleTensorType if _is_linear(estimator) else FloatTensorType
    with warnings.catch_warnings():
        # skl2onnx's tree converters pass bools as integer attributes; protobuf < 7 converts them
        warnings.filterwarnings("ignore", "Field onnx.AttributeProto.ints", DeprecationWarning)
        onnx_model = to_onnx(
            estimator,
            initial_types=[(INPUT_NAME, tensor_type([None, len(FEATURE_NAMES)]))],
            options={"zipmap": False},  # probabilities as one tensor, not a list of {class: probability} maps
            target_opset=TARGET_OPSET,
        )
    payload = onnx_model.SerializeToString()
    session = onnxruntime.InferenceSession(payload, providers=["CPUExecutionProvider"])
    dtype = np.float64 if tensor_type is DoubleTensorType else np.float32
    exported = session.run([PROBABILITIES], {INPUT_NAME: parity_matrix.astype(dtype)})[0][:, 1]
    difference = float(np.max(np.abs(exported - estimator.predict_proba(parity_matrix)[:, 1])))
    if difference > PARITY_TOLERANCE:
        raise OnnxExportError(
            f"the ONNX export differs from predict_proba by {difference:.2e} (> {PARITY_TOLERANCE:.0e})"
        )
    path.write_bytes(payload)
    return difference
