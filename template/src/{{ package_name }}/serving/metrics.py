"""Prometheus metrics of the service. The names are a contract: alert rules and dashboards use them.

With one worker the metrics live in this process. With several workers (WEB_CONCURRENCY > 1) each worker is
a separate process, so `python -m <package>.serving` points PROMETHEUS_MULTIPROC_DIR at a fresh directory
before the workers start: every worker writes its samples there, and a scrape of /metrics returns the totals
of all of them (prometheus-client's multiprocess mode). /metrics is served on METRICS_PORT by MetricsServer,
never on the public port of the prediction routes.
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from ..metadata import ModelArtifactError, ModelMetadata, read_metadata
from ..scoring.outputs import Predictions

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the first byte of the request to the end of the response.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PREDICTIONS = Counter(
    "model_predictions_total",
    "Scored records by monitoring bucket: the predicted class, or the decile q0..q9 of the test-split "
    "predictions (regression).",
    ["bucket"],
)
PREDICTIONS_CLIPPED = Counter(
    "model_predictions_clipped_total",
    "Regression predictions clipped to the contract's target min/max (the model answered outside them).",
)
EXPECTED_SHARE = Gauge(
    "model_expected_prediction_share",
    "Share of each bucket among the served model's predictions on its test split (from training).",
    ["bucket"],
    multiprocess_mode="mostrecent",
)
PREDICTION_SCORE = Histogram(
    "model_prediction_score",
    "binary: probability of the positive class; multiclass: probability of the predicted class; regression: "
    "the prediction's position among the test-split predictions (0 lowest, 1 highest).",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
EXPECTED_SCORE_MEDIAN = Gauge(
    "model_expected_prediction_score_median",
    "Median of model_prediction_score on the served model's test split (from training).",
    multiprocess_mode="mostrecent",
)
INPUT_OUT_OF_RANGE = Counter(
    "model_input_out_of_range_total",
    "Numeric inputs outside the range seen in training (a sign of drift or of an upstream bug).",
    ["feature"],
)
INPUT_MISSING = Counter(
    "model_input_missing_total",
    "Inputs sent as null or left out (nullable inputs only: others are refused).",
    ["feature"],
)
SCORED_RECORDS = Counter(
    "model_scored_records_total", "Records scored (the denominator of the input ratios)."
)
MODEL_INFO = Gauge(
    "model_info",
    "The model being served (value is always 1).",
    ["model_version", "git_sha"],
    multiprocess_mode="max",
)
MODEL_AGE = Gauge(
    "model_age_seconds", "Seconds since the served model was trained.", multiprocess_mode="mostrecent"
)
# The inference log shipper (serving/log_shipper.py), in the supervising process: drift's data on its way out.
INFERENCE_LOG_SHIPPED_FILES = Counter(
    "inference_log_shipped_files_total", "Closed inference log files uploaded to INFERENCE_LOG_URI."
)
INFERENCE_LOG_UPLOAD_FAILURES = Counter(
    "inference_log_upload_failures_total", "Failed uploads of inference log files (retried with backoff)."
)
INFERENCE_LOG_DROPPED_FILES = Counter(
    "inference_log_dropped_files_total",
    "Inference log files deleted unshipped because the local backlog passed INFERENCE_LOG_MAX_BYTES.",
)
INFERENCE_LOG_PENDING_BYTES = Gauge(
    "inference_log_pending_bytes",
    "Bytes of closed inference log files waiting for upload.",
    multiprocess_mode="mostrecent",
)

# /predict by id (feature_store feast; serving/entity_lookup.py): the online store's lookups.
FEATURE_LOOKUP_DURATION = Histogram(
    "feature_lookup_duration_seconds",
    "Time of one online-store read of /predict by id (all the ids of the request).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
FEATURE_LOOKUP_IDS = Counter(
    "feature_lookup_ids_total", "Ids looked up in the online store (the denominator of the miss ratio)."
)
FEATURE_LOOKUP_MISSES = Counter(
    "feature_lookup_misses_total", "Ids the online store had no features for (answered 404)."
)
FEATURE_LOOKUP_FAILURES = Counter(
    "feature_lookup_failures_total",
    "Lookups answered 503: the online store unreachable, not materialised, or older than "
    "FEATURE_MAX_AGE_SECONDS.",
)
FEATURE_MATERIALIZED_UNTIL = Gauge(
    "feature_store_materialized_until_timestamp_seconds",
    "End of the latest materialisation window of the feature view (Unix time; the freshness alert's input).",
    multiprocess_mode="max",
)


def observe_feature_lookup(ids: int, seconds: float, materialized_until: float | None) -> None:
    FEATURE_LOOKUP_IDS.inc(ids)
    FEATURE_LOOKUP_DURATION.observe(seconds)
    if materialized_until is not None:
        FEATURE_MATERIALIZED_UNTIL.set(materialized_until)


def observe_feature_lookup_misses(count: int) -> None:
    FEATURE_LOOKUP_MISSES.inc(count)


def observe_feature_lookup_failure() -> None:
    FEATURE_LOOKUP_FAILURES.inc()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method, route).observe(seconds)


def observe_predictions(predictions: Predictions) -> None:
    observe_all(PREDICTION_SCORE, score_positions(predictions))
    for bucket, count in collections.Counter(predictions.buckets).items():
        PREDICTIONS.labels(bucket).inc(count)
    if predictions.clipped_count:
        PREDICTIONS_CLIPPED.inc(predictions.clipped_count)


def score_positions(predictions: Predictions) -> list[float]:
    """The values of model_prediction_score: the primary value, or (regression) the decile position."""
    if predictions.task != "regression":
        return predictions.primary
    return [(int(bucket[1:]) + 0.5) / 10 for bucket in predictions.buckets]


def observe_inputs(
    records: Sequence[Mapping[str, Any]], training_ranges: Mapping[str, Sequence[float]]
) -> None:
    """Count missing inputs, and numeric inputs outside the [min, max] seen in training, per feature."""
    SCORED_RECORDS.inc(len(records))
    outside: dict[str, int] = {}
    missing: dict[str, int] = {}
    for record in records:
        for feature, value in record.items():
            if value is None:
                missing[feature] = missing.get(feature, 0) + 1
            elif feature in training_ranges:
                low, high = training_ranges[feature]
                if value < low or value > high:
                    outside[feature] = outside.get(feature, 0) + 1
    for feature, count in outside.items():
        INPUT_OUT_OF_RANGE.labels(feature).inc(count)
    for feature, count in missing.items():
        INPUT_MISSING.labels(feature).inc(count)


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """`histogram.observe(value)` for every value, with one update per bucket instead of two per value.

    With several workers every update is a locked write to a memory-mapped file (~1 us): observing the 100
    scores of a batch request one by one cost ~200 us, more than scoring it. prometheus-client has no batch
    observe, so this adds the counts to the bucket and sum values that `observe` updates (tests/
    test_serving_components.py checks that both give the same samples).
    """
    bounds = histogram._upper_bounds  # ascending, ends with +Inf; a value counts in the first bound >= it
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)
    if values:
        histogram._sum.inc(math.fsum(values))


def set_model(metadata: ModelMetadata) -> None:
    """Publish the served model and the baselines its predictions are compared with (for the alert rules)."""
    MODEL_INFO.labels(metadata.model_version, metadata.git_sha).set(1)
    for bucket, share in metadata.monitoring.expected_shares.items():
        EXPECTED_SHARE.labels(bucket).set(share)
    median = metadata.monitoring.median if metadata.task != "regression" else 0.5
    EXPECTED_SCORE_MEDIAN.set(median)


def exposition(trained_at: float | None) -> tuple[bytes, str]:
    """The body and content type of a /metrics response (model age is computed at scrape time)."""
    if trained_at is not None:
        MODEL_AGE.set(time.time() - trained_at)
    if MULTIPROCESS_DIR_ENV in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class _MetricsHandler(BaseHTTPRequestHandler):
    """GET /metrics of the internal port; nothing else is served there."""

    server: MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        body, content_type = exposition(self.server.trained_at())
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (one every 15 s per scraper)."""


class MetricsServer(ThreadingHTTPServer):
    """/metrics on its own port (METRICS_PORT), apart from the routes the load balancer exposes.

    It runs in the process that starts uvicorn, on a daemon thread: with one worker that process is the
    worker; with several it aggregates every worker's samples (multiprocess mode). The model's age comes from
    the metadata.json of MODEL_DIR, read at scrape time.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], model_dir: Path) -> None:
        super().__init__(address, _MetricsHandler)
        self.model_dir = model_dir

    def trained_at(self) -> float | None:
        try:
            return read_metadata(self.model_dir).trained_at_epoch
        except (ModelArtifactError, OSError, ValueError):
            return None

    def start(self) -> MetricsServer:
        threading.Thread(target=self.serve_forever, name="metrics", daemon=True).start()
        return self
