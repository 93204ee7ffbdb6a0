"""Ship the closed inference log files (serving/inference_log.py) to object storage, where drift reads them.

One shipper runs per container, in the process that supervises the workers (serving/__main__.py), when
INFERENCE_LOG_URI names a destination (s3://<bucket>/<prefix>/, gs://..., az://<container>/<prefix>/ with
AZURE_STORAGE_ACCOUNT_NAME, or a local directory). Every `interval` seconds it uploads each closed
inference-*.jsonl file, oldest first, under the same name, then deletes the local copy; the credentials are
the workload's own (ECS task role, a Kubernetes workload identity, Container Apps or Azure ML managed
identity, Vertex AI service account), found by the cloud SDK's default chain: no key is configured. The
workload may write under that prefix only (Terraform). For an emulator or local development only: with
AZURE_STORAGE_CONNECTION_STRING set, az:// uploads go to that connection string's account (Azurite), and
gs:// goes to STORAGE_EMULATOR_HOST when set (google-cloud-storage's own switch); production sets neither.

It never touches a request: the workers only write local files. A failed upload is retried on the next pass
with exponential backoff (capped); local disk stays bounded: beyond `max_bytes` of closed files the oldest are
deleted and counted (inference_log_dropped_files_total), so a long outage of the store loses the oldest
records, never the service. A .open file left by a worker that died is closed by the shipper once it is idle
for longer than a rotation period.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from . import metrics
from .inference_log import OPEN_SUFFIX
from .settings import Settings

logger = logging.getLogger(__name__)

CLOSED_GLOB = "inference-*.jsonl"
Uploader = Callable[[Path, str], None]  # (local file, object name under the destination prefix)


def uploader_for(uri: str, environ: Mapping[str, str] | None = None) -> Uploader:
    """An upload function for the destination URI, with the cloud SDK's default credentials."""
    parsed = urlparse(uri)
    prefix = parsed.path.lstrip("/")
    prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
    if parsed.scheme == "s3":
        return _s3_uploader(parsed.netloc, prefix)
    if parsed.scheme == "gs":
        return _gcs_uploader(parsed.netloc, prefix)
    if parsed.scheme in ("az", "abfs"):
        return _azure_uploader(parsed.netloc, prefix, environ)
    if parsed.scheme in ("", "file"):
        return _directory_uploader(Path(parsed.path if parsed.scheme else uri))
    raise ValueError(f"INFERENCE_LOG_URI {uri!r}: use s3://, gs://, az:// or a directory")


def _s3_uploader(bucket: str, prefix: str) -> Uploader:
    # botocore's default chain: the ECS task role, EKS pod identity / IRSA; AWS_ENDPOINT_URL is honoured.
    session = importlib.import_module("botocore.session").get_session()
    client = session.create_client("s3")

    def upload(path: Path, name: str) -> None:
        with path.open("rb") as body:
            client.put_object(
                Bucket=bucket, Key=f"{prefix}{name}", Body=body, ContentType="application/x-ndjson"
            )

    return upload


def _gcs_uploader(bucket: str, prefix: str) -> Uploader:
    # Application default credentials: the GKE workload identity or the Vertex AI endpoint's service account.
    storage = importlib.import_module("google.cloud.storage")
    target = storage.Client().bucket(bucket)

    def upload(path: Path, name: str) -> None:
        target.blob(f"{prefix}{name}").upload_from_filename(str(path), content_type="application/x-ndjson")

    return upload


def _azure_uploader(container: str, prefix: str, environ: Mapping[str, str] | None) -> Uploader:
    # DefaultAzureCredential: the managed identity of AZURE_CLIENT_ID, or a Kubernetes workload identity.
    # AZURE_STORAGE_CONNECTION_STRING: Azurite or local development only (a deployment never sets it).
    env = os.environ if environ is None else environ
    blob = importlib.import_module("azure.storage.blob")
    connection_string = env.get("AZURE_STORAGE_CONNECTION_STRING", "")
    if connection_string:
        service = blob.BlobServiceClient.from_connection_string(connection_string)
    else:
        account = env.get("AZURE_STORAGE_ACCOUNT_NAME", "")
        if not account:
            raise ValueError(
                "INFERENCE_LOG_URI az://... needs AZURE_STORAGE_ACCOUNT_NAME (the data storage account)"
            )
        identity = importlib.import_module("azure.identity")
        service = blob.BlobServiceClient(
            f"https://{account}.blob.core.windows.net", credential=identity.DefaultAzureCredential()
        )
    target = service.get_container_client(container)

    def upload(path: Path, name: str) -> None:
        with path.open("rb") as body:
            target.upload_blob(f"{prefix}{name}", body, overwrite=True)

    return upload


