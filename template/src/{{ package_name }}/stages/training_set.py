"""The `features` stage of a project with a feature store: the training set by a point-in-time join.

The labels (id, event timestamp, target of the validated data) are joined with the feature view as of each
label's timestamp (Feast's get_historical_features), then split exactly as stages/features.py splits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..contract import load_contract
from ..feature_store.offline import training_frame
from ..feature_store.repository import FeatureStoreError, open_store, require_keys
from ..params import load_params
from ..tables.files import read_table, write_table
from .features import describe, split_frame, split_reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the train and test sets from the feature store.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--output-dir", type=Path, default=Path("data/processed"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    contract = load_contract()
    try:
        require_keys(contract)
        store = open_store()
    except FeatureStoreError as error:
        print(f"features: {error}", file=sys.stderr)
        return 1
    print(split_reason(contract, params.split))
    frame = training_frame(store, contract, read_table(str(params.raw_data), contract))
    train, test = split_frame(frame, params.split, contract)
    write_table(train, str(args.output_dir / "train.parquet"))
    write_table(test, str(args.output_dir / "test.parquet"))
    print(
        f"point-in-time training set: train: {len(train)} rows ({describe(train, contract)}); "
        f"test: {len(test)} rows ({describe(test, contract)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
