"""Scoring of concurrent requests in one model call (adaptive micro-batching).

A model call costs far more in fixed overhead (building the matrix, the ONNX session run) than per row:
scoring 16 one-record requests one by one takes many times the time of scoring one 16-row matrix. So each
request queues its validated records and awaits its share of the predictions. The first request of an
event-loop iteration schedules one flush after the requests already received in that iteration, which
scores them all at once. Under light load a flush holds one request and adds no waiting; under heavy load
batches grow with concurrency and throughput grows with them. Rows are scored independently, so results do
not depend on the batching beyond floating-point rounding.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..scoring.outputs import Predictions
from . import metrics
from .inference_log import InferenceLog
from .predictor import Predictor

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    records: Sequence[dict[str, Any]]
    future: asyncio.Future[Predictions]


class CoalescingScorer:
    """Scores the records of all requests that arrive in one event-loop iteration with one model call."""

    def __init__(self, predictor: Predictor, inference_log: InferenceLog | None) -> None:
        self.predictor = predictor
        self.inference_log = inference_log
        self._pending: list[_Pending] = []

    async def score(self, records: Sequence[dict[str, Any]]) -> Predictions:
        """Predictions of `records` (validated model inputs), scored with those of concurrent requests."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Predictions] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append(_Pending(records, future))
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        records = [record for item in pending for record in item.records]
        try:
            result = self.predictor.predict_records(records)
        except Exception as error:  # a model fault: each request of the batch gets a 500, the log the cause
            for item in pending:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        start = 0
        for item in pending:
            end = start + len(item.records)
            if not item.future.done():  # done: the client went away and the request was cancelled
                item.future.set_result(result.rows(start, end))
            start = end
        try:  # bookkeeping after the answers: a failure here must not leave a request waiting
            metrics.observe_predictions(result)
            metrics.observe_inputs(records, self.predictor.metadata.training_ranges)
            if self.inference_log is not None:
                self.inference_log.record(records, result)
        except Exception:
            logger.exception("recording the predictions failed; the responses are not affected")
