"""Batch scoring on Apache Spark: `python -m <package>.spark_batch --input <uri> --output <uri>`.

The adapter that runs batch.py's scoring core on a Spark cluster (EMR Serverless, Dataproc Serverless, the
Spark Operator on the project's Kubernetes cluster, or `local[N]`); it owns only what is Spark's: the session,
reading the input into partitions (the Hadoop path of each file: `hadoop_path`), shipping the model to the
executors, and writing the output with Spark's committer.
Checking and scoring are batch.py's, unchanged: every Arrow record batch of a partition goes through
`batch.score_chunk` (the contract's input checks, `score_frame`, the reasons of `rejects_of`) inside
`mapInArrow`, so Spark and `python -m <package>.batch` give the same predictions, columns and rejects.

- The model (the files of `--model-dir`) and contract.yaml are broadcast once; each executor's Python worker
  loads them once (onnxruntime single-threaded, as scoring/model.py sets it: Spark runs one task per core).
- CSV is read with every column as text, as tables/streaming.py reads it, so a stray word in a numeric column
  is a rejected row, not a failed job. The input files are listed by tables/streaming.py (same rules).
- Outputs are directories of part files named like batch.py's files: `<output>` (predictions) and
  `<output stem>.rejects.<ext>`, each with Spark's `_SUCCESS` marker, written last by the job commit; a
  killed run leaves a directory without it, which tables/streaming.py (and so `python -m <package>.batch`
  and the drift job) refuses to read. A rerun overwrites. `<output>.validation.json` has the counts.
- `--on-invalid` and `--max-rejected-fraction` mean what they mean for batch.py: quarantine publishes the
  rejects and, below the threshold, the predictions; reject publishes nothing when a row is bad.
- `row_number` of a reject is Spark's row id (`monotonically_increasing_id`): unique in the run and in input
  order within a file, not a position counted across files; `source` is the row's file.

pyspark is not a dependency of the project: the Spark runtime provides it (`uv pip install pyspark` to run it
locally). Only this module imports it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import yaml
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import LongType, StringType, StructField, StructType

from . import batch
from .contract import Contract, load_contract, parse_contract
from .metadata import ModelArtifactError
from .scoring.example import example_record
from .scoring.model import load_onnx_model
from .tables.files import table_format, with_utc_timestamp
from .tables.quality_report import MAX_LISTED_ROWS
from .tables.streaming import input_files

APP_NAME = "batch-scoring"
KIND = "_kind"  # which table a row of the scored data set belongs to
SCORED, REJECTED = "scored", "rejected"
ROW_ID, SOURCE = "_row_id", "_source"  # added to each input row before scoring
REJECT_PREFIX = "_reject_"  # the reject columns in the scored data set (their names may be the keys')
AZURE_SCHEMES = ("az", "abfs", "abfss")  # adlfs: a container of the account AZURE_STORAGE_ACCOUNT_NAME


@dataclass(frozen=True)
class ModelFiles:
    """What the executors need to score: the model directory's files and the contract, as bytes."""

    files: dict[str, bytes]
    contract: str
    scored_at: str

    @property
    def digest(self) -> str:
        sha = hashlib.sha256(self.contract.encode())
        for name in sorted(self.files):
            sha.update(name.encode() + self.files[name])
        return sha.hexdigest()


def model_files(model_dir: Path, contract_text: str, scored_at: str) -> ModelFiles:
    files = {path.name: path.read_bytes() for path in sorted(model_dir.iterdir()) if path.is_file()}
    return ModelFiles(files, contract_text, scored_at)


_loaded: dict[str, str] = {}  # digest -> model directory of this Python worker


def _ensure_loaded(shipped: ModelFiles) -> None:
    """Load the broadcast model into batch.py's process state, once per Python worker and model."""
    digest = shipped.digest
    if _loaded.get("digest") == digest:
        return
    directory = Path(tempfile.mkdtemp(prefix="model-"))
    for name, content in shipped.files.items():
        (directory / name).write_bytes(content)
    contract = parse_contract(yaml.safe_load(shipped.contract), source="contract.yaml (broadcast)")
    batch.use_model(contract, load_onnx_model(directory, contract), shipped.scored_at)
    _loaded["digest"] = digest


@dataclass(frozen=True)
class Layout:
    """The columns of the scored data set: predictions and rejects side by side, told apart by KIND."""

    predictions: StructType
    rejects: StructType  # REJECT_COLUMNS, then every input column as text

    @property
    def scored(self) -> StructType:
        fields = [StructField(KIND, StringType(), False), *self.predictions.fields]
        fields += [StructField(REJECT_PREFIX + field.name, field.dataType, True) for field in self.rejects]
        return StructType(fields)


