"""MLflow backend of tracking.Tracker: the only module of the project that imports mlflow (lint-imports).

With `tracking.server: local` (params.yaml) the store is MLFLOW_TRACKING_URI when set, else
sqlite:///mlruns.db in the project (browse it with `uv run mlflow ui --backend-store-uri sqlite:///mlruns.db`).
With `self_hosted` or `managed` the project expects a shared server: MLFLOW_TRACKING_URI must name it, and a
server that is down or refuses the credentials (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME/PASSWORD)
stops the pipeline with a TrackingServerError that says what to check; nothing falls back to a local file.
Each training run logs its params, metrics, environment, git sha, the scikit-learn model and the model files
the service needs (model_files/: model.onnx, metadata.json, model.joblib); the gate registers the run's
model as a new version and moves the `champion` alias to it. fetch_champion() pulls the files of the version
an alias names (what CD builds the image from); set_champion() moves the alias (a rollback).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from importlib.metadata import version as metadata_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from ..metadata import METADATA_FILE, ModelMetadata, file_sha256, read_metadata, write_json
from ..scoring.model import ONNX_FILE
from ..training.artifacts import MODEL_FILES
from ..training.estimators import raw_output
from ..training.provenance import environment
from . import TrackingError, flatten

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
DEFAULT_ARTIFACT_DIR = Path("mlartifacts")
CHAMPION_ALIAS = "champion"
# Where each run keeps the files of its model directory (training/artifacts.py), for fetch_champion().
MODEL_FILES_PATH = "model_files"
SERVER_MODES = ("self_hosted", "managed")
# A server that does not answer fails in seconds, not after MLflow's default retries (minutes); the
# environment variables still win when set.
SERVER_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
RUNBOOK = "docs/runbooks/tracking-server-down.md"
# What loading the logged model needs (a plain scikit-learn estimator on the matrix of scoring/features.py).
MODEL_REQUIREMENTS = ("scikit-learn", "numpy", "scipy", "joblib")
# MLflow stores scikit-learn models with skops, which refuses types it cannot vouch for. The pipeline itself
# produced the estimator, and HistGradientBoosting* models hold their trees in this one type.
TRUSTED_SKOPS_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


_USERINFO = re.compile(r"//[^/@\s]+@")
_NOT_IN_METRIC_NAMES = re.compile(r"[^A-Za-z0-9_\-. :/]")


def metric_name(name: str) -> str:
    """`name` with the characters MLflow refuses in metric names (e.g. "<" of a slice "<missing>") as "_"."""
    return _NOT_IN_METRIC_NAMES.sub("_", name)


class TrackingServerError(TrackingError):
    """The shared tracking server the project expects is unset, unreachable, or refuses the client."""


def redacted(uri: str) -> str:
    """`uri` without a user:password part, for messages."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    return urlunsplit(
        parts._replace(netloc=f"<credentials>@{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}")
    )


