"""MLflow backend of tracking.Tracker: the only module of the project that imports mlflow.

The tracking store is MLFLOW_TRACKING_URI when set (a team server), else sqlite:///mlruns.db in the project
(browse it with `uv run mlflow ui --backend-store-uri sqlite:///mlruns.db`). Each training run logs its
params, metrics, environment, git sha and model, and registers the model as a new version; the gate moves the
`champion` alias to the version it promotes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import version as metadata_version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow import MlflowClient
from mlflow.models import infer_signature

from .features import FEATURE_NAMES
from .provenance import environment
from .tracking import flatten

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
DEFAULT_ARTIFACT_DIR = Path("mlartifacts")
CHAMPION_ALIAS = "champion"
# What loading the logged model needs (it is a plain scikit-learn estimator on the matrix of features.py).
MODEL_REQUIREMENTS = ("scikit-learn", "numpy", "scipy", "joblib")


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
        self, params: Mapping[str, Any], metadata: Mapping[str, Any], estimator: Any
    ) -> dict[str, str]:
        with mlflow.start_run(experiment_id=self._experiment_id()) as run:
            mlflow.log_params(flatten(params))
            mlflow.log_metrics({f"test.{name}": value for name, value in metadata["metrics"].items()})
            mlflow.set_tags(
                {
                    "git_sha": metadata["git_sha"],
                    "data_hash": metadata["data_hash"],
                    "model_version": metadata["model_version"],
                }
            )
            mlflow.log_dict(environment(), "environment.json")
            mlflow.log_dict(dict(metadata), "metadata.json")
            example = np.zeros((1, len(FEATURE_NAMES)))
            info = mlflow.sklearn.log_model(
                estimator,
                name="model",
                registered_model_name=self.registered_model,
                signature=infer_signature(example, estimator.predict_proba(example)[:, 1]),
                # Explicit requirements: inferring them exports the whole lock file and takes ~30 s.
                pip_requirements=[f"{name}=={metadata_version(name)}" for name in MODEL_REQUIREMENTS],
            )
        return {
            "backend": "mlflow",
            "tracking_uri": self.uri,
            "run_id": run.info.run_id,
            "registered_model": self.registered_model,
            "registered_version": str(info.registered_model_version),
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
            mlflow.log_metrics({name.replace("/", "_"): value for name, value in numeric.items()})
            if reports_dir.is_dir():
                mlflow.log_artifacts(str(reports_dir), artifact_path="reports")

    def promote(self, run: Mapping[str, str]) -> None:
        if run.get("backend") != "mlflow":
            return
        MlflowClient().set_registered_model_alias(
            run["registered_model"], CHAMPION_ALIAS, run["registered_version"]
        )
