"""A sample of scored records as JSON lines, the input of drift detection.

One file per day and process, $INFERENCE_LOG_DIR/inference-YYYYMMDD-<pid>.jsonl, with one object per sampled
record: {"ts", "model_version", "features" (the model inputs only: requests cannot carry ids), "prediction"
(the prediction as /predict returns it: scoring/outputs.py), "bucket" (its monitoring bucket)}. Writes are
buffered and flushed at most once a second and at shutdown, so logging costs a request almost nothing; a
failure to write is logged and never fails the request.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..scoring.outputs import Predictions

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 1.0
ERROR_LOG_INTERVAL_SECONDS = 60.0


class InferenceLog:
    def __init__(
        self, directory: Path, sample_rate: float, model_version: str, seed: int | None = None
    ) -> None:
        self.directory = directory
        self.sample_rate = sample_rate
        self.model_version = model_version
        # Seeded per process by default, so workers do not sample the same request positions.
        self._random = random.Random(os.getpid() if seed is None else seed)  # noqa: S311 - sampling, not security
        self._file: TextIO | None = None
        self._file_day = ""
        self._last_flush = 0.0
        self._last_error_logged = -ERROR_LOG_INTERVAL_SECONDS

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
        now = datetime.now(UTC)
        ts = now.isoformat(timespec="milliseconds")
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
        try:
            self._stream(now).write(lines)
            if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_SECONDS:
                self.flush()
        except (OSError, ValueError) as error:
            self._report(error)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._last_flush = time.monotonic()

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._file.close()
        except OSError as error:
            self._report(error)
        self._file = None

    def _stream(self, now: datetime) -> TextIO:
        day = now.strftime("%Y%m%d")
        if self._file is None or day != self._file_day:
            self.close()
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"inference-{day}-{os.getpid()}.jsonl"
            self._file = path.open("a", encoding="utf-8", buffering=64 * 1024)
            self._file_day = day
        return self._file

    def _report(self, error: Exception) -> None:
        """Log a write failure, at most once a minute so a full disk does not flood the logs."""
        now = time.monotonic()
        if now - self._last_error_logged >= ERROR_LOG_INTERVAL_SECONDS:
            self._last_error_logged = now
            logger.warning(
                "inference log write failed; requests are still served", extra={"error": repr(error)}
            )
