"""Explain one prediction: how much each input moves the model's primary output.

`python -m <package>.explain '<json record>'` (no argument: the first record of the test split). The primary
output is the score (binary), the probability of the predicted class (multiclass) or the predicted value
(regression). Each input's contribution is the change in that output when the input alone is set to its value
in the model's reference record (a typical training row, metadata.json); the model is a black box, so this
works for every model type and task.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .contract import ContractError
from .metadata import ModelArtifactError
from .scoring.model import ScoringModel, load_onnx_model


def explain(model: ScoringModel, record: dict[str, Any]) -> dict[str, Any]:
    """The prediction, the reference prediction and per-input contributions (largest effect first)."""
    reference = model.metadata.reference_record
    inputs = list(model.features.contract.input_columns)
    variants = [record, reference] + [{**record, name: reference[name]} for name in inputs]
    predictions = model.predict_records(variants)
    own = predictions.records[0]
    if model.metadata.task == "multiclass":  # follow the predicted class's probability in every variant
        label = str(own["predicted_class"])
        values = [float(row["probabilities"][label]) for row in predictions.records]
    else:
        values = predictions.primary
    contributions = [
        {
            "feature": name,
            "value": record.get(name),
            "reference": reference[name],
            "contribution": round(values[0] - replaced, 6),
        }
        for name, replaced in zip(inputs, values[2:], strict=True)
    ]
    contributions.sort(key=lambda item: abs(item["contribution"]), reverse=True)
    return {
        "model_version": model.model_version,
        "task": model.metadata.task,
        "prediction": own,
        "explained_value": round(values[0], 6),
        "reference_value": round(values[1], 6),
        "contributions": contributions,
    }


def _first_test_record(path: Path, inputs: list[str]) -> dict[str, Any]:
    import pandas as pd  # batch-side dependency, needed only when no record is given

    row = pd.read_parquet(path, columns=inputs).iloc[0]
    return {
        name: None if pd.isna(row[name]) else (row[name].item() if hasattr(row[name], "item") else row[name])
        for name in inputs
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Explain a single prediction of the champion model.")
    parser.add_argument("record", nargs="?", help="JSON object with the model inputs")
    parser.add_argument("--model-dir", type=Path, default=Path("models/champion"))
    parser.add_argument("--test-data", type=Path, default=Path("data/processed/test.parquet"))
    args = parser.parse_args(argv)
    try:
        model = load_onnx_model(args.model_dir)
        inputs = list(model.features.contract.input_columns)
        record = json.loads(args.record) if args.record else _first_test_record(args.test_data, inputs)
        if not isinstance(record, dict):
            raise ValueError("the record must be a JSON object")
        explanation = explain(model, record)
    except (ModelArtifactError, ContractError, ValueError, KeyError, OSError) as error:
        print(f"cannot explain: {error}", file=sys.stderr)
        return 2
    print(json.dumps(explanation, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
