"""The data the drift check compares: model inputs from tables and from the service's inference logs.

The service samples scored records into $INFERENCE_LOG_DIR/inference-YYYYMMDD-<pid>.jsonl, one JSON object
per record: {"ts", "model_version", "features", "score", "predicted_class"}. Locally that is data/inference/;
a deployed service writes them to the data bucket, and `pull` copies them next to the code:

    python -m <package>.drift_logs pull gs://<bucket>/inference/ [--destination data/inference]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd

from .contract import CATEGORICAL, FEATURE_COLUMNS, NUMERIC
from .tables import read_table

INFERENCE_LOG_GLOB = "inference-*.jsonl"


def model_inputs(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The model's input columns, numeric ones as numbers and categorical ones as strings."""
    missing = [name for name in FEATURE_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"{source} lacks the model inputs {', '.join(missing)}")
    inputs = frame[list(FEATURE_COLUMNS)].copy()
    for name in NUMERIC:
        inputs[name] = pd.to_numeric(inputs[name], errors="coerce")
    for name in CATEGORICAL:
        inputs[name] = inputs[name].astype("string")
    return inputs


def read_current(path: Path, window_days: int, now: datetime | None = None) -> pd.DataFrame:
    """Model inputs from an inference-log directory, a JSONL log file, or a CSV / Parquet table.

    Log records older than `window_days` days are left out (0 keeps all); a missing path gives no records.
    """
    now = now or datetime.now(UTC)
    if path.is_dir():
        files = sorted(path.glob(INFERENCE_LOG_GLOB))
        return _recent_inputs(
            (record for file in files for record in _log_records(file)), window_days, now, path
        )
    if not path.is_file():
        return pd.DataFrame({name: pd.Series(dtype="object") for name in FEATURE_COLUMNS})
    if path.suffix == ".jsonl":
        return _recent_inputs(_log_records(path), window_days, now, path)
    return model_inputs(read_table(str(path)), str(path))


def _log_records(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number} is not a JSON object: {error.msg}") from None


def _recent_inputs(
    records: Iterable[dict[str, Any]], window_days: int, now: datetime, source: Path
) -> pd.DataFrame:
    since = now - timedelta(days=window_days)
    recent = [
        record["features"] for record in records if window_days == 0 or _timestamp(record["ts"]) >= since
    ]
    return model_inputs(pd.DataFrame.from_records(recent, columns=list(FEATURE_COLUMNS)), str(source))


def _timestamp(text: str) -> datetime:
    stamp = datetime.fromisoformat(text)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def pull(source_uri: str, destination: Path) -> list[Path]:
    """Copy the inference logs under `source_uri` (s3://, gs://, az:// or a directory) not copied yet."""
    filesystem, root = fsspec.core.url_to_fs(source_uri)
    destination.mkdir(parents=True, exist_ok=True)
    copied = []
    for remote in sorted(filesystem.glob(f"{root.rstrip('/')}/{INFERENCE_LOG_GLOB}")):
        local = destination / Path(remote).name
        if not local.exists() or local.stat().st_size != filesystem.size(remote):
            filesystem.get_file(remote, str(local))
            copied.append(local)
    return copied


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
