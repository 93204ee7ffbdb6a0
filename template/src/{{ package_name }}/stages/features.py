"""The `features` stage: split the validated raw data into the train and test sets.

The sets keep the id, the timestamp, the model inputs and the target; the model matrix is built from them by
scoring.features at training and serving time, so data/processed/train.parquet is also the drift reference.

split.strategy: `time` holds out the latest records (as production scores the future; needs a timestamp in
the contract), `stratified` keeps the class shares in both sets (classification), `random` does neither;
`auto` is time when the contract has a timestamp, else stratified for classification and random for
regression.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from ..contract import Contract, load_contract
from ..params import SplitParams, load_params
from ..tables.files import read_table, write_table


def resolved_strategy(contract: Contract, params: SplitParams) -> str:
    if params.strategy == "auto":
        if contract.timestamp_column:
            return "time"
        return "stratified" if contract.target.is_classification else "random"
    if params.strategy == "time" and not contract.timestamp_column:
        raise ValueError("split.strategy is time, but the contract names no timestamp column")
    if params.strategy == "stratified" and not contract.target.is_classification:
        raise ValueError("split.strategy stratified needs a classification target; use random or auto")
    return params.strategy


def split_reason(contract: Contract, params: SplitParams) -> str:
    """Which split `make pipeline` uses and why, in words (the features stage prints it)."""
    strategy = resolved_strategy(contract, params)
    why = "split.strategy is auto and " if params.strategy == "auto" else "split.strategy says so"
    if params.strategy == "auto":
        if strategy == "time":
            why += f"the contract's timestamp is {contract.timestamp_column!r}"
        else:
            kind = "a classification" if strategy == "stratified" else "a regression"
            why += f"the contract has no timestamp and {kind} target"
    held_out = f"the latest {params.test_size:.0%} of the rows by {contract.timestamp_column!r}"
    if strategy != "time":
        held_out = f"a random {params.test_size:.0%} of the rows (seed {params.seed})"
        if strategy == "stratified":
            held_out += " with the class shares of the whole"
    hint = ""
    if strategy == "time":
        hint = (
            f"; if {contract.timestamp_column!r} is not when each event happened, drop `timestamp:` from "
            "contract.yaml or set split.strategy in params.yaml"
        )
    return f"split: {strategy} ({why}): the test set is {held_out}{hint}"


def split_frame(
    frame: pd.DataFrame, params: SplitParams, contract: Contract
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of the contract's columns."""
    kept = [*contract.key_columns, *contract.input_columns, contract.target.column]
    frame = frame.loc[:, kept]
    strategy = resolved_strategy(contract, params)
    if strategy == "time":
        order = [name for name in (contract.timestamp_column, contract.id_column) if name]
        ordered = frame.sort_values(order, kind="stable").reset_index(drop=True)
        n_test = max(1, round(len(ordered) * params.test_size))
        return ordered.iloc[:-n_test].reset_index(drop=True), ordered.iloc[-n_test:].reset_index(drop=True)
    stratify = frame[contract.target.column] if strategy == "stratified" else None
    train, test = train_test_split(
        frame, test_size=params.test_size, random_state=params.seed, stratify=stratify
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def describe(frame: pd.DataFrame, contract: Contract) -> str:
    target = frame[contract.target.column]
    if contract.target.is_classification:
        shares = target.value_counts(normalize=True).sort_index()
        return ", ".join(f"{label}: {share:.3f}" for label, share in shares.items())
    return f"mean {target.mean():.4g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Split the raw data into train and test sets.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--output-dir", type=Path, default=Path("data/processed"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    contract = load_contract()
    print(split_reason(contract, params.split))
    train, test = split_frame(read_table(str(params.raw_data), contract), params.split, contract)
    write_table(train, str(args.output_dir / "train.parquet"))
    write_table(test, str(args.output_dir / "test.parquet"))
    print(
        f"train: {len(train)} rows ({describe(train, contract)}); "
        f"test: {len(test)} rows ({describe(test, contract)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
