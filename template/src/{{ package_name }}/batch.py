"""Batch scoring: `python -m <package>.batch --input <file|directory|prefix> --output <csv|parquet>`.

The input is a CSV or Parquet file, or a directory / object-store prefix of them (s3://, gs://, az://). It is
read in record batches (tables/streaming.py), and each batch is checked against the contract and scored with
the champion's ONNX model by one of `--workers` processes, so memory stays bounded by the batch size and the
number of workers, whatever the input's size. Predictions are written as they come, in input order, under a
staging name that becomes the output's name only when the run succeeds: a failed or killed run leaves no
output that looks complete, and a rerun replaces the staged file.

Rows that break the contract (`--on-invalid`, params.yaml `batch.on_invalid`):
- `quarantine` (default): every row is either in the output or in `<output stem>.rejects.<ext>` with the rules
  it broke (`reasons`) and its position in the input (`row_number`). More rejected rows than
  `--max-rejected-fraction` of the input fail the run: the rejects are published, the predictions are not.
  One malformed row out of millions should not stop a nightly job; a broken upstream extract should.
- `reject`: a first pass checks every row and one bad row rejects the whole input, nothing is scored (what an
  input that must be scored completely or not at all needs).

With `--by-id` (feature_store feast) the input holds only ids, and optionally the contract's event timestamps:
their inputs are read from the feature store's offline store as of each timestamp (else now), and the records
are then checked and scored exactly as full records are (records_by_id).

The output has the id and timestamp columns of the contract (when the input has them), the task's prediction
columns (scoring/outputs.py: score and predicted_class; predicted_class and probability_<class>; or
prediction), model_version and scored_at. `<output>.validation.json` reports the counts and every failing rule
with example rows. Defaults come from params.yaml's `batch` section when the project's params.yaml is there,
else from BATCH_* environment variables or the built-in defaults (the serving image has no params.yaml); flags
override both. Exit codes: 0 scored, 1 rejected input (or too many rejected rows), 2 bad usage, unreadable
input or missing model.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import fsspec
import pandas as pd
import pyarrow as pa

from .contract import Contract, load_contract
from .metadata import ModelArtifactError
from .params import INVALID_ROW_POLICIES, BatchParams, ParamsError, load_params
from .scoring.model import ScoringModel, load_onnx_model
from .tables.files import (
    input_columns_of,
    read_table,
    table_format,
    with_string_columns,
    with_utc_timestamp,
    write_table,
)
from .tables.input_checks import broken_rules, report_of, with_numbers
from .tables.quality_report import FailureTally, QualityReport
from .tables.streaming import StagedTable, input_files, record_batches

DEFAULT_MODEL_DIR = "models/champion"
PARAMS_PATH_VARIABLE = "PARAMS_PATH"  # where params.yaml is (the image sets it); default: ./params.yaml
REJECT_COLUMNS = ("row_number", "source", "reasons")
IN_FLIGHT_PER_WORKER = 2  # batches queued per worker: enough to keep it busy, few enough to bound memory

T = TypeVar("T")


@dataclass(frozen=True)
class Chunk:
    """A record batch of the input and where it sits in it."""

    source: str
    offset: int  # position of the batch's first row in the whole input (every file, in order)
    batch: pa.RecordBatch


@dataclass(frozen=True)
class ScoredChunk:
    offset: int  # the chunk's position in the input
    predictions: pd.DataFrame  # the rows that pass the contract's checks, scored
    rejects: pd.DataFrame  # the rows that do not, with their reasons (REJECT_COLUMNS first)
    report: QualityReport  # row indices within the chunk


def score_frame(frame: pd.DataFrame, model: ScoringModel, contract: Contract, scored_at: str) -> pd.DataFrame:
    """Predictions of contract-valid rows: keys (when present), the task's columns, model version."""
    predictions = frame.loc[:, [name for name in contract.key_columns if name in frame.columns]]
    predictions = predictions.reset_index(drop=True)
    for name, values in model.output_columns(input_columns_of(frame, contract)).items():
        predictions[name] = values.tolist() if values.dtype == object else values  # labels: the classes' type
    predictions["model_version"] = model.model_version
    predictions["scored_at"] = scored_at
    return predictions


