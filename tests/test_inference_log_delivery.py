"""The inference log reaches Cloud Storage and Azure Blob Storage, and `make drift-pull` brings it back intact.

The aws path runs the whole service against moto's S3 (tests/test_generated_project.py). Here the generated
project's own shipper (serving/log_shipper.py, the real google-cloud-storage / azure-storage-blob clients) uploads
closed inference log files to an emulator on 127.0.0.1, and `make drift-pull` (gcsfs / adlfs through fsspec) copies
them back: the same files, byte for byte. The emulators: gcp-storage-emulator (pure Python, a test-only venv under
the cache directory; google-cloud-storage and gcsfs follow STORAGE_EMULATOR_HOST) and Azurite's blob service
(npm, installed by .ci/bootstrap; the shipper and adlfs use AZURE_STORAGE_CONNECTION_STRING, an emulator-only hook).
What an emulator cannot show: the workload identities and the prefix-only permissions (plan tests, checkov).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import run
from test_generated_project import free_port, fresh_copy, project_env, step
from tool_venvs import ToolInstallError, tool_venv

GCS_EMULATOR = "gcp-storage-emulator==2026.7.19"
# Azurite's well-known development account (documented by Microsoft, accepted by Azurite only).
AZURITE_ACCOUNT = "devstoreaccount1"
# pragma: allowlist nextline secret
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER, PREFIX = "data", "inference/"  # as in PROJECT_SCRIPT

# Runs in the generated project's environment: `make` the bucket, `ship` sampled records with the project's
# InferenceLog + LogShipper, `list` the objects under the prefix with the cloud SDK.
PROJECT_SCRIPT = """
import csv, json, os, shutil, sys
from pathlib import Path

mode, cloud, uri = sys.argv[1:4]
if mode == "make":
    if cloud == "gcp":
        from google.cloud import storage
        storage.Client().create_bucket("data")
    else:
        from azure.storage.blob import BlobServiceClient
        BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).create_container(
            "data"
        )
    print(json.dumps("made"))
elif mode == "ship":
    from customer_churn.scoring.outputs import Predictions
    from customer_churn.serving.inference_log import InferenceLog
    from customer_churn.serving.log_shipper import LogShipper, uploader_for

    local, sent = Path(sys.argv[4]), Path(sys.argv[5])
    with open("data/raw/customers.csv", newline="") as handle:
        rows = [row for _, row in zip(range(120), csv.DictReader(handle))]
    log = InferenceLog(local, sample_rate=1.0, model_version="v-emulator", rotate_bytes=8_192)
    for start in range(0, len(rows), 20):
        batch = rows[start : start + 20]
        scores = [float(position % 10) / 10 for position in range(len(batch))]
        log.record(
            batch,
            Predictions(
                task="binary",
                primary=scores,
                buckets=[str(int(score * 10)) for score in scores],
                records=[{"score": score} for score in scores],
            ),
        )
    log.close()
    shutil.copytree(local, sent)
    shipped = LogShipper(local, uploader_for(uri)).pass_once()
    print(json.dumps({"shipped": shipped, "left": sorted(path.name for path in local.iterdir())}))
else:
    if cloud == "gcp":
        from google.cloud import storage
        names = [blob.name for blob in storage.Client().list_blobs("data", prefix="inference/")]
    else:
        from azure.storage.blob import BlobServiceClient
        service = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
        names = list(service.get_container_client("data").list_blob_names(name_starts_with="inference/"))
    print(json.dumps(names))