def prediction_schema(contract: Contract, model_dir: Path, scored_at: str) -> StructType:
    """The Spark schema of batch.py's predictions: the example record scored, with the contract's keys."""
    record: dict[str, Any] = dict(example_record(model_dir))
    if contract.id_column:
        record[contract.id_column] = "example"
    if contract.timestamp_column:
        record[contract.timestamp_column] = "2000-01-01T00:00:00Z"
    frame = with_utc_timestamp(pd.DataFrame([record]), contract)
    scored = batch.score_frame(frame, load_onnx_model(model_dir, contract), contract, scored_at)
    with warnings.catch_warnings():  # pyarrow reads Series.values, as StagedTable.write notes
        warnings.filterwarnings("ignore", "Series.values returning", category=DeprecationWarning)
        schema = pa.Schema.from_pandas(scored, preserve_index=False)
    utc = pa.timestamp("us", tz="UTC")  # Spark's timestamps
    fields = [pa.field(f.name, utc) if pa.types.is_timestamp(f.type) else f for f in schema]
    return from_arrow_schema(pa.schema(fields))


def layout_of(contract: Contract, model_dir: Path, scored_at: str, input_columns: list[str]) -> Layout:
    rejects = StructType(
        [
            StructField("row_number", LongType(), True),
            StructField("source", StringType(), True),
            StructField("reasons", StringType(), True),
            *(StructField(name, StringType(), True) for name in input_columns),
        ]
    )
    return Layout(prediction_schema(contract, model_dir, scored_at), rejects)


