"""Experiment tracking behind one small interface, chosen by `tracking.backend` in params.yaml.

`none` records nothing beyond the files the pipeline writes anyway (models/metadata.json, reports/,
models/registry.json). `mlflow` loads tracking/mlflow_backend.py, the only module that imports mlflow;
`tracking.server` says whether it must reach a shared server (tracking/registry.py fetches and moves the
registry's champion).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ..metadata import ModelMetadata
from ..params import TrackingParams


class TrackingError(RuntimeError):
    """The tracking backend the project configured cannot be used; the message says why and what to check."""


class Tracker(Protocol):
    def log_training(
        self, params: Mapping[str, Any], metadata: ModelMetadata, estimator: Any
    ) -> dict[str, str]:
        """Record a trained model; return what later stages need to find the run again (kept in metadata)."""
        ...

    def log_model_files(self, run: Mapping[str, str], model_dir: Path) -> None:
        """Attach the files of the saved model directory to the training run."""
        ...

    def log_evaluation(self, run: Mapping[str, str], metrics: Mapping[str, Any], reports_dir: Path) -> None:
        """Add evaluation metrics and report files to the training run."""
        ...

    def promote(self, run: Mapping[str, str]) -> str | None:
        """Mark the run's model as the champion in the tracking backend; its registry version, if any."""
        ...


class NullTracker:
    """Tracks nothing: the pipeline's own files are the record."""

    def log_training(
        self, params: Mapping[str, Any], metadata: ModelMetadata, estimator: Any
    ) -> dict[str, str]:
        return {"backend": "none"}

    def log_model_files(self, run: Mapping[str, str], model_dir: Path) -> None:
        return None

    def log_evaluation(self, run: Mapping[str, str], metrics: Mapping[str, Any], reports_dir: Path) -> None:
        return None

    def promote(self, run: Mapping[str, str]) -> str | None:
        return None


def get_tracker(params: TrackingParams) -> Tracker:
    if params.backend == "none":
        return NullTracker()
    try:
        # Imported here so that mlflow is loaded only when it is the configured backend.
        from .mlflow_backend import MlflowTracker
    except ImportError as error:
        raise RuntimeError(
            "tracking.backend is mlflow but mlflow is not available: install the train group (make setup)"
        ) from error
    # Typed here: without experiment tracking the module is not rendered, and mypy sees MlflowTracker as Any.
    tracker: Tracker = MlflowTracker(
        experiment=params.experiment, registered_model=params.registered_model, server=params.server
    )
    return tracker


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: nested params and metrics as flat keys for tracking backends."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
