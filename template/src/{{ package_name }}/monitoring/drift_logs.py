"""The data the drift check compares: model inputs (and logged predictions) from tables and inference logs.

The service samples scored records into $INFERENCE_LOG_DIR/inference-<time>-<host>-<pid>-<n>.jsonl, one JSON
object per record: {"ts", "model_version", "features", "prediction", "bucket"} (serving/inference_log.py).
Locally that is data/inference/; a deployed service's shipper (serving/log_shipper.py) uploads them to the
data bucket, and `pull` copies them here:

    python -m <package>.monitoring.drift_logs pull gs://<bucket>/inference/ [--destination data/inference]

A SageMaker endpoint runs the container without network access, so it cannot ship its own log: the endpoint's
data capture writes the requests and responses instead (<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl,
one {"captureData": {"endpointInput", "endpointOutput"}, "eventMetadata"} object per call). `pull` converts
each captured call into the records above (inference-capture-*.jsonl): the features of every record of the
request, its prediction and the model_version of the response; the bucket is not in a response, so those
records count for input drift only.

Which columns are inputs, and which are numbers or categories, comes from contract.yaml.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd

from ..contract import Contract, load_contract
from ..tables.files import read_table

INFERENCE_LOG_GLOB = "inference-*.jsonl"


@dataclass(frozen=True)
class CurrentData:
    """The records to judge: their model inputs, and for inference logs the prediction logged with each.

    buckets / model_versions are None for a table (it holds inputs only: drift scores them itself).
    """

    inputs: pd.DataFrame
    buckets: pd.Series | None = None
    model_versions: pd.Series | None = None
    # The time of the newest log record, inside the window or not (None: no record, or a table).
    newest: datetime | None = None

    def __len__(self) -> int:
        return len(self.inputs)


def model_inputs(frame: pd.DataFrame, source: str, contract: Contract | None = None) -> pd.DataFrame:
    """The model's input columns: numeric ones as floats (NaN: missing), categorical ones as str or None."""
    contract = contract or load_contract()
    names = list(contract.input_columns)
    absent = [name for name in names if name not in frame.columns]
    if absent:
        raise ValueError(f"{source} lacks the model inputs {', '.join(absent)} (contract.yaml columns)")
    inputs = pd.DataFrame(index=frame.index)
    for name, column in contract.columns.items():
        series = frame[name]
        if column.is_numeric:
            inputs[name] = pd.to_numeric(series, errors="coerce").astype("float64")
        else:
            inputs[name] = (
                series.astype(object)
                .where(series.notna(), None)
                .map(lambda value: value if value is None else str(value))
            )
    return inputs.reset_index(drop=True)


def read_current(
    path: Path, window_days: int, now: datetime | None = None, contract: Contract | None = None
) -> CurrentData:
    """The records of an inference-log directory, a JSONL log file, or a CSV / Parquet table of inputs.

    Log records older than `window_days` days are left out (0 keeps all); a missing path gives no records.
    """
    contract = contract or load_contract()
    now = now or datetime.now(UTC)
    if path.is_dir():
        files = sorted(path.glob(INFERENCE_LOG_GLOB))
        records = (record for file in files for record in _log_records(file))
        return _recent(records, window_days, now, path, contract)
    if not path.is_file():
        return _recent([], window_days, now, path, contract)
    if path.suffix == ".jsonl":
        return _recent(_log_records(path), window_days, now, path, contract)
    return CurrentData(model_inputs(read_table(str(path), contract), str(path), contract))


def _log_records(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number} is not a JSON object: {error.msg}") from None
                if not isinstance(record, dict) or not isinstance(record.get("features"), dict):
                    raise ValueError(f"{path}:{number} is not an inference log record (no 'features' object)")
                yield record


