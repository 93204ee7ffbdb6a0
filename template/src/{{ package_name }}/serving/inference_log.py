"""A sample of scored records as JSON lines, the input of drift detection.

Each process writes $INFERENCE_LOG_DIR/inference-<UTC time>-<host>-<pid>-<n>.jsonl.open and closes it (renamed
to .jsonl, the name drift reads and serving/log_shipper.py uploads) once it holds `rotate_bytes` or is
`rotate_seconds` old (checked on every record and by a timer, so an idle service closes its file too), and at
shutdown. One object per sampled record: {"ts", "model_version", "features" (the model inputs only: requests
cannot carry ids), "prediction" (the prediction as /predict returns it: scoring/outputs.py), "bucket" (its
monitoring bucket)}. Writes are buffered and flushed at most once a second, so logging costs a request almost
nothing; a failure to write is logged and never fails the request.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..scoring.outputs import Predictions

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 1.0
ERROR_LOG_INTERVAL_SECONDS = 60.0
OPEN_SUFFIX = ".open"  # a file still being written: drift and the shipper only read the closed *.jsonl


def host_label() -> str:
    """This machine's name, reduced to [a-z0-9-]: it keeps the files of many containers apart in a bucket."""
    return re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")[:40] or "host"


class InferenceLog:
    def __init__(
        self,
        directory: Path,
        sample_rate: float,
        model_version: str,
        seed: int | None = None,
        rotate_seconds: float = 300.0,
        rotate_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.directory = directory
        self.sample_rate = sample_rate
        self.model_version = model_version
        self.rotate_seconds = rotate_seconds
        self.rotate_bytes = rotate_bytes
        # Seeded per process by default, so workers do not sample the same request positions.
        self._random = random.Random(os.getpid() if seed is None else seed)  # noqa: S311 - sampling, not security
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._path: Path | None = None
        self._opened = 0.0
        self._written = 0
        self._sequence = 0
        self._last_flush = 0.0
        self._last_error_logged = -ERROR_LOG_INTERVAL_SECONDS
        self._stopped = threading.Event()
        self._timer: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.sample_rate > 0.0

    def record(self, records: Sequence[Mapping[str, Any]], predictions: Predictions) -> None:
        """Append the sampled share of the scored records. Never raises."""
        if not self.enabled:
            return
        sampled = [i for i in range(len(records)) if self._random.random() < self.sample_rate]
        if not sampled:
            return
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        lines = "".join(
            json.dumps(
                {
                    "ts": ts,
                    "model_version": self.model_version,
                    "features": dict(records[i]),
                    "prediction": predictions.records[i],
                    "bucket": predictions.buckets[i],
                }
            )
            + "\n"
            for i in sampled
        )
        with self._lock:
            try:
                self._rotate_if_due()
                self._stream().write(lines)
                self._written += len(lines)
                if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_SECONDS:
                    self._flush()
            except (OSError, ValueError) as error:
                self._report(error)

    def flush(self) -> None:
        with self._lock:
            try:
                self._flush()
            except (OSError, ValueError) as error:
                self._report(error)

    def close(self) -> None:
        """Close (and so publish) the current file; stop the rotation timer."""
        self._stopped.set()
        with self._lock:
            self._close()

    def rotate_if_due(self) -> None:
        with self._lock:
            self._rotate_if_due()

    def _rotate_if_due(self) -> None:
        if self._file is None:
            return
        age = time.monotonic() - self._opened
        if age >= self.rotate_seconds or self._written >= self.rotate_bytes:
            self._close()

    def _flush(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._last_flush = time.monotonic()

    def _close(self) -> None:
        if self._file is None or self._path is None:
            return
        # Dropped first: a failed close leaves no half-closed stream in use; the next record opens a new file.
        stream, path = self._file, self._path
        self._file, self._path = None, None
        try:
            stream.close()
            path.rename(path.with_name(path.name.removesuffix(OPEN_SUFFIX)))
        except OSError as error:
            self._report(error)

    def _stream(self) -> TextIO:
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._sequence += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            name = f"inference-{stamp}-{host_label()}-{os.getpid()}-{self._sequence}.jsonl{OPEN_SUFFIX}"
            self._path = self.directory / name
            self._file = self._path.open("a", encoding="utf-8", buffering=64 * 1024)
            self._opened = time.monotonic()
            self._written = 0
            self._start_timer()
        return self._file

    def _start_timer(self) -> None:
        """A daemon thread that closes a file past its age when no record arrives to do it."""
        if self._timer is not None or self._stopped.is_set():
            return
        interval = max(0.05, min(self.rotate_seconds / 4, 30.0))

        def tick() -> None:
            while not self._stopped.wait(interval):
                self.rotate_if_due()

        self._timer = threading.Thread(target=tick, name="inference-log-rotation", daemon=True)
        self._timer.start()

    def _report(self, error: Exception) -> None:
        """Log a write failure, at most once a minute so a full disk does not flood the logs."""
        now = time.monotonic()
        if now - self._last_error_logged >= ERROR_LOG_INTERVAL_SECONDS:
            self._last_error_logged = now
            logger.warning(
                "inference log write failed; requests are still served", extra={"error": repr(error)}
            )
