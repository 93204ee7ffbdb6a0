"""The champion model as the service uses it: loaded once from MODEL_DIR, then run on validated records."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..contract import Contract
from ..metadata import ModelMetadata
from ..scoring.model import OnnxModel, load_onnx_model
from ..scoring.outputs import Predictions

logger = logging.getLogger(__name__)


class Predictor:
    """The loaded model: validated model inputs in, task-specific predictions out (scoring/outputs.py)."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.metadata: ModelMetadata = model.metadata

    @classmethod
    def load(cls, model_dir: Path, contract: Contract) -> Predictor:
        """Load and warm up model.onnx in `model_dir`; raises ModelArtifactError when it cannot be served."""
        predictor = cls(load_onnx_model(model_dir, contract))
        predictor.predict_records(
            [predictor.metadata.reference_record]
        )  # one-off costs before the first request
        logger.info(
            "model loaded",
            extra={"model_dir": str(model_dir), "model_version": predictor.metadata.model_version},
        )
        return predictor

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Predictions:
        return self.model.predict_records(records)