def _table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """`frame` in `schema` (the columns it lacks as nulls)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Series.values returning", category=DeprecationWarning)
        columns = [
            pa.array(frame[field.name], type=field.type, from_pandas=True)
            if field.name in frame.columns
            else pa.nulls(len(frame), field.type)
            for field in schema
        ]
    return pa.Table.from_arrays(columns, schema=schema)


def score_batches(
    batches: Iterator[pa.RecordBatch], shipped: Any, layout: Layout
) -> Iterator[pa.RecordBatch]:
    """mapInArrow: every record batch of a partition checked and scored by batch.score_chunk."""
    _ensure_loaded(shipped.value)
    target = to_arrow_schema(layout.scored)
    partition = TaskContext.get().partitionId() if TaskContext.get() else 0
    for record_batch in batches:
        row_ids = record_batch.column(ROW_ID).to_numpy()
        sources = record_batch.column(SOURCE).to_pylist()
        rows = record_batch.drop_columns([ROW_ID, SOURCE])
        scored = batch.score_chunk(batch.Chunk(f"partition {partition}", 0, rows))
        yield from _table(scored.predictions.assign(**{KIND: SCORED}), target).to_batches()
        if len(scored.rejects):
            positions = scored.rejects["row_number"].to_numpy()  # positions in the record batch (offset 0)
            rejects = scored.rejects.assign(
                row_number=row_ids[positions], source=[sources[i] for i in positions]
            )
            rejects = rejects.add_prefix(REJECT_PREFIX).assign(**{KIND: REJECTED})
            yield from _table(rejects, target).to_batches()


def hadoop_path(uri: str) -> str:
    """The path Spark's Hadoop file systems open for a URI of the project's (fsspec's) form.

    Azure's `az://` and `abfs[s]://<container>/<path>` (adlfs: the account is AZURE_STORAGE_ACCOUNT_NAME)
    become `abfss://<container>@<account>.dfs.core.windows.net/<path>`; every other URI is Hadoop's already
    (s3:// is EMRFS on EMR and S3A on the cluster, deploy/kubernetes/components/spark).
    """
    scheme, separator, rest = uri.partition("://")
    container, _, path = rest.partition("/")
    if not separator or scheme not in AZURE_SCHEMES:
        return uri
    if "@" in container:  # <container>@<account>.dfs.core.windows.net: Hadoop's form already (over TLS)
        return f"abfss://{rest}"
    account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME", "")
    if not account:
        raise ValueError(f"{uri}: AZURE_STORAGE_ACCOUNT_NAME (the container's storage account) is not set")
    return f"abfss://{container}@{account}.dfs.core.windows.net/{path}"


def read_input(spark: SparkSession, uri: str) -> DataFrame:
    """The input's files (listed as tables/streaming.py lists them); CSV with every column as text."""
    files = [hadoop_path(name) for name in input_files(uri)]
    if table_format(files[0]) == ".parquet":
        return spark.read.parquet(*files)
    header = spark.read.option("header", True).csv(files[0]).columns
    schema = StructType([StructField(name, StringType(), True) for name in header])
    # enforceSchema off: every file's header must name these columns (not just have as many)
    return spark.read.options(header=True, enforceSchema=False, mode="PERMISSIVE").schema(schema).csv(files)


def _write(frame: DataFrame, uri: str) -> None:
    """Overwrite `uri` with the rows of `frame`; the job commit writes `_SUCCESS` after every part file."""
    writer = frame.write.mode("overwrite")
    if table_format(uri) == ".csv":
        writer.option("header", True).csv(hadoop_path(uri))
    else:
        writer.parquet(hadoop_path(uri))


@dataclass(frozen=True)
class SparkRun:
    """One batch-scoring run on Spark: batch.py's settings, the model and the session."""

    spark: SparkSession
    input: str
    output: str
    settings: batch.Settings
    contract: Contract
    contract_text: str
    model_dir: Path
    scored_at: str

    def scored(self) -> tuple[DataFrame, Layout]:
        data = read_input(self.spark, self.input)
        layout = layout_of(self.contract, self.model_dir, self.scored_at, data.columns)
        data = data.withColumn(ROW_ID, F.monotonically_increasing_id())
        data = data.withColumn(SOURCE, F.input_file_name())
        shipped = self.spark.sparkContext.broadcast(
            model_files(self.model_dir, self.contract_text, self.scored_at)
        )
        self.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(self.settings.rows_per_batch))
        scored = data.mapInArrow(lambda batches: score_batches(batches, shipped, layout), layout.scored)
        return scored, layout

    def failures(self, rejects: DataFrame) -> list[dict[str, Any]]:
        """Each broken rule with its count and the first rows (by row_number) that break it."""
        rules = rejects.select("row_number", F.explode(F.split("reasons", "; ")).alias("reason"))
        grouped = rules.groupBy("reason").agg(
            F.count("*").alias("count"),
            F.slice(F.sort_array(F.collect_list("row_number")), 1, MAX_LISTED_ROWS).alias("rows"),
        )
        failures = []
        for row in grouped.orderBy("reason").collect():
            column, _, rule = str(row["reason"]).partition(": ")
            failures.append(
                {"rule": rule, "column": column, "count": int(row["count"]), "row_indices": list(row["rows"])}
            )
        return failures

    def score_all(self) -> int:
        scored, layout = self.scored()
        scored = scored.persist()  # scored once, then counted and written
        try:
            counts = {row[KIND]: int(row["count"]) for row in scored.groupBy(KIND).count().collect()}
            rows, rejected = sum(counts.values()), counts.get(REJECTED, 0)
            rejects = scored.where(F.col(KIND) == REJECTED).select(
                *(F.col(REJECT_PREFIX + field.name).alias(field.name) for field in layout.rejects)
            )
            failures = self.failures(rejects) if rejected else []
            report = {
                "passed": not failures,
                "source": self.input,
                "rows": rows,
                "failures": failures,
                "engine": "spark",
                "on_invalid": self.settings.on_invalid,
                "max_rejected_fraction": self.settings.max_rejected_fraction,
            }
            if self.settings.on_invalid == "reject" and rejected:
                return self._finish(report, 0, rejected, f"rejected: nothing scored ({rejected} bad rows)")
            rejects_uri = batch.rejects_uri(self.output)
            _write(rejects, rejects_uri)
            too_many = rejected > self.settings.max_rejected_fraction * rows
            report["rejects"] = rejects_uri
            if too_many:
                return self._finish(
                    report,
                    0,
                    rejected,
                    f"rejected: {rejected} of {rows} rows break the contract, more than "
                    f"{self.settings.max_rejected_fraction:.2%}; only the rejects are published "
                    f"({rejects_uri})",
                )
            predictions = scored.where(F.col(KIND) == SCORED).select(*layout.predictions.fieldNames())
            _write(predictions, self.output)
            report["output"] = self.output
            return self._finish(report, rows - rejected, rejected, None)
        finally:
            scored.unpersist()

    def _finish(self, report: dict[str, Any], scored: int, rejected: int, failure: str | None) -> int:
        rows = int(report["rows"])
        report.update(
            scored_rows=scored, rejected_rows=rejected, rejected_fraction=rejected / rows if rows else 0.0
        )
        batch.write_report(f"{self.output}.validation.json", report)
        if failure:
            print(f"{failure}; report in {self.output}.validation.json", file=sys.stderr)
            return 1
        print(f"scored {scored} rows into {self.output}; {rejected} rows set aside in the rejects")
        return 0


def session(master: str | None = None, conf: dict[str, str] | None = None) -> SparkSession:
    """The job's Spark session (the cluster's when spark-submit or the serverless runtime started it).

    `master` (e.g. local[2]) starts Spark on this machine, with this interpreter as the executors' Python
    (unless PYSPARK_PYTHON names another).
    """
    builder = SparkSession.builder.appName(APP_NAME).config("spark.sql.session.timeZone", "UTC")
    if master:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(master)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def run(spark: SparkSession, argv: list[str]) -> int:
    """Score with an existing session (the CLI's or a test's), with batch.py's flags."""
    args, settings = batch.parse_settings(argv)
    try:
        table_format(args.output)
        input_files(args.input)
    except (OSError, ValueError) as error:
        print(f"cannot score {args.input} into {args.output}: {error}", file=sys.stderr)
        return 2
    contract = load_contract()
    try:
        load_onnx_model(args.model_dir, contract)  # fail before starting any Spark job when it is unusable
    except ModelArtifactError as error:
        print(str(error), file=sys.stderr)
        return 2
    scored_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    contract_text = Path(contract.source).read_text(encoding="utf-8")
    job = SparkRun(
        spark, args.input, args.output, settings, contract, contract_text, args.model_dir, scored_at
    )
    return job.score_all()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Spark runtimes set the executors' Python; started by hand, they run this interpreter (the venv's)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return run(session(), argv)


if __name__ == "__main__":
    # Run as the package's module, not as __main__: what is shipped to the executors (the model's
    # ModelFiles, score_batches) is pickled by reference to a module they can import.
    sys.exit(importlib.import_module(__spec__.name).main())