def rejects_of(frame: pd.DataFrame, broken: dict[tuple[str, str], pd.Series], chunk: Chunk) -> pd.DataFrame:
    """The rows of `frame` that break a rule, as text, with their position in the input and the rules."""
    bad = pd.Series(False, index=frame.index)
    reasons = pd.Series("", index=frame.index, dtype="object")
    for (column, rule), mask in broken.items():
        bad |= mask
        reasons = reasons.where(~mask, reasons + f"{column}: {rule}; ")
    rows = frame.loc[bad].astype("string").astype(object)
    rows = rows.where(rows.notna(), None)
    rejects = pd.DataFrame(
        {
            "row_number": frame.index[bad] + chunk.offset,
            "source": chunk.source,
            "reasons": reasons[bad].str.removesuffix("; "),
        }
    )
    return pd.concat([rejects.reset_index(drop=True), rows.reset_index(drop=True)], axis=1)


# The model and settings of a scoring process, set once per process by `_start` (the pool's initializer).
_process: dict[str, Any] = {}


def use_model(contract: Contract, model: ScoringModel, scored_at: str) -> None:
    """Score this process's chunks with `model` (set by the pool's initializer, or by spark_batch)."""
    _process.update(contract=contract, model=model, scored_at=scored_at)


def _start(model_dir: Path, scored_at: str) -> None:
    contract = load_contract()
    use_model(contract, load_onnx_model(model_dir, contract), scored_at)


def _frame_of(chunk: Chunk, contract: Contract) -> pd.DataFrame:
    frame = chunk.batch.to_pandas()
    return with_utc_timestamp(with_string_columns(frame, contract), contract).reset_index(drop=True)


def check_chunk(chunk: Chunk) -> tuple[int, QualityReport]:
    contract: Contract = _process["contract"]
    frame = _frame_of(chunk, contract)
    return chunk.offset, report_of(frame, broken_rules(frame, contract), chunk.source, contract)


def score_chunk(chunk: Chunk) -> ScoredChunk:
    contract: Contract = _process["contract"]
    frame = _frame_of(chunk, contract)
    numbers = with_numbers(frame, contract)  # parsed once, for the checks and the model
    broken = broken_rules(frame, contract, numbers)
    report = report_of(frame, broken, chunk.source, contract)
    valid = numbers
    if broken:
        valid = numbers.loc[~pd.concat(broken.values(), axis=1).any(axis=1)]
    predictions = score_frame(valid, _process["model"], contract, _process["scored_at"])
    rejects = rejects_of(frame, broken, chunk) if broken else pd.DataFrame()
    return ScoredChunk(chunk.offset, predictions, rejects, report)


def chunks(uri: str, rows: int) -> Iterator[Chunk]:
    """The input's record batches, file after file, with their positions in the whole input."""
    offset = 0
    for source in input_files(uri):
        for batch in record_batches(source, rows):
            if batch.num_rows:
                yield Chunk(source, offset, batch)
                offset += batch.num_rows


