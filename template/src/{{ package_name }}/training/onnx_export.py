"""Export of the fitted estimator to ONNX, the format the service and batch jobs score with (onnxruntime).

The exported graph takes the model matrix (input "features", one row per record) and returns the class
probabilities ("probabilities") or the predicted values ("variable"). Linear models are exported in float64
and match scikit-learn to the last bits; tree ensembles run in float32 in ONNX (the tree operators have no
float64 output), which moves outputs by ~1e-7 relative. `export_onnx` checks the export against scikit-learn
on the rows it is given and refuses one that differs by more than PARITY_TOLERANCE (relative to the scale of
the output for regression).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.pipeline import Pipeline

from ..scoring.model import INPUT_NAME, output_name
from .estimators import raw_output

PARITY_TOLERANCE = 1e-5
# Opsets onnxruntime >= 1.20 runs; ai.onnx.ml 3 is the first with float64 attributes for linear models.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}


class OnnxExportError(RuntimeError):
    """The estimator cannot be exported, or its export does not give the estimator's outputs."""


def _is_linear(estimator: Any) -> bool:
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    return hasattr(final, "coef_")


def export_onnx(estimator: Any, task: str, path: Path, parity_matrix: np.ndarray) -> float:
    """Write `estimator` as ONNX to `path`; return the largest output difference on `parity_matrix`."""
    tensor_type = DoubleTensorType if _is_linear(estimator) else FloatTensorType
    options = {"zipmap": False} if task != "regression" else None  # probabilities as one tensor
    with warnings.catch_warnings():
        # skl2onnx's tree converters pass bools as integer attributes; protobuf < 7 converts them
        warnings.filterwarnings("ignore", "Field onnx.AttributeProto.ints", DeprecationWarning)
        onnx_model = to_onnx(
            estimator,
            initial_types=[(INPUT_NAME, tensor_type([None, parity_matrix.shape[1]]))],
            options=options,
            target_opset=TARGET_OPSET,
        )
    payload = onnx_model.SerializeToString()
    session = onnxruntime.InferenceSession(payload, providers=["CPUExecutionProvider"])
    outputs = [output.name for output in session.get_outputs()]
    if output_name(task) not in outputs:
        raise OnnxExportError(f"the ONNX export returns {outputs}, not {output_name(task)!r}")
    dtype = np.float64 if tensor_type is DoubleTensorType else np.float32
    exported = session.run([output_name(task)], {INPUT_NAME: parity_matrix.astype(dtype)})[0]
    expected = raw_output(estimator, task, parity_matrix)
    exported = np.asarray(exported, dtype=np.float64).reshape(expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected)))) if task == "regression" else 1.0
    difference = float(np.max(np.abs(exported - expected))) / scale if len(expected) else 0.0
    if difference > PARITY_TOLERANCE:
        raise OnnxExportError(
            f"the ONNX export differs from scikit-learn by {difference:.2e} (> {PARITY_TOLERANCE:.0e})"
        )
    path.write_bytes(payload)
    return difference
