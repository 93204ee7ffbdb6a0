"""models/<dir>/metadata.json as a typed record: what a trained model is, and what every consumer reads of it.

Training writes it; the gate, the service, batch scoring, explanations, drift, the model card and monitoring
read it through ModelMetadata, never by string keys. Stdlib only (the service and the client import it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

METADATA_FILE = "metadata.json"
Label = int | str


class ModelArtifactError(RuntimeError):
    """A model directory is missing a file, or holds a model built for other features or another task."""


@dataclass(frozen=True)
class MonitoringBaseline:
    """What monitoring compares live predictions with, measured on the test split at training time.

    buckets: the prediction buckets (class labels; deciles "q0".."q9" of the predictions for regression);
    expected_shares: share of test predictions per bucket; bucket_edges: inner decile edges (regression);
    median: median of the primary prediction value (score, top probability or predicted value).
    """

    buckets: list[str]
    expected_shares: dict[str, float]
    bucket_edges: list[float]
    median: float


@dataclass(frozen=True)
class ModelMetadata:
    model_version: str
    trained_at: str
    git_sha: str
    data_hash: str
    task: str
    target: str
    classes: list[Label]
    threshold: float | None
    feature_names: list[str]
    input_columns: list[str]
    imputation: dict[str, float | None]
    training_ranges: dict[str, list[float]]
    reference_record: dict[str, Any]
    monitoring: MonitoringBaseline
    metrics: dict[str, Any]
    params: dict[str, Any]
    training_rows: int
    tracking: dict[str, str] = field(default_factory=lambda: {"backend": "none"})
    # SHA-256 of model.onnx, written with it at training: another model.onnx is refused at load. Empty in
    # metadata written before the field existed (nothing to check then).
    onnx_sha256: str = ""

    @property
    def trained_at_epoch(self) -> float | None:
        try:
            return datetime.fromisoformat(self.trained_at).timestamp()
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: Any) -> ModelMetadata:
        if not isinstance(document, dict):
            raise ModelArtifactError(
                f"metadata.json holds a {type(document).__name__}, not an object: retrain (make pipeline)"
            )
        try:
            values = dict(document)
            values["monitoring"] = MonitoringBaseline(**values["monitoring"])
            return cls(**values)
        except (KeyError, TypeError) as error:
            raise ModelArtifactError(
                f"metadata.json is incomplete or from an older release ({error}): retrain (make pipeline)"
            ) from None


def read_metadata(directory: Path, *required_files: str) -> ModelMetadata:
    """The metadata of a model directory, after checking that it holds `required_files`."""
    for path in (*(directory / name for name in required_files), directory / METADATA_FILE):
        if not path.is_file():
            raise ModelArtifactError(
                f"{path} does not exist: train and promote a model first (make pipeline)"
            )
    try:
        document = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    except ValueError as error:  # not JSON, or not UTF-8
        raise ModelArtifactError(f"{directory / METADATA_FILE} is not valid JSON ({error})") from None
    return ModelMetadata.from_json(document)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: Path, payload: Any, *, sort_keys: bool = True) -> None:
    """Pretty JSON; sort_keys=False keeps a meaningful order (a record's inputs in contract order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=sort_keys) + "\n", encoding="utf-8")