def in_order(
    work: Callable[[Chunk], T], items: Iterable[Chunk], workers: int, start: tuple[Path, str]
) -> Iterator[T]:
    """`work` of every item, in the items' order, in `workers` processes (1: this one); a bounded queue."""
    if workers <= 1:
        _start(*start)
        yield from map(work, items)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs pyarrow's threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=start) as pool:
        pending: deque[Future[T]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def rejects_uri(output: str) -> str:
    suffix = PurePosixPath(output).suffix
    return f"{output.removesuffix(suffix)}.rejects{suffix}"


def write_report(uri: str, report: dict[str, object]) -> None:
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    with fsspec.open(uri, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)


@dataclass(frozen=True)
class Settings:
    on_invalid: str
    max_rejected_fraction: float
    workers: int
    rows_per_batch: int


def params_path() -> Path:
    return Path(os.environ.get(PARAMS_PATH_VARIABLE) or "params.yaml")


def defaults() -> BatchParams:
    """params.yaml's batch section: the project checkout's, or the copy the image ships (PARAMS_PATH)."""
    return load_params(params_path()).batch


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # "<quota> <period>" or "max <period>" (cgroup v2)


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a container's CPU quota (cgroup v2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, int(int(quota) // int(period))))


def _parser(base: BatchParams) -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Score a table with the champion model, batch by batch.")
    parser.add_argument(
        "--input", default=env("BATCH_INPUT_URI"), help="file, directory or prefix (env: BATCH_INPUT_URI)"
    )
    parser.add_argument(
        "--output", default=env("BATCH_OUTPUT_URI"), help=".csv or .parquet (env: BATCH_OUTPUT_URI)"
    )
    parser.add_argument("--model-dir", type=Path, default=Path(env("MODEL_DIR", DEFAULT_MODEL_DIR)))
    parser.add_argument(
        "--by-id",
        action="store_true",
        default=env("BATCH_BY_ID", "") == "1",
        help="the input holds ids (and optionally event timestamps): read their inputs from the feature "
        "store's offline store, as of each timestamp or now (feature_store feast; env: BATCH_BY_ID=1)",
    )
    parser.add_argument(
        "--on-invalid",
        choices=INVALID_ROW_POLICIES,
        default=env("BATCH_ON_INVALID", base.on_invalid),
        help="quarantine rows that break the contract, or reject the whole input (env: BATCH_ON_INVALID)",
    )
    parser.add_argument(
        "--max-rejected-fraction",
        type=float,
        default=float(env("BATCH_MAX_REJECTED_FRACTION", base.max_rejected_fraction)),
        help="quarantine: fail when more of the input is rejected (env: BATCH_MAX_REJECTED_FRACTION)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(env("BATCH_WORKERS", base.workers)),
        help="scoring processes, 0: one per core (env: BATCH_WORKERS)",
    )
    parser.add_argument(
        "--rows-per-batch",
        type=int,
        default=int(env("BATCH_ROWS_PER_BATCH", base.rows_per_batch)),
        help="rows read, checked and scored at a time (env: BATCH_ROWS_PER_BATCH)",
    )
    return parser


def parse_settings(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    try:
        base = defaults()
    except FileNotFoundError:
        sys.exit(f"{params_path().resolve()} not found: batch scoring reads its batch section")
    except ParamsError as error:
        sys.exit(f"{params_path()}: {error}")
    parser = _parser(base)
    args = parser.parse_args(argv)
    if not args.input or not args.output:
        parser.error("--input and --output (or BATCH_INPUT_URI and BATCH_OUTPUT_URI) are required")
    if not 0.0 <= args.max_rejected_fraction <= 1.0 or args.workers < 0 or args.rows_per_batch < 1:
        parser.error("--max-rejected-fraction is a share (0..1), --workers >= 0 and --rows-per-batch >= 1")
    workers = args.workers or available_cores()
    return args, Settings(args.on_invalid, args.max_rejected_fraction, workers, args.rows_per_batch)


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_settings(argv)
    try:
        table_format(args.output)
        input_files(args.input)
    except (OSError, ValueError) as error:
        print(f"cannot score {args.input} into {args.output}: {error}", file=sys.stderr)
        return 2
    contract = load_contract()
    try:
        model = load_onnx_model(args.model_dir, contract)  # fail before reading anything when it is unusable
    except ModelArtifactError as error:
        print(str(error), file=sys.stderr)
        return 2
    now = datetime.now(UTC).replace(microsecond=0)
    scored_at = now.isoformat().replace("+00:00", "Z")
    with tempfile.TemporaryDirectory(prefix="batch-by-id-") as scratch:
        source = args.input
        try:
            if args.by_id:
                source = records_by_id(args.input, contract, now, Path(scratch))
            run = Run(source, args.output, settings, contract, args.model_dir, model, scored_at)
            if settings.on_invalid == "reject" and not run.check_all():
                return 1
            return run.score_all()
        except (OSError, ValueError, pa.ArrowException) as error:
            print(f"cannot read {args.input}: {error}", file=sys.stderr)
            return 2


def records_by_id(uri: str, contract: Contract, as_of: datetime, scratch: Path) -> str:
    """--by-id: the ids of `uri` (and their event timestamps, when it has the contract's timestamp column)
    as full records, read from the feature store's offline store as of each timestamp (else `as_of`), in one
    Parquet file under `scratch` that the run then checks and scores like any input.

    The offline store rather than the online one: a batch reads many ids at once, where a point-in-time join
    over the offline source is one scan instead of a key lookup per id against a store sized for requests, and
    it answers for any date (a re-run for a past date scores the values of that date) whatever was
    materialised.
    The ids are held in memory (one column or two), the records they resolve to in one file.
    """
    try:
        offline = importlib.import_module(f"{__package__}.feature_store.offline")
        repository = importlib.import_module(f"{__package__}.feature_store.repository")
    except ModuleNotFoundError as error:
        raise ValueError(f"--by-id needs a feature store (feature_store: feast): {error}") from error
    ids = pd.concat([read_table(path, contract) for path in input_files(uri)], ignore_index=True)
    try:
        records = offline.records_of_ids(repository.open_store(), contract, ids, as_of)
    except repository.FeatureStoreError as error:
        raise ValueError(str(error)) from error
    resolved = scratch / "records.parquet"
    write_table(records, str(resolved))
    unknown = int(records.loc[:, contract.input_columns].isna().all(axis=1).sum())
    print(
        f"by id: {len(records)} ids read from the offline store "
        f"({unknown} without a feature row by their time)",
        file=sys.stderr,
    )
    return str(resolved)


@dataclass(frozen=True)
class Run:
    """One batch-scoring run: its input, output, settings and model."""

    input: str
    output: str
    settings: Settings
    contract: Contract
    model_dir: Path
    model: ScoringModel
    scored_at: str

    @property
    def report_uri(self) -> str:
        return f"{self.output}.validation.json"

    def _map(self, work: Callable[[Chunk], T]) -> Iterator[T]:
        items = chunks(self.input, self.settings.rows_per_batch)
        return in_order(work, items, self.settings.workers, (self.model_dir, self.scored_at))

    def check_all(self) -> bool:
        """The `reject` policy's first pass: True when every row passes (nothing is written then)."""
        tally = FailureTally(self.input)
        for offset, report in self._map(check_chunk):
            tally.add(report, offset)
        report = tally.report()
        if report.passed:
            return True
        write_report(self.report_uri, self.summary(report, scored=0))
        print(f"{report.summary()}\nrejected: nothing scored; report in {self.report_uri}", file=sys.stderr)
        return False

    def summary(self, report: QualityReport, scored: int, **paths: str) -> dict[str, object]:
        rejected = report.rows - scored
        return {
            **report.to_dict(),
            "scored_rows": scored,
            "rejected_rows": rejected,
            "rejected_fraction": rejected / report.rows if report.rows else 0.0,
            "on_invalid": self.settings.on_invalid,
            "max_rejected_fraction": self.settings.max_rejected_fraction,
            **paths,
        }

    def score_all(self) -> int:
        """Score every valid row; publish the rejects, and the predictions unless too many were rejected."""
        output, rejects = StagedTable(self.output), StagedTable(rejects_uri(self.output))
        tally = FailureTally(self.input)
        try:
            for scored in self._map(score_chunk):
                tally.add(scored.report, scored.offset)
                if len(scored.predictions):
                    output.write(scored.predictions)
                if len(scored.rejects):
                    rejects.write(scored.rejects)
            report = tally.report()
            rejected = report.rows - output.rows
            too_many = rejected > self.settings.max_rejected_fraction * report.rows
            rejects.commit(pd.DataFrame(columns=[*REJECT_COLUMNS, *self.contract.input_columns]))
            if too_many:
                output.discard()
            else:
                empty = pd.DataFrame(columns=[*self.contract.key_columns, *self.contract.input_columns])
                output.commit(score_frame(empty, self.model, self.contract, self.scored_at))
        except BaseException:
            output.discard()
            rejects.discard()
            raise
        write_report(
            self.report_uri, self.summary(report, output.rows, output=self.output, rejects=rejects.uri)
        )
        if too_many:
            print(
                f"{report.summary()}\nrejected: {rejected} of {report.rows} rows break the contract, "
                f"more than {self.settings.max_rejected_fraction:.2%} of the input; only the rejects are "
                f"published ({rejects.uri}); report in {self.report_uri}",
                file=sys.stderr,
            )
            return 1
        print(
            f"scored {output.rows} rows with model {self.model.model_version} into {self.output}; "
            f"{rejected} rows set aside in {rejects.uri} (report: {self.report_uri})"
        )
        return 0


if __name__ == "__main__":
    sys.exit(main())
