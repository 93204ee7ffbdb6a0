"""The offline side: the feature view's source table, and the point-in-time reads through it: the training
set, and the records of batch scoring by id."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pandas as pd
from feast import FeatureStore

from ..contract import Contract
from .repository import FeatureStoreError, feature_refs, require_keys


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
    """The source as `path` (the stage's DVC output) and, in a cloud, the same rows at `copy_to`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    source = source_frame(frame, contract)
    source.to_parquet(path, index=False)
    if copy_to and copy_to != str(path):
        # one object written through fsspec (s3fs, gcsfs or adlfs of the project's batch dependencies)
        with fsspec.open(copy_to, "wb") as handle:
            source.to_parquet(handle, index=False)
    return len(source)


def training_frame(store: FeatureStore, contract: Contract, labels: pd.DataFrame) -> pd.DataFrame:
    """Each label row (id, event timestamp, target) with the inputs as they were at its timestamp.

    Feast's point-in-time join takes, per row, the entity's latest feature row at or before the row's
    timestamp (and within the view's ttl_days): a value recorded after the label never reaches it.
    """
    id_column, timestamp_column = require_keys(contract)
    entities = labels.loc[:, [id_column, timestamp_column, contract.target.column]].copy()
    joined = _as_of(store, contract, entities)
    return joined.loc[:, [id_column, timestamp_column, *contract.input_columns, contract.target.column]]


def records_of_ids(
    store: FeatureStore, contract: Contract, ids: pd.DataFrame, as_of: datetime
) -> pd.DataFrame:
    """Full records (id, event timestamp, inputs) of the rows of `ids`, in their order: batch scoring by id.

    Each id's inputs are read from the offline store as of the row's event timestamp when `ids` has the
    contract's timestamp column, else as of `as_of`: the same point-in-time join as the training set, so a
    re-run for a past date scores the values of that date. An id without a feature row by then keeps empty
    inputs, which the batch's contract check rejects like any incomplete record.
    """
    id_column, timestamp_column = require_keys(contract)
    if id_column not in ids.columns:
        raise FeatureStoreError(f"scoring by id needs the id column {id_column!r} in the input")
    entities = pd.DataFrame({id_column: ids[id_column]})
    if timestamp_column in ids.columns:
        entities[timestamp_column] = pd.to_datetime(ids[timestamp_column], utc=True)
    else:
        entities[timestamp_column] = pd.Timestamp(as_of).tz_convert(UTC)
    return _as_of(store, contract, entities).loc[:, [id_column, timestamp_column, *contract.input_columns]]


def _as_of(store: FeatureStore, contract: Contract, entities: pd.DataFrame) -> pd.DataFrame:
    """`entities` (id, event timestamp, anything else) joined with the view's inputs as of each timestamp, in
    the rows' order, typed as tables/files.read_table types the raw data (integers as int64 unless one is
    missing, categories as text or None)."""
    id_column, _ = require_keys(contract)
    entities = entities.copy()
    entities[id_column] = entities[id_column].astype(str)
    entities["_row"] = range(len(entities))
    joined = store.get_historical_features(entity_df=entities, features=feature_refs(contract)).to_df()
    joined = joined.sort_values("_row", kind="stable").drop(columns="_row").reset_index(drop=True)
    for name, column in contract.columns.items():
        if column.is_numeric:
            values = pd.to_numeric(joined[name]).astype("float64")
            complete = column.dtype == "int" and not values.isna().any()
            joined[name] = values.astype("int64") if complete else values
        else:
            joined[name] = joined[name].astype(object).where(joined[name].notna(), None)
    return joined
