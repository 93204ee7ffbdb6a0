"""The `train` stage: fit the estimator chosen in params.yaml on the train split and save it with metadata."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .artifacts import save_model
from .contract import FEATURE_COLUMNS, NUMERIC, TARGET, input_schema
from .features import FEATURE_NAMES, build_matrix
from .metrics import classification_metrics
from .params import ModelParams, Params, load_params
from .provenance import file_sha256, git_sha
from .tracking import get_tracker

DEFAULT_MODEL_DIR = Path("models")


def matrix_of(frame: pd.DataFrame) -> np.ndarray:
    return build_matrix({name: frame[name].to_numpy() for name in FEATURE_COLUMNS})


def build_estimator(params: ModelParams) -> Any:
    """An unfitted estimator of params.type with its hyperparameters from params.yaml."""
    if params.type == "logistic_regression":
        model = LogisticRegression(random_state=params.seed, **params.hyperparameters)
        return Pipeline([("scale", StandardScaler()), ("model", model)])
    return HistGradientBoostingClassifier(random_state=params.seed, **params.hyperparameters)


def training_ranges(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Observed range of each numeric input: serving counts inputs outside it (a cheap drift signal)."""
    return {name: {"min": float(frame[name].min()), "max": float(frame[name].max())} for name in NUMERIC}


def reference_record(frame: pd.DataFrame) -> dict[str, Any]:
    """A typical customer (median numbers, most frequent categories): the baseline of explanations."""
    record: dict[str, Any] = {}
    for name in FEATURE_COLUMNS:
        if name in NUMERIC:
            record[name] = round(float(frame[name].median()), 4)
        else:
            record[name] = str(frame[name].mode().iloc[0])
    return record


def train(train_frame: pd.DataFrame, test_frame: pd.DataFrame, params: Params) -> tuple[Any, dict[str, Any]]:
    """Fit on train, score the test split; return the estimator and its metadata (no tracking, no files)."""
    estimator = build_estimator(params.model)
    estimator.fit(matrix_of(train_frame), train_frame[TARGET].to_numpy())
    scores = estimator.predict_proba(matrix_of(test_frame))[:, 1]
    trained_at = datetime.now(UTC).replace(microsecond=0)
    sha = git_sha()
    metadata = {
        "model_version": f"{trained_at:%Y%m%d.%H%M%S}-{sha[:7]}",
        "trained_at": trained_at.isoformat().replace("+00:00", "Z"),
        "git_sha": sha,
        "data_hash": file_sha256(params.raw_data) if params.raw_data.is_file() else "unknown",
        "params": {"split": params.raw["split"], "model": params.raw["model"]},
        "metrics": classification_metrics(test_frame[TARGET].to_numpy(), scores, params.model.threshold),
        "feature_names": list(FEATURE_NAMES),
        "input_schema": input_schema(),
        "training_ranges": training_ranges(train_frame),
        "reference_record": reference_record(train_frame),
        "threshold": params.model.threshold,
        "training_rows": len(train_frame),
    }
    return estimator, metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the churn model.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    train_frame = pd.read_parquet(args.data_dir / "train.parquet")
    test_frame = pd.read_parquet(args.data_dir / "test.parquet")
    estimator, metadata = train(train_frame, test_frame, params)
    metadata["tracking"] = get_tracker(params.tracking).log_training(params.raw, metadata, estimator)
    save_model(args.model_dir, estimator, metadata, parity_matrix=matrix_of(test_frame))
    metrics = metadata["metrics"]
    print(
        f"{params.model.type} {metadata['model_version']}: "
        f"roc_auc {metrics.get('roc_auc', float('nan')):.4f}, brier {metrics['brier']:.4f} on the test split"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
