"""Batch scoring: `python -m <package>.batch --input <csv|parquet> --output <csv|parquet>`.

Paths may be object-store URIs (s3://, gs://, az://). --input/--output default to BATCH_INPUT_URI and
BATCH_OUTPUT_URI, --model-dir to MODEL_DIR (else models/champion), so the serving image runs it as a job with
environment variables only. The output has the id and timestamp columns of the contract (when the input has
them), the task's prediction columns (scoring/outputs.py: score and predicted_class; predicted_class and
probability_<class>; or prediction), model_version and scored_at. Inputs that break the contract are rejected
as a whole: nothing is scored, and a report naming every failing rule and row is written to
<output>.validation.json. Exit codes: 0 scored, 1 rejected input, 2 bad usage or missing model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pandas as pd

from .contract import Contract, load_contract
from .metadata import ModelArtifactError
from .scoring.model import load_onnx_model
from .tables.files import input_columns_of, read_table, write_table
from .tables.input_checks import check_inputs

DEFAULT_MODEL_DIR = "models/champion"


def score_frame(frame: pd.DataFrame, model_dir: Path, contract: Contract) -> pd.DataFrame:
    """Predictions of contract-valid rows: keys (when present), the task's columns, model version."""
    model = load_onnx_model(model_dir, contract)  # the model the service runs, without training dependencies
    result = model.predict_columns(input_columns_of(frame, contract))
    predictions = frame.loc[:, [name for name in contract.key_columns if name in frame.columns]].copy()
    for name, values in model.outputs.batch_columns(result).items():
        predictions[name] = values
    predictions["model_version"] = model.model_version
    predictions["scored_at"] = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return predictions


def _write_report(uri: str, report: dict[str, object]) -> None:
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    with fsspec.open(uri, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a table with the champion model.")
    parser.add_argument("--input", default=os.environ.get("BATCH_INPUT_URI"), help="env: BATCH_INPUT_URI")
    parser.add_argument("--output", default=os.environ.get("BATCH_OUTPUT_URI"), help="env: BATCH_OUTPUT_URI")
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", DEFAULT_MODEL_DIR))
    )
    args = parser.parse_args(argv)
    if not args.input or not args.output:
        parser.error("--input and --output (or BATCH_INPUT_URI and BATCH_OUTPUT_URI) are required")

    contract = load_contract()
    try:
        frame = read_table(args.input, contract)
    except (OSError, ValueError) as error:
        print(f"cannot read {args.input}: {error}", file=sys.stderr)
        return 2
    report = check_inputs(frame, source=args.input, contract=contract)
    if not report.passed:
        report_uri = f"{args.output}.validation.json"
        _write_report(report_uri, report.to_dict())
        print(f"{report.summary()}\nrejected: nothing scored; report in {report_uri}", file=sys.stderr)
        return 1
    try:
        predictions = score_frame(frame, args.model_dir, contract)
    except ModelArtifactError as error:
        print(str(error), file=sys.stderr)
        return 2
    write_table(predictions, args.output)
    version = predictions["model_version"].iloc[0] if len(predictions) else "-"
    print(f"scored {len(predictions)} rows with model {version} into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
