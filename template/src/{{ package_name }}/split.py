"""The `features` stage: split validated raw data into train and test sets of model inputs plus the target.

Features themselves are computed from these columns by `features.build_matrix` at training and serving time,
so the split files are also the drift reference (data/processed/train.parquet) for production inputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from .contract import FEATURE_COLUMNS, ID_COLUMN, TARGET, TIMESTAMP_COLUMN
from .params import SplitParams, load_params
from .tables import read_table, write_table

KEPT_COLUMNS = (ID_COLUMN, TIMESTAMP_COLUMN, *FEATURE_COLUMNS, TARGET)


def split_frame(frame: pd.DataFrame, params: SplitParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test). `time` holds out the latest records, as production will score the future."""
    frame = frame.loc[:, list(KEPT_COLUMNS)]
    if params.strategy == "time":
        ordered = frame.sort_values([TIMESTAMP_COLUMN, ID_COLUMN], kind="stable").reset_index(drop=True)
        n_test = max(1, round(len(ordered) * params.test_size))
        return ordered.iloc[:-n_test].reset_index(drop=True), ordered.iloc[-n_test:].reset_index(drop=True)
    train, test = train_test_split(
        frame, test_size=params.test_size, random_state=params.seed, stratify=frame[TARGET]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Split raw data into train and test sets.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--output-dir", type=Path, default=Path("data/processed"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    train, test = split_frame(read_table(str(params.raw_data)), params.split)
    write_table(train, str(args.output_dir / "train.parquet"))
    write_table(test, str(args.output_dir / "test.parquet"))
    print(
        f"train: {len(train)} rows (churn rate {train[TARGET].mean():.3f}); "
        f"test: {len(test)} rows (churn rate {test[TARGET].mean():.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
