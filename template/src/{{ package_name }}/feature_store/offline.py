"""The offline side: the feature view's source table, and the point-in-time training set read through it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from feast import FeatureStore

from ..contract import Contract
from .repository import feature_refs, require_keys


def source_frame(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The validated data as the feature view's source: id (as text), event timestamp, the contract's inputs.

    Integer inputs are written as nullable integers, so a missing value stays missing rather than a float NaN.
    """
    id_column, timestamp_column = require_keys(contract)
    source = frame.loc[:, [id_column, timestamp_column, *contract.input_columns]].copy()
    source[id_column] = source[id_column].astype(str)
    for name, column in contract.columns.items():
        if column.dtype == "int":
            source[name] = pd.to_numeric(source[name]).round().astype("Int64")
        elif column.dtype == "float":
            source[name] = pd.to_numeric(source[name]).astype("float64")
    return source


def write_source(frame: pd.DataFrame, contract: Contract, path: Path, copy_to: str | None = None) -> int:
    """The source as `path` (the stage's DVC output) and, in a cloud, the same bytes at `copy_to` (the bucket)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    source = source_frame(frame, contract)
    source.to_parquet(path, index=False)
    if copy_to and copy_to != str(path):
        source.to_parquet(copy_to, index=False)  # s3fs / gcsfs / adlfs of the project's batch dependencies
    return len(source)


def training_frame(store: FeatureStore, contract: Contract, labels: pd.DataFrame) -> pd.DataFrame:
    """Each label row (id, event timestamp, target) with the inputs as they were at its timestamp.

    Feast's point-in-time join takes, per row, the entity's latest feature row at or before the row's
    timestamp (and within the view's ttl_days): a value recorded after the label never reaches it.
    """
    id_column, timestamp_column = require_keys(contract)
    entities = labels.loc[:, [id_column, timestamp_column, contract.target.column]].copy()
    entities[id_column] = entities[id_column].astype(str)
    entities["_row"] = range(len(entities))
    joined = store.get_historical_features(entity_df=entities, features=feature_refs(contract)).to_df()
    joined = joined.sort_values("_row", kind="stable").drop(columns="_row").reset_index(drop=True)
    # typed as tables/files.read_table types the raw data: integers as int64 unless one is missing
    for name, column in contract.columns.items():
        if column.is_numeric:
            values = pd.to_numeric(joined[name]).astype("float64")
            complete = column.dtype == "int" and not values.isna().any()
            joined[name] = values.astype("int64") if complete else values
        else:
            joined[name] = joined[name].astype(object).where(joined[name].notna(), None)
    return joined.loc[:, [id_column, timestamp_column, *contract.input_columns, contract.target.column]]