def _directory_uploader(directory: Path) -> Uploader:
    def upload(path: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / f".{name}.part"
        shutil.copyfile(path, partial)
        partial.replace(directory / name)

    return upload


@dataclass
class LogShipper:
    directory: Path
    upload: Uploader
    max_bytes: int = 512 * 1024 * 1024
    interval: float = 30.0
    abandoned_after: float = 900.0  # a .open file idle this long belongs to a worker that died
    max_backoff: float = 600.0
    _failures: int = 0
    _next_attempt: float = 0.0
    _stopped: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def pass_once(self, now: float | None = None) -> int:
        """Upload what is due (unless backing off), then bound the disk. Returns the files shipped."""
        now = time.monotonic() if now is None else now
        self._close_abandoned()
        shipped = 0
        if now >= self._next_attempt:
            for path in self._closed_files():
                try:
                    self.upload(path, path.name)
                except Exception as error:  # any SDK error: keep the file, back off, try again later
                    self._failures += 1
                    delay = min(self.max_backoff, self.interval * 2 ** min(self._failures, 16))
                    self._next_attempt = now + delay
                    metrics.INFERENCE_LOG_UPLOAD_FAILURES.inc()
                    logger.warning(
                        "inference log upload failed; retrying later",
                        extra={"file": path.name, "retry_in_seconds": round(delay), "error": repr(error)},
                    )
                    break
                path.unlink(missing_ok=True)
                shipped += 1
                self._failures = 0
                metrics.INFERENCE_LOG_SHIPPED_FILES.inc()
        self._bound_disk()
        return shipped

    def start(self) -> LogShipper:
        def loop() -> None:
            while not self._stopped.wait(self.interval):
                self._safe_pass()

        self._thread = threading.Thread(target=loop, name="inference-log-shipper", daemon=True)
        self._thread.start()
        return self

    def stop(self, final_pass: bool = True) -> None:
        """Stop the loop; ship what the workers closed at shutdown (one attempt, no backoff)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        if final_pass:
            self._next_attempt = 0.0
            self._safe_pass()

    def _safe_pass(self) -> None:
        try:
            self.pass_once()
        except Exception:  # the shipper must never take the service down
            logger.exception("inference log shipper pass failed")

    def _closed_files(self) -> list[Path]:
        files = [path for path in self.directory.glob(CLOSED_GLOB) if path.is_file()]
        return sorted(files, key=lambda path: (path.stat().st_mtime, path.name))

    def _close_abandoned(self) -> None:
        cutoff = time.time() - self.abandoned_after
        for path in self.directory.glob(f"{CLOSED_GLOB}{OPEN_SUFFIX}"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.rename(path.with_name(path.name.removesuffix(OPEN_SUFFIX)))
            except OSError:
                continue

    def _bound_disk(self) -> None:
        files = self._closed_files()
        sizes = {path: path.stat().st_size for path in files}
        total = sum(sizes.values())
        for path in files:  # oldest first
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= sizes[path]
            metrics.INFERENCE_LOG_DROPPED_FILES.inc()
            logger.warning(
                "inference log over its disk bound: dropped the oldest file", extra={"file": path.name}
            )
        metrics.INFERENCE_LOG_PENDING_BYTES.set(total)


def shipper_from_settings(settings: Settings) -> LogShipper | None:
    """The shipper for INFERENCE_LOG_URI, started; None when nothing is logged or no destination is set."""
    if not settings.inference_log_uri or settings.inference_log_sample_rate <= 0:
        return None
    upload = uploader_for(settings.inference_log_uri)
    shipper = LogShipper(
        settings.inference_log_dir,
        upload,
        max_bytes=settings.inference_log_max_bytes,
        interval=settings.inference_log_ship_seconds,
        abandoned_after=max(900.0, 3 * settings.inference_log_rotate_seconds),
    )
    logger.info(
        "shipping inference logs",
        extra={"destination": settings.inference_log_uri, "every_seconds": shipper.interval},
    )
    return shipper.start()
