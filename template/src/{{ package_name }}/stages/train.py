"""The `train` stage: fit the estimator of params.yaml on the train split and save it with its metadata.

Training also learns what scoring and monitoring need of the data: the imputation values of nullable inputs,
the input ranges seen, a reference record (a real, typical training row: the example of the API and the
baseline of explanations) and the monitoring baseline (prediction shares per bucket and the median prediction
on the test split), all in models/metadata.json.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contract import Contract, load_contract
from ..metadata import ModelMetadata, MonitoringBaseline, file_sha256, write_json
from ..params import Params, load_params
from ..scoring.features import FeatureSpace
from ..scoring.outputs import OutputSpec, bucket_names
from ..tables.files import input_columns_of
from ..tracking import TrackingError, get_tracker
from ..training.artifacts import save_model
from ..training.estimators import build_estimator, encode_target, raw_output
from ..training.metrics import task_metrics
from ..training.provenance import git_sha

DEFAULT_MODEL_DIR = Path("models")
DECILES = 10


def training_ranges(frame: pd.DataFrame, contract: Contract) -> dict[str, list[float]]:
    """[min, max] of each numeric input on the train split: serving counts inputs outside it (drift)."""
    ranges = {}
    for name in contract.numeric:
        values = pd.to_numeric(frame[name], errors="coerce").dropna()
        if len(values):
            ranges[name] = [float(values.min()), float(values.max())]
    return ranges


def reference_record(frame: pd.DataFrame, contract: Contract) -> dict[str, Any]:
    """A typical record of the train split: the median of each numeric input, the most frequent category.

    Built column by column, it describes no real row (nothing personal leaks into the API docs or the image)
    and it lies inside the training ranges, so the example requests score like real data.
    """
    record: dict[str, Any] = {}
    for name, column in contract.columns.items():
        values = frame[name].dropna()
        if values.empty:
            record[name] = None
        elif column.dtype == "category":
            record[name] = str(values.astype(str).mode().iloc[0])
        else:
            median = float(pd.to_numeric(values).median())
            record[name] = round(median) if column.dtype == "int" else round(median, 6)
    return record


def monitoring_baseline(
    task: str, classes: list[Any], output: np.ndarray, threshold: float
) -> MonitoringBaseline:
    """Prediction shares per bucket and the median prediction on the test split (what monitoring expects)."""
    edges: list[float] = []
    if task == "regression":
        values = output.reshape(-1)
        edges = sorted(
            {round(float(q), 6) for q in np.quantile(values, np.linspace(0, 1, DECILES + 1)[1:-1])}
        )
    predictions = OutputSpec(task, classes, threshold, edges).from_output(output)
    buckets = bucket_names(task, classes, DECILES)
    counts = pd.Series(predictions.buckets).value_counts()
    total = max(len(predictions), 1)
    shares = {bucket: round(float(counts.get(bucket, 0)) / total, 6) for bucket in buckets}
    median = float(np.median(predictions.primary)) if len(predictions) else 0.0
    return MonitoringBaseline(buckets, shares, edges, round(median, 6))


def train(
    train_frame: pd.DataFrame, test_frame: pd.DataFrame, params: Params, contract: Contract
) -> tuple[Any, ModelMetadata, np.ndarray]:
    """Fit on train, score the test split; return the estimator, its metadata and the test matrix."""
    task, classes = contract.task, list(contract.target.classes)
    train_columns = input_columns_of(train_frame, contract)
    imputation = FeatureSpace.learn_imputation(contract, train_columns)
    features = FeatureSpace(contract, imputation)
    train_matrix = features.matrix(train_columns)
    test_matrix = features.matrix(input_columns_of(test_frame, contract))
    target = contract.target.column
    y_train = encode_target(train_frame[target].to_numpy(), task, contract.target.classes)
    y_test = encode_target(test_frame[target].to_numpy(), task, contract.target.classes)

    estimator = build_estimator(task, params.model)
    estimator.fit(train_matrix, y_train)
    output = raw_output(estimator, task, test_matrix)
    threshold = params.model.threshold if task == "binary" else None
    trained_at = datetime.now(UTC).replace(microsecond=0)
    sha = git_sha()
    metadata = ModelMetadata(
        model_version=f"{trained_at:%Y%m%d.%H%M%S}-{sha[:7]}",
        trained_at=trained_at.isoformat().replace("+00:00", "Z"),
        git_sha=sha,
        data_hash=file_sha256(params.raw_data) if params.raw_data.is_file() else "unknown",
        task=task,
        target=target,
        classes=classes,
        threshold=threshold,
        feature_names=list(features.names),
        input_columns=list(contract.input_columns),
        # the median of every numeric input (nullable ones are filled with it); categories have their own slot
        imputation=imputation | dict.fromkeys(contract.categorical),
        training_ranges=training_ranges(train_frame, contract),
        reference_record=reference_record(train_frame, contract),
        monitoring=monitoring_baseline(task, classes, output, params.model.threshold),
        metrics=task_metrics(task, y_test, output, classes, params.model.threshold),
        params={"split": params.raw["split"], "model": params.raw["model"]},
        training_rows=len(train_frame),
    )
    return estimator, metadata, test_matrix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the model of params.yaml on the train split.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument(
        "--example", type=Path, default=Path("reports/example.json"), help="where the reference record goes"
    )
    args = parser.parse_args(argv)
    params = load_params(args.params)
    contract = load_contract()
    try:
        tracker = get_tracker(params.tracking)  # a tracking server that is down fails before training
    except TrackingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    train_frame = pd.read_parquet(args.data_dir / "train.parquet")
    test_frame = pd.read_parquet(args.data_dir / "test.parquet")
    estimator, metadata, test_matrix = train(train_frame, test_frame, params, contract)
    try:
        tracking = tracker.log_training(params.raw, metadata, estimator)
        metadata = replace(metadata, tracking=tracking)
        parity = save_model(args.model_dir, estimator, metadata, parity_matrix=test_matrix)
        tracker.log_model_files(tracking, args.model_dir)
    except TrackingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    write_json(args.example, metadata.reference_record, sort_keys=False)
    shown = ", ".join(
        f"{name} {value:.4f}" for name, value in metadata.metrics.items() if not name.startswith("recall_")
    )
    print(f"{params.model.type} ({contract.task}) {metadata.model_version}: {shown} on the test split")
    print(f"ONNX export matches scikit-learn within {parity:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
