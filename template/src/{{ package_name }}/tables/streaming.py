"""Tables in record batches: inputs of any size read in bounded memory, outputs written as they are produced.

An input is a CSV or Parquet file, or a directory / object-store prefix of them (every `.csv` or
`.parquet` file under it, in name order; names starting with `.` or `_` are skipped, as Spark and Hive write
them). A directory Spark wrote (part files named `part-NNNNN-...`) is read only when it holds Spark's
`_SUCCESS` marker, which the job commit writes last: without it the job was interrupted or is still running,
and the folder is refused rather than read half-written.

CSV is read with every column as text, so a stray word in a numeric column is a failed check of that row
rather than an error halfway through the file; the input checks and the feature matrix convert numbers.

An output is written under a staging name beside its final name (`<name>.partial`) and only renamed to the
final name by `commit()`. A run that fails, or is killed, leaves no file under the final name; the next run
overwrites the staging file. On object stores the rename is a copy and a delete: the final object appears
whole or not at all.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .files import FORMATS, table_format

STAGING_SUFFIX = ".partial"
CSV_SAMPLE_BYTES = 1 << 16  # to estimate the bytes of a CSV row, and so the block that holds a batch of rows
MIN_CSV_BLOCK, MAX_CSV_BLOCK = 1 << 20, 1 << 26
SPARK_PART = re.compile(r"part-\d{5}-")  # the part files of a Spark job's output
SPARK_SUCCESS = "_SUCCESS"


def _visible(path: str) -> bool:
    return not any(part.startswith((".", "_")) for part in PurePosixPath(path).parts[-1:])


def input_files(uri: str) -> list[str]:
    """The files of an input: the file itself, or the CSV / Parquet files under a directory or prefix."""
    filesystem, path = fsspec.core.url_to_fs(uri)
    if filesystem.isdir(path):
        found = sorted(
            name
            for name in filesystem.find(path)
            if PurePosixPath(name).suffix.lower() in FORMATS and _visible(name)
        )
        if not found:
            raise ValueError(f"{uri}: no {' or '.join(FORMATS)} files in it")
        spark_parts = any(SPARK_PART.match(PurePosixPath(name).name) for name in found)
        if spark_parts and not filesystem.exists(f"{path.rstrip('/')}/{SPARK_SUCCESS}"):
            raise ValueError(
                f"{uri}: a Spark job's output without {SPARK_SUCCESS}: the job was interrupted or is still "
                "running; rerun it (it overwrites the folder)"
            )
        formats = {table_format(name) for name in found}
        if len(formats) > 1:
            raise ValueError(f"{uri}: holds both CSV and Parquet files; score one format at a time")
        return [filesystem.unstrip_protocol(name) if "://" in uri else name for name in found]
    table_format(uri)
    if not filesystem.exists(path):
        raise FileNotFoundError(f"{uri}: no such file or directory")
    return [uri]


def _csv_block_size(uri: str, rows: int) -> int:
    with fsspec.open(uri, "rb") as handle:
        sample = handle.read(CSV_SAMPLE_BYTES)
    bytes_per_row = len(sample) / max(sample.count(b"\n"), 1)
    return int(min(max(rows * bytes_per_row, MIN_CSV_BLOCK), MAX_CSV_BLOCK))


def _csv_header(uri: str) -> list[str]:
    with fsspec.open(uri, "rb") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        return next(csv.reader(text), [])


def record_batches(uri: str, rows: int) -> Iterator[pa.RecordBatch]:
    """The record batches of one file, about `rows` rows each (CSV: every column as text)."""
    if table_format(uri) == ".parquet":
        with fsspec.open(uri, "rb") as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=rows)
        return
    header = _csv_header(uri)
    if not header:
        return
    convert = pa_csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True)
    read = pa_csv.ReadOptions(block_size=_csv_block_size(uri, rows))
    with fsspec.open(uri, "rb") as handle:
        yield from pa_csv.open_csv(handle, read_options=read, convert_options=convert)


class StagedTable:
    """A CSV or Parquet output written batch by batch under its staging name, renamed to `uri` on commit."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.format = table_format(uri)
        self.staging = f"{uri}{STAGING_SUFFIX}"
        self.rows = 0
        self._filesystem, self._path = fsspec.core.url_to_fs(uri)
        self._staging_path = f"{self._path}{STAGING_SUFFIX}"
        self._handle: Any = None
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def _open(self) -> Any:
        if self._handle is None:
            self._filesystem.makedirs(PurePosixPath(self._staging_path).parent.as_posix(), exist_ok=True)
            self._handle = self._filesystem.open(self._staging_path, "wb")
        return self._handle

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of `frame` (every batch has the columns and types of the first)."""
        handle = self._open()
        if self.format == ".csv":
            frame.to_csv(handle, index=False, header=self.rows == 0)
        else:
            with warnings.catch_warnings():  # pyarrow reads Series.values, as pandas' own to_parquet does
                warnings.filterwarnings("ignore", "Series.values returning", category=DeprecationWarning)
                table = pa.Table.from_pandas(frame, preserve_index=False, schema=self._schema)
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(handle, table.schema)
            self._parquet.write_table(table)
        self.rows += len(frame)

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def commit(self, empty: pd.DataFrame) -> None:
        """Publish the staged file under the final name (`empty`: the columns to write when no row came)."""
        if self.rows == 0:
            self.write(empty)
        self._close()
        self._filesystem.mv(self._staging_path, self._path)

    def discard(self) -> None:
        """Drop the staged file: nothing appears under the final name."""
        self._close()
        if self._filesystem.exists(self._staging_path):
            self._filesystem.rm(self._staging_path)