"""


def wait_listening(port: int, process: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            alive = process.poll() is None and time.monotonic() < deadline
            assert alive, f"the emulator did not start:\n{log.read_text()}"
            time.sleep(0.2)


def gcs_emulator_venv() -> Path:
    """gcp-storage-emulator in its own venv under the cache directory, created once."""
    try:
        return tool_venv("gcs-emulator", sys.executable, (GCS_EMULATOR,))
    except ToolInstallError as error:
        pytest.skip(f"cannot install {GCS_EMULATOR} (offline?): {str(error)[-500:]}")


def start_emulator(cloud: str, tmp_path: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """The emulator for the cloud on 127.0.0.1 and the environment that points the project's clients at it."""
    port = free_port()
    log = tmp_path / f"{cloud}-emulator.log"
    if cloud == "gcp":
        command = [str(gcs_emulator_venv() / "bin" / "gcp-storage-emulator"), "start", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--in-memory"]
        env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
    else:
        azurite = shutil.which("azurite-blob")
        if azurite is None:
            pytest.skip("azurite-blob is not installed (.ci/bootstrap: npm install -g azurite): Azure Blob is untested")
        command = [azurite, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(tmp_path / "azurite")]
        command += ["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]
        endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        env = {
            "AZURE_STORAGE_CONNECTION_STRING": (
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint={endpoint};"
            ),
        }
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    wait_listening(port, process, log)
    return process, env


@pytest.fixture
def emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    process, env = start_emulator(request.param, tmp_path)
    try:
        yield env
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cloud", "emulator"), [("gcp", "gcp"), ("azure", "azure")], indirect=["emulator"], ids=["gcs", "azure-blob"]
)
def test_the_shipped_inference_log_comes_back_with_drift_pull(
    render: Callable[..., Path], tmp_path: Path, cloud: str, emulator: dict[str, str]
) -> None:
    started = time.monotonic()
    project = fresh_copy(render, tmp_path, cloud_provider=cloud, serving="container")
    step(project, "uv", "sync", "--locked", "--quiet")
    env = {**project_env(), **emulator}
    uri = f"gs://{CONTAINER}/{PREFIX}" if cloud == "gcp" else f"az://{CONTAINER}/{PREFIX}"
    script = tmp_path / "emulated_store.py"
    script.write_text(PROJECT_SCRIPT)

    def in_project(*args: str) -> str:
        result = run(["uv", "run", "--no-sync", "python", str(script), *args], cwd=project, env=env, timeout=120)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout.strip().splitlines()[-1]

    in_project("make", cloud, uri)
    local, sent = tmp_path / "service-inference", tmp_path / "sent"
    shipped = json.loads(in_project("ship", cloud, uri, str(local), str(sent)))
    sent_files = sorted(path.name for path in sent.glob("inference-*.jsonl"))
    assert len(sent_files) > 1, "the records span several closed files"
    assert shipped == {"shipped": len(sent_files), "left": []}, "every closed file uploaded, no local copy kept"
    assert json.loads(in_project("list", cloud, uri)) == [f"{PREFIX}{name}" for name in sent_files]

    pulled = run(["make", "drift-pull", f"INFERENCE_LOG_URI={uri}"], cwd=project, env=env, timeout=120)
    assert pulled.returncode == 0, pulled.stdout[-3000:] + pulled.stderr[-3000:]
    assert f"copied {len(sent_files)} inference log file(s)" in pulled.stdout
    back = project / "data" / "inference"
    assert sorted(path.name for path in back.glob("inference-*.jsonl")) == sent_files
    for name in sent_files:
        assert (back / name).read_bytes() == (sent / name).read_bytes(), f"{name} changed on its way"
    records = [json.loads(line) for name in sent_files for line in (back / name).read_text().splitlines()]
    assert len(records) == 120
    assert {record["model_version"] for record in records} == {"v-emulator"}

    again = run(["make", "drift-pull", f"INFERENCE_LOG_URI={uri}"], cwd=project, env=env, timeout=120)
    assert again.returncode == 0 and "copied 0 inference log file(s)" in again.stdout, again.stdout + again.stderr
    elapsed = time.monotonic() - started
    print(f"  {cloud}: {len(sent_files)} files, {len(records)} records there and back in {elapsed:.1f} s")
