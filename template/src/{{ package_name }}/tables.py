"""Reading and writing tables (CSV or Parquet) from local paths or object-store URIs (s3://, gs://, az://).

pandas hands URIs to fsspec, so the project's cloud filesystem (s3fs, gcsfs or adlfs) is all that is needed.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd

from .contract import CATEGORICAL, ID_COLUMN, TIMESTAMP_COLUMN

FORMATS = (".csv", ".parquet")


def table_format(uri: str) -> str:
    suffix = PurePosixPath(uri.split("?", 1)[0]).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"{uri}: unsupported file type {suffix or '(none)'!r}; use one of {', '.join(FORMATS)}"
        )
    return suffix


def read_table(uri: str) -> pd.DataFrame:
    """A table of customer records; ids and categories stay strings, timestamps become UTC datetimes."""
    if table_format(uri) == ".csv":
        frame = pd.read_csv(uri, dtype={ID_COLUMN: str, **{name: str for name in CATEGORICAL}})
    else:
        frame = pd.read_parquet(uri)
    if TIMESTAMP_COLUMN in frame.columns:
        # Unparseable timestamps become NaT, which validation reports as missing values.
        frame[TIMESTAMP_COLUMN] = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True, errors="coerce")
    return frame


def write_table(frame: pd.DataFrame, uri: str) -> None:
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    if table_format(uri) == ".csv":
        frame.to_csv(uri, index=False)
    else:
        frame.to_parquet(uri, index=False)
