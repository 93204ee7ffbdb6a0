"""Reading and writing tables (CSV or Parquet) from local paths or object-store URIs (s3://, gs://, az://).

pandas hands URIs to fsspec, so the project's cloud filesystem (s3fs, gcsfs or adlfs) is all that is needed.
Columns are read as the contract types them: ids and categories as strings, the timestamp as UTC datetimes.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from ..contract import Contract, load_contract

FORMATS = (".csv", ".parquet")


def table_format(uri: str) -> str:
    suffix = PurePosixPath(uri.split("?", 1)[0]).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"{uri}: unsupported file type {suffix or '(none)'!r}; use one of {', '.join(FORMATS)}"
        )
    return suffix


def string_columns(contract: Contract) -> list[str]:
    """Columns read as strings: the id, the categorical inputs, and a target whose classes are strings."""
    names = [name for name in (contract.id_column,) if name] + list(contract.categorical)
    if contract.target.classes and isinstance(contract.target.classes[0], str):
        names.append(contract.target.column)
    return names


def read_table(uri: str, contract: Contract | None = None) -> pd.DataFrame:
    """A table typed by the contract (unparseable timestamps become NaT, which validation reports)."""
    contract = contract or load_contract()
    if table_format(uri) == ".csv":
        frame = pd.read_csv(uri, dtype=dict.fromkeys(string_columns(contract), str))
    else:
        frame = with_string_columns(pd.read_parquet(uri), contract)
    return with_utc_timestamp(frame, contract)


def with_string_columns(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The contract's string columns (id, categories, string classes) as str, missing values as None."""
    for name in string_columns(contract):
        if name in frame.columns:
            text = frame[name].astype("string")  # str() of each value, column-wise; missing stays missing
            frame[name] = text.astype(object).where(text.notna(), None)
    return frame


def with_utc_timestamp(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The contract's timestamp as UTC datetimes (NaT where a value does not parse)."""
    timestamp = contract.timestamp_column
    if timestamp and timestamp in frame.columns:
        frame[timestamp] = pd.to_datetime(frame[timestamp], utc=True, errors="coerce")
    return frame


def write_table(frame: pd.DataFrame, uri: str) -> None:
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    if table_format(uri) == ".csv":
        frame.to_csv(uri, index=False)
    else:
        frame.to_parquet(uri, index=False)


def input_columns_of(frame: pd.DataFrame, contract: Contract) -> dict[str, Any]:
    """The model inputs of a frame as the arrays FeatureSpace.matrix takes (missing values as NaN / None)."""
    columns: dict[str, Any] = {}
    for name, column in contract.columns.items():
        series = frame[name]
        if column.is_numeric:
            columns[name] = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
        else:
            columns[name] = series.astype(object).where(series.notna(), None).to_numpy()
    return columns
