"""Run the service: `python -m <package>.serving [serve]` (SageMaker starts containers with `serve`).

Configuration comes from the environment: HOST, PORT, METRICS_PORT, WEB_CONCURRENCY, LOG_LEVEL, AUTH_MODE and
the other variables read by settings.Settings. With INFERENCE_LOG_URI set, this process also runs the
inference log shipper (serving/log_shipper.py) beside the workers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

# Set before numpy/scikit-learn are imported (by the app, in every worker): a request is one small matrix,
# so thread pools only add contention; scale with workers (WEB_CONCURRENCY) instead.
THREAD_POOL_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def pin_thread_pools() -> None:
    for variable in THREAD_POOL_VARIABLES:
        os.environ.setdefault(variable, "1")


def share_metrics_between_workers(workers: int) -> None:
    """With several worker processes, give prometheus-client a fresh directory to aggregate metrics in."""
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__)
    parser.add_argument(
        "command", nargs="?", choices=["serve"], default="serve", help="what to run (default: serve)"
    )
    parser.parse_args(argv)

    pin_thread_pools()
    import uvicorn

    from .logging_config import logging_config
    from .settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    share_metrics_between_workers(settings.web_concurrency)
    from .metrics import MetricsServer

    try:
        MetricsServer((settings.host, settings.metrics_port), settings.model_dir).start()
    except OSError as error:  # serve predictions anyway: the failed scrapes raise ServiceTargetDown
        print(f"metrics are not served: METRICS_PORT={settings.metrics_port}: {error}", file=sys.stderr)
    from .log_shipper import shipper_from_settings

    try:
        shipper = shipper_from_settings(settings)
    except (ImportError, ValueError) as error:  # serve anyway: the drift check reports the missing data
        print(f"inference logs are not shipped: INFERENCE_LOG_URI: {error}", file=sys.stderr)
        shipper = None
    uvicorn.run(
        f"{__package__}.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.web_concurrency,
        log_config=logging_config(settings.log_level),
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=20,
        # Bounded work per worker: beyond LIMIT_CONCURRENCY connections uvicorn answers 503 at once, and an
        # idle keep-alive connection is closed after 5 s (slow clients cannot hold every slot).
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=5,
    )
    if shipper is not None:  # the workers closed their files on the way out: ship them
        shipper.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
