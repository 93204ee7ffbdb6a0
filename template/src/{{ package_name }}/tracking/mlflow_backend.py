"""MLflow backend of tracking.Tracker: the only module of the project that imports mlflow (lint-imports).

The tracking store is MLFLOW_TRACKING_URI when set (a team server), else sqlite:///mlruns.db in the project
(browse it with `uv run mlflow ui --backend-store-uri sqlite:///mlruns.db`). Each training run logs its
params, metrics, environment, git sha and model, and registers the model as a new version; the gate moves the
`champion` alias to the version it promotes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib.metadata import version as metadata_version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow import MlflowClient
from mlflow.models import infer_signature

from ..metadata import ModelMetadata
from ..training.estimators import raw_output
from ..training.provenance import environment
from . import flatten

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
DEFAULT_ARTIFACT_DIR = Path("mlartifacts")
CHAMPION_ALIAS = "champion"
# What loading the logged model needs (a plain scikit-learn estimator on the matrix of scoring/features.py).
MODEL_REQUIREMENTS = ("scikit-learn", "numpy", "scipy", "joblib")
# MLflow stores scikit-learn models with skops, which refuses types it cannot vouch for. The pipeline itself
# produced the estimator, and HistGradientBoosting* models hold their trees in this one type.
TRUSTED_SKOPS_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


_NOT_IN_METRIC_NAMES = re.compile(r"[^A-Za-z0-9_\-. :/]")


def metric_name(name: str) -> str:
    """`name` with the characters MLflow refuses in metric names (e.g. "<" of a slice "<missing>") as "_"."""
    return _NOT_IN_METRIC_NAMES.sub("_", name)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


class MlflowTracker:
    def __init__(self, experiment: str, registered_model: str) -> None:
        self.experiment = experiment
        self.registered_model = registered_model
        self.uri = tracking_uri()
        mlflow.set_tracking_uri(self.uri)

    def _experiment_id(self) -> str:
        found = mlflow.get_experiment_by_name(self.experiment)
        if found is not None:
            return str(found.experiment_id)
        # A local store keeps artifacts beside it rather than in the current directory's ./mlruns.
        location = DEFAULT_ARTIFACT_DIR.resolve().as_uri() if self.uri == DEFAULT_TRACKING_URI else None
        return str(mlflow.create_experiment(self.experiment, artifact_location=location))

    def log_training(
        self, params: Mapping[str, Any], metadata: ModelMetadata, estimator: Any
    ) -> dict[str, str]:
        with mlflow.start_run(experiment_id=self._experiment_id()) as run:
            mlflow.log_params(flatten(params))
            mlflow.log_metrics(
                {metric_name(f"test.{name}"): value for name, value in metadata.metrics.items()}
            )
            mlflow.set_tags(
                {
                    "git_sha": metadata.git_sha,
                    "data_hash": metadata.data_hash,
                    "model_version": metadata.model_version,
                    "task": metadata.task,
                }
            )
            mlflow.log_dict(environment(), "environment.json")
            mlflow.log_dict(metadata.to_json(), "metadata.json")
            example = np.zeros((1, len(metadata.feature_names)))
            info = mlflow.sklearn.log_model(
                estimator,
                name="model",
                signature=infer_signature(example, raw_output(estimator, metadata.task, example)),
                # Explicit requirements: inferring them exports the whole lock file and takes ~30 s.
                pip_requirements=[f"{name}=={metadata_version(name)}" for name in MODEL_REQUIREMENTS],
                skops_trusted_types=TRUSTED_SKOPS_TYPES,
            )
        return {
            "backend": "mlflow",
            "tracking_uri": self.uri,
            "run_id": run.info.run_id,
            "registered_model": self.registered_model,
            "model_uri": info.model_uri,
        }

    def log_evaluation(self, run: Mapping[str, str], metrics: Mapping[str, Any], reports_dir: Path) -> None:
        numeric = {
            name: float(value)
            for name, value in flatten(metrics).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        if run.get("backend") != "mlflow":
            return  # trained before MLflow was configured: nothing to attach the evaluation to
        with mlflow.start_run(run_id=run["run_id"]):
            mlflow.log_metrics({metric_name(name): value for name, value in numeric.items()})
            if reports_dir.is_dir():
                mlflow.log_artifacts(str(reports_dir), artifact_path="reports")

    def promote(self, run: Mapping[str, str]) -> None:
        """Register the model of a run that passed the gate, and point the `champion` alias at it.

        Only promoted models become versions of the registered model: a candidate the gate refuses stays
        a logged model of its run, never a version that a consumer of the registry could load.
        """
        if run.get("backend") != "mlflow":
            return
        version = run.get("registered_version")  # earlier releases registered at training
        if version is None:
            version = mlflow.register_model(run["model_uri"], run["registered_model"]).version
        MlflowClient().set_registered_model_alias(run["registered_model"], CHAMPION_ALIAS, str(version))
