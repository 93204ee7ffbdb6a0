"""Explain one prediction: how much each input moves the churn probability.

`python -m <package>.explain '<json record>'` (no argument: the first record of the test split). Each input's
contribution is the change in probability when that input alone is set back to the training set's typical
value (median number, most frequent category); the model is a black box, so this works for every model type.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import ModelArtifactError, ScoringModel, load_model
from .contract import FEATURE_COLUMNS
from .features import records_to_columns


def explain(model: ScoringModel, record: dict[str, Any]) -> dict[str, Any]:
    """Score, reference score and per-input contributions (largest effect first)."""
    reference = model.metadata["reference_record"]
    variants = [record] + [{**record, name: reference[name]} for name in FEATURE_COLUMNS]
    scores = model.score(records_to_columns(variants))
    score = float(scores[0])
    contributions = [
        {
            "feature": name,
            "value": record[name],
            "reference": reference[name],
            "contribution": round(score - float(replaced), 6),
        }
        for name, replaced in zip(FEATURE_COLUMNS, scores[1:], strict=True)
    ]
    contributions.sort(key=lambda item: abs(item["contribution"]), reverse=True)
    reference_score = float(model.score(records_to_columns([reference]))[0])
    return {
        "model_version": model.model_version,
        "churn_probability": round(score, 6),
        "predicted_class": int(model.predict(np.array([score]))[0]),
        "reference_probability": round(reference_score, 6),
        "contributions": contributions,
    }


def _first_test_record(path: Path) -> dict[str, Any]:
    import pandas as pd  # training-side dependency, needed only when no record is given

    row = pd.read_parquet(path, columns=list(FEATURE_COLUMNS)).iloc[0]
    return {name: row[name].item() if hasattr(row[name], "item") else row[name] for name in FEATURE_COLUMNS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Explain a single prediction of the champion model.")
    parser.add_argument("record", nargs="?", help="JSON object with the model inputs")
    parser.add_argument("--model-dir", type=Path, default=Path("models/champion"))
    parser.add_argument("--test-data", type=Path, default=Path("data/processed/test.parquet"))
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model_dir)
        record = json.loads(args.record) if args.record else _first_test_record(args.test_data)
        if not isinstance(record, dict):
            raise ValueError("the record must be a JSON object")
        explanation = explain(model, record)
    except (ModelArtifactError, ValueError, KeyError, OSError) as error:
        print(f"cannot explain: {error}", file=sys.stderr)
        return 2
    print(json.dumps(explanation, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