def tracking_uri(server: str = "local") -> str:
    """The tracking URI for `tracking.server` of params.yaml (see the module's docstring)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if server not in SERVER_MODES:
        return uri or DEFAULT_TRACKING_URI
    if not uri:
        raise TrackingServerError(
            f"params.yaml sets tracking.server: {server}, so runs and models go to the shared MLflow server, "
            "but MLFLOW_TRACKING_URI is not set: set it to the server's URL (Terraform output tracking_uri; "
            "in CI the repository variable MLFLOW_TRACKING_URI) with its credentials (MLFLOW_TRACKING_TOKEN, "
            "or MLFLOW_TRACKING_USERNAME/PASSWORD). Nothing falls back to a local mlruns.db; to track into "
            "the project's own file instead, remove tracking.server from params.yaml."
        )
    if urlsplit(uri).scheme in ("", "file", "sqlite"):
        raise TrackingServerError(
            f"params.yaml sets tracking.server: {server}, but MLFLOW_TRACKING_URI={uri} is a local store, "
            "not the shared server: set it to the server's https URL"
        )
    return uri


def check_server(uri: str) -> None:
    """One authenticated call to the server; TrackingServerError saying what failed and what to check."""
    for name, value in SERVER_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as error:  # every failure of the client means the same to the pipeline
        text = str(error)
        refused = (
            re.search(r"\b(401|403)\b", text) or "PERMISSION_DENIED" in text or "UNAUTHENTICATED" in text
        )
        if refused:
            reason = (
                "refused the credentials: check MLFLOW_TRACKING_TOKEN (in CI: the tracking-auth step and "
                "the token's audience) or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD, and that this "
                "identity may use the server"
            )
        else:
            reason = (
                "did not answer: check that the server is up (its health route, the load balancer's targets, "
                "its database), that MLFLOW_TRACKING_URI is its URL, and the network path to it"
            )
        first_line = text.strip().splitlines()[0][:300] if text.strip() else type(error).__name__
        first_line = _USERINFO.sub("//<credentials>@", first_line)
        raise TrackingServerError(
            f"the MLflow tracking server {redacted(uri)} {reason} ({RUNBOOK}). Nothing was logged and "
            f"nothing fell back to a local file. The client said: {first_line}"
        ) from error


class MlflowTracker:
    def __init__(self, experiment: str, registered_model: str, server: str = "local") -> None:
        self.experiment = experiment
        self.registered_model = registered_model
        self.uri = tracking_uri(server)
        if server in SERVER_MODES:
            check_server(self.uri)
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

    def log_model_files(self, run: Mapping[str, str], model_dir: Path) -> None:
        """Attach the model directory's files (ONNX, metadata, joblib) to the run, for fetch_champion()."""
        if run.get("backend") != "mlflow":
            return
        with mlflow.start_run(run_id=run["run_id"]):
            for name in MODEL_FILES:
                mlflow.log_artifact(str(model_dir / name), artifact_path=MODEL_FILES_PATH)

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

    def promote(self, run: Mapping[str, str]) -> str | None:
        """Register the model of a run that passed the gate, point the `champion` alias at it; its version.

        Only promoted models become versions of the registered model: a candidate the gate refuses stays
        a logged model of its run, never a version that a consumer of the registry could load.
        """
        if run.get("backend") != "mlflow":
            return None
        version = run.get("registered_version")  # earlier releases registered at training
        if version is None:
            version = mlflow.register_model(run["model_uri"], run["registered_model"]).version
        MlflowClient().set_registered_model_alias(run["registered_model"], CHAMPION_ALIAS, str(version))
        return str(version)


def set_champion(registered_model: str, version: str, server: str = "local") -> str | None:
    """Point the `champion` alias at `version` (a rollback: then redeploy); the version it named before."""
    uri = tracking_uri(server)
    if server in SERVER_MODES:
        check_server(uri)
    client = MlflowClient(uri)
    client.get_model_version(registered_model, version)  # fails clearly on a version that does not exist
    try:
        previous: str | None = str(
            client.get_model_version_by_alias(registered_model, CHAMPION_ALIAS).version
        )
    except MlflowException:
        previous = None
    client.set_registered_model_alias(registered_model, CHAMPION_ALIAS, str(version))
    return previous


def fetch_champion(
    registered_model: str, destination: Path, alias: str = CHAMPION_ALIAS, server: str = "local"
) -> ModelMetadata:
    """Download the model files of the version `alias` names into `destination` (replaced whole).

    The metadata records the registry version (tracking.registered_version) that the image's labels and the
    service's /version report. The ONNX file is checked against the metadata's SHA-256 before anything moves.
    """
    uri = tracking_uri(server)
    if server in SERVER_MODES:
        check_server(uri)
    client = MlflowClient(uri)
    version = client.get_model_version_by_alias(registered_model, alias)
    if not version.run_id:
        raise TrackingServerError(
            f"{registered_model} version {version.version} has no run to fetch files from"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=destination.parent) as scratch:
        downloaded = Path(client.download_artifacts(version.run_id, MODEL_FILES_PATH, dst_path=scratch))
        missing = [name for name in MODEL_FILES if not (downloaded / name).is_file()]
        if missing:
            raise TrackingServerError(
                f"{registered_model} version {version.version} (run {version.run_id}) has no "
                f"{MODEL_FILES_PATH}/{', '.join(missing)}: it was logged before the model files were; "
                "promote a newer version"
            )
        metadata = read_metadata(downloaded, ONNX_FILE)
        if metadata.onnx_sha256 and file_sha256(downloaded / ONNX_FILE) != metadata.onnx_sha256:
            raise TrackingServerError(
                f"{ONNX_FILE} of {registered_model} version {version.version} does not match its "
                "metadata.json"
            )
        tracking = {
            **metadata.tracking,
            "registered_model": registered_model,
            "registered_version": str(version.version),
            "registry_alias": alias,
        }
        metadata = replace(metadata, tracking=tracking)
        write_json(downloaded / METADATA_FILE, metadata.to_json(), sort_keys=False)
        downloaded.chmod(0o755)
        retired = Path(scratch) / "retired"
        if destination.exists():
            destination.rename(retired)
        downloaded.rename(destination)
    return metadata