def _recent(
    records: Iterable[dict[str, Any]], window_days: int, now: datetime, source: Path, contract: Contract
) -> CurrentData:
    since = now - timedelta(days=window_days)
    recent, newest = [], None
    for record in records:
        stamp = _timestamp(record.get("ts"))
        newest = stamp if newest is None or stamp > newest else newest
        if window_days == 0 or stamp >= since:
            recent.append(record)
    features = pd.DataFrame.from_records(
        [record["features"] for record in recent], columns=list(contract.input_columns)
    )
    return CurrentData(
        inputs=model_inputs(features, str(source), contract),
        buckets=pd.Series([_text(record.get("bucket")) for record in recent], dtype=object),
        model_versions=pd.Series([_text(record.get("model_version")) for record in recent], dtype=object),
        newest=newest,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _timestamp(text: Any) -> datetime:
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"inference log record with an invalid timestamp {text!r}") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def pull(source_uri: str, destination: Path) -> list[Path]:
    """Copy the inference logs under `source_uri` (s3://, gs://, az:// or a directory) not copied yet.

    inference-*.jsonl files are copied as they are; other *.jsonl files below the prefix are SageMaker data
    capture files, converted to inference-capture-<path>.jsonl.
    """
    filesystem, root = fsspec.core.url_to_fs(source_uri)
    root = root.rstrip("/")
    destination.mkdir(parents=True, exist_ok=True)
    copied = []
    for remote in sorted(filesystem.glob(f"{root}/**/*.jsonl")):
        name = Path(remote).name
        relative = remote[len(root) :].lstrip("/")
        if name.startswith("inference-") and "/" not in relative:
            local = destination / name
            if not local.exists() or local.stat().st_size != filesystem.size(remote):
                filesystem.get_file(remote, str(local))
                copied.append(local)
            continue
        local = destination / f"inference-capture-{relative.replace('/', '-')}"
        if local.exists():  # a capture file is written once, complete
            continue
        with filesystem.open(remote, "r", encoding="utf-8") as handle:
            records = [
                record for line in handle if line.strip() for record in capture_records(json.loads(line))
            ]
        temporary = local.with_name(f".{local.name}.tmp")
        temporary.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
        temporary.replace(local)
        copied.append(local)
    return copied


def capture_records(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The inference log records of one SageMaker data capture event (a call to /invocations)."""
    capture = event.get("captureData") or {}
    request = _capture_payload(capture.get("endpointInput"))
    response = _capture_payload(capture.get("endpointOutput"))
    if request is None:
        return []
    inputs = request.get("records", request.get("instances")) if isinstance(request, dict) else None
    inputs = inputs if isinstance(inputs, list) else [request]
    outputs: list[Any] = []
    version = None
    if isinstance(response, dict):
        version = response.get("model_version")
        outputs = response["predictions"] if isinstance(response.get("predictions"), list) else [response]
    inference_time = (event.get("eventMetadata") or {}).get("inferenceTime")
    stamp = _timestamp(inference_time).isoformat(timespec="milliseconds")
    records = []
    for position, features in enumerate(inputs):
        if not isinstance(features, dict):
            continue
        prediction = (
            outputs[position] if position < len(outputs) and isinstance(outputs[position], dict) else {}
        )
        records.append(
            {
                "ts": stamp,
                "model_version": version,
                "features": features,
                "prediction": {k: v for k, v in prediction.items() if k != "model_version"},
                "bucket": None,
            }
        )
    return records


def _capture_payload(part: Any) -> Any:
    """The JSON body of a captured request or response (None when it is not JSON)."""
    if not isinstance(part, dict) or "data" not in part:
        return None
    data = part["data"]
    if str(part.get("encoding", "")).upper() == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
    try:
        return json.loads(data)
    except (TypeError, json.JSONDecodeError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Copy the service's inference logs from object storage.")
    commands = parser.add_subparsers(dest="command", required=True)
    pull_parser = commands.add_parser("pull", help="copy new or grown inference-*.jsonl files")
    pull_parser.add_argument("source", help="directory URI of the logs, e.g. gs://<data bucket>/inference/")
    pull_parser.add_argument("--destination", type=Path, default=Path("data/inference"))
    args = parser.parse_args(argv)

    try:
        copied = pull(args.source, args.destination)
    except (OSError, ValueError, ImportError) as error:
        print(f"drift_logs: cannot read {args.source}: {error}", file=sys.stderr)
        return 1
    print(f"copied {len(copied)} inference log file(s) from {args.source} to {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
