"""A generated project with `tracking_server: self_hosted` against a real MLflow server, as production runs it.

Started on 127.0.0.1, nothing else contacted:
- PostgreSQL 15 (`initdb` into a temporary directory, `pg_ctl`): MLflow's backend store;
- moto's S3 server: the artefact store (`--artifacts-destination s3://...`, served through the server with
  `--serve-artifacts`, so the project's client needs no bucket credentials);
- `mlflow server --app-name basic-auth`: authentication on (MLflow's basic-auth app stands in for the
  organisation's OIDC proxy; the client side is the same: credentials from the environment).
The server's tools live in a venv of their own, created once under ~/.cache (the mlflow version of the generated
project's lock + psycopg2-binary + boto3 + moto[server]), never in the template's or the project's environment.

Then the project runs `make pipeline` three times (a champion, a challenger the gate refuses, one it promotes) and
the test asserts, through the MLflow client of the project as an authorised user: runs, metrics, params and the
ONNX artefact on the server (and the artefact in the S3 bucket); the registered versions and the `champion` alias;
that an unauthenticated request gets 401; that restarting MLflow and PostgreSQL loses nothing; that the service
serving the registry's champion (`python -m <pkg>.tracking.registry fetch-champion`) predicts what models/champion
predicts; and that with the server down, or MLFLOW_TRACKING_URI unset, `make pipeline` fails with the reason and
no local mlruns.db appears. What this cannot run: the cloud's own pieces (OAuth2-proxy with a real OIDC provider,
IAP, Entra ID, Aurora/Cloud SQL/flexible server, the managed MLflow services).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from conftest import run
from test_generated_project import PACKAGE, free_port, fresh_copy, project_env
from tool_venvs import tool_venv

pytestmark = pytest.mark.slow

# The server side's own pins (the mlflow version comes from the generated project's lock).
SERVER_PACKAGES = ("psycopg2-binary==2.9.13", "boto3==1.44.18", "moto[server]==5.2.6")
BUCKET = "mlflow-artifacts"
ADMIN = "admin"
REGISTERED_MODEL = "customer-churn"  # params.yaml tracking.registered_model of the default render
ANSWERS = {"cloud_provider": "none", "serving": "container", "tracking_server": "self_hosted"}


def postgres_bin() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def as_postgres() -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def locked_mlflow_version(project: Path) -> str:
    match = re.search(r'\nname = "mlflow"\nversion = "([^"]+)"', (project / "uv.lock").read_text())
    assert match, "the generated project's uv.lock has no mlflow"
    return match.group(1)


def server_venv(mlflow_version: str) -> Path:
    """A venv with the MLflow server side, created once per version under the cache directory."""
    return tool_venv("mlflow-server", sys.executable, (f"mlflow[auth]=={mlflow_version}", *SERVER_PACKAGES))


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (an auth refusal is an answer)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        assert process.poll() is None, f"{url} exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{url} did not answer within {seconds} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Stack:
    """PostgreSQL + moto S3 + the MLflow server (basic auth), each restartable."""

    def __init__(self, root: Path, venv: Path, pg_bin: Path) -> None:
        self.root, self.venv, self.pg_bin = root, venv, pg_bin
        # As root, PostgreSQL runs as `postgres`, which cannot enter pytest's private (0700) directories.
        self.pg_dir = Path(tempfile.mkdtemp(prefix="mlflow-pg-")) if os.geteuid() == 0 else root / "pg"
        self.pg_data = self.pg_dir / "data"
        self.pg_port, self.moto_port, self.mlflow_port = free_port(), free_port(), free_port()
        self.password = secrets.token_urlsafe(18)
        self.flask_key = secrets.token_hex(16)  # the same across restarts (CSRF tokens of the auth app)
        self.url = f"http://127.0.0.1:{self.mlflow_port}"
        self.moto: subprocess.Popen | None = None
        self.mlflow: subprocess.Popen | None = None

    # -- PostgreSQL ------------------------------------------------------------------------------------------------
    def init_postgres(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.pg_dir, "postgres", "postgres")
        result = run(
            [
                *as_postgres(),
                str(self.pg_bin / "initdb"),
                "-D",
                str(self.pg_data),
                "-U",
                "mlflow",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            cwd=self.pg_dir,
        )
        assert result.returncode == 0, result.stderr

    def start_postgres(self) -> None:
        options = f"-p {self.pg_port} -c listen_addresses=127.0.0.1 -k {self.pg_dir}"
        result = run(
            [
                *as_postgres(),
                str(self.pg_bin / "pg_ctl"),
                "-D",
                str(self.pg_data),
                "-o",
                options,
                "-l",
                str(self.pg_dir / "server.log"),
                "-w",
                "start",
            ],
            cwd=self.pg_dir,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def stop_postgres(self) -> None:
        run(
            [*as_postgres(), str(self.pg_bin / "pg_ctl"), "-D", str(self.pg_data), "-m", "fast", "-w", "stop"],
            cwd=self.pg_dir,
        )

    # -- moto S3 ---------------------------------------------------------------------------------------------------
    def start_moto(self) -> None:
        log = self.root / "moto.log"
        self.moto = subprocess.Popen(
            [str(self.venv / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(self.moto_port)],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(f"http://127.0.0.1:{self.moto_port}/moto-api/", self.moto, log)
        request = urllib.request.Request(f"http://127.0.0.1:{self.moto_port}/{BUCKET}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def bucket_keys(self) -> list[str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.moto_port}/{BUCKET}?list-type=2", timeout=10) as r:
            return re.findall(r"<Key>([^<]+)</Key>", r.read().decode())

    # -- MLflow ----------------------------------------------------------------------------------------------------
    def start_mlflow(self) -> None:
        config = self.root / "basic_auth.ini"
        config.write_text(
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = sqlite:///{self.root / 'basic_auth.db'}\n"
            f"admin_username = {ADMIN}\n"
            f"admin_password = {self.password}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VIRTUAL_ENV"))},
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": self.flask_key,
            "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.moto_port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            # the server's background job runner (GenAI jobs) is not used here: its worker processes only cost CPU
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        log = self.root / "mlflow.log"
        self.mlflow = subprocess.Popen(
            [
                str(self.venv / "bin" / "mlflow"),
                "server",
                "--app-name",
                "basic-auth",
                "--backend-store-uri",
                f"postgresql+psycopg2://mlflow@127.0.0.1:{self.pg_port}/postgres",
                "--artifacts-destination",
                f"s3://{BUCKET}",
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.mlflow_port),
                "--workers",
                "1",
            ],
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.root,
            start_new_session=True,
        )
        wait_for(f"{self.url}/health", self.mlflow, log, seconds=120)
        self.cheapen_password_hash()

    def cheapen_password_hash(self) -> None:
        """Store the admin's password as a 1,000-round PBKDF2 hash instead of werkzeug's default scrypt.

        The basic-auth app checks the password on every request; scrypt costs ~0.1 s of CPU per check (seconds on a
        busy CI runner), which would dominate this test's time. The check itself (werkzeug's
        check_password_hash, which reads the method from the stored hash) is unchanged.
        """
        salt = secrets.token_hex(8)
        digest = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt.encode(), 1000).hex()
        with sqlite3.connect(self.root / "basic_auth.db") as db:
            changed = db.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?",
                (f"pbkdf2:sha256:1000${salt}${digest}", ADMIN),
            ).rowcount
        assert changed == 1, "the basic-auth app did not create its admin user"

    def stop_mlflow(self) -> None:
        if self.mlflow is not None:
            stop(self.mlflow)

    def client_env(self, *, authenticated: bool = True) -> dict[str, str]:
        env = {**project_env(), "MLFLOW_TRACKING_URI": self.url}
        if authenticated:
            env |= {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": self.password}
        return env

    def stop_all(self) -> None:
        self.stop_mlflow()
        if self.moto is not None:
            stop(self.moto)
        self.stop_postgres()
        if os.geteuid() == 0:
            shutil.rmtree(self.pg_dir, ignore_errors=True)


# What the server holds, read with the project's own MLflow client (the identity of the pipeline).
STATE_SCRIPT = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient()
name = sys.argv[1]
experiment = client.get_experiment_by_name(name)
runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
versions = client.search_model_versions(f"name = '{name}'")
try:
    champion = client.get_model_version_by_alias(name, "champion").version
except Exception:
    champion = None
print(json.dumps({
    "artifact_location": experiment.artifact_location,
    "runs": [{
        "run_id": run.info.run_id,
        "status": run.info.status,
        "metrics": run.data.metrics,
        "params": run.data.params,
        "model_version": run.data.tags.get("model_version"),
        "files": sorted(f.path for f in client.list_artifacts(run.info.run_id, "model_files")),
    } for run in runs],
    "versions": sorted((str(v.version), v.run_id) for v in versions),
    "champion": None if champion is None else str(champion),
}))
"""


def server_state(project: Path, stack: Stack) -> dict:
    result = run(
        ["uv", "run", "--no-sync", "python", "-c", STATE_SCRIPT, REGISTERED_MODEL], cwd=project, env=stack.client_env()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def pipeline(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(["make", "pipeline"], cwd=project, env=env, timeout=900)


def set_params(project: Path, change: Callable[[dict], None]) -> None:
    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    change(params)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def gate_report(project: Path) -> dict:
    return json.loads((project / "reports" / "gate.json").read_text())


@contextmanager
def serving(project: Path, model_dir: str) -> Iterator[str]:
    port = free_port()
    env = {**project_env(), "PORT": str(port), "HOST": "127.0.0.1", "MODEL_DIR": model_dir, "AUTH_MODE": "none"}
    log = project / f"serve-{port}.log"
    process = subprocess.Popen(
        ["make", "serve"], cwd=project, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the service was not ready within 60 s"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def predictions(url: str, records: list[dict]) -> list[dict]:
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps({"records": records}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["predictions"]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_pipeline_registry_and_serving_against_a_real_tracking_server(
    render: Callable[..., Path], tmp_path: Path
) -> None:
    pg_bin = postgres_bin()
    if pg_bin is None:
        pytest.skip("PostgreSQL 15 is not installed (initdb not found; .ci/bootstrap installs postgresql-15)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: PostgreSQL cannot be started as root")
    started = time.monotonic()
    timings: dict[str, float] = {}
    project = fresh_copy(render, tmp_path, **ANSWERS)
    venv = server_venv(locked_mlflow_version(project))
    timings["server venv"] = time.monotonic() - started
    stack = Stack(tmp_path / "stack", venv, pg_bin)
    # `make setup` installs the project while the stack starts (both take tens of seconds)
    setup = subprocess.Popen(
        ["make", "setup"], cwd=project, env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        stack.init_postgres()
        stack.start_postgres()
        stack.start_moto()
        stack.start_mlflow()
        timings["stack up"] = time.monotonic() - started
        output, _ = setup.communicate(timeout=900)
        assert setup.returncode == 0, f"make setup failed:\n{output[-4000:]}"
        timings["setup done"] = time.monotonic() - started
        # One permutation-importance repeat instead of five: the evaluation's content is not under test here.
        set_params(project, lambda p: p["evaluate"].update(permutation_repeats=1))

        # Without MLFLOW_TRACKING_URI a self_hosted project refuses to run, and says why.
        unset = pipeline(project, project_env())
        assert unset.returncode != 0
        assert "MLFLOW_TRACKING_URI is not set" in unset.stdout + unset.stderr, unset.stderr[-3000:]
        assert not (project / "mlruns.db").exists()

        # Unauthenticated: refused by the server (401), and the pipeline says so.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{stack.url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
        assert refused.value.code == 401
        anonymous = pipeline(project, stack.client_env(authenticated=False))
        assert anonymous.returncode != 0
        assert "refused the credentials" in anonymous.stdout + anonymous.stderr, anonymous.stderr[-3000:]

        env = stack.client_env()
        # 1. the first model: the champion, version 1
        first = time.monotonic()
        result = pipeline(project, env)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        timings["pipeline 1"] = time.monotonic() - first
        assert gate_report(project)["promoted"] is True
        # 2. a much weaker challenger: refused, never registered
        set_params(
            project,
            lambda p: p["model"].update(
                type="hist_gradient_boosting",
                hist_gradient_boosting={**p["model"]["hist_gradient_boosting"], "max_iter": 1, "max_leaf_nodes": 2},
            ),
        )
        result = pipeline(project, env)
        assert result.returncode != 0, "the gate promoted a one-split model"
        assert gate_report(project)["promoted"] is False
        # 3. the linear model with another decision threshold: as good as the champion, promoted as version 2
        set_params(project, lambda p: p["model"].update(type="linear", threshold=0.45))
        result = pipeline(project, env)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        assert gate_report(project)["promoted"] is True
        assert not (project / "mlruns.db").exists() and not (project / "mlartifacts").exists()

        state = server_state(project, stack)
        runs = state["runs"]
        assert len(runs) == 3, runs
        assert all(run_["status"] == "FINISHED" for run_ in runs)
        assert [run_["params"]["model.type"] for run_ in runs] == ["linear", "hist_gradient_boosting", "linear"]
        assert runs[2]["params"]["model.threshold"] == "0.45"
        for run_ in runs:
            assert {"test.roc_auc", "model.roc_auc"} <= set(run_["metrics"]), run_["metrics"]
            assert run_["files"] == ["model_files/metadata.json", "model_files/model.joblib", "model_files/model.onnx"]
        assert state["artifact_location"].startswith("mlflow-artifacts:"), state["artifact_location"]
        keys = stack.bucket_keys()
        assert any(key.endswith(f"{runs[2]['run_id']}/artifacts/model_files/model.onnx") for key in keys), keys
        # only promoted models are versions; the alias names the last promotion
        assert state["versions"] == [["1", runs[0]["run_id"]], ["2", runs[2]["run_id"]]]
        assert state["champion"] == "2"
        champion = json.loads((project / "models" / "champion" / "metadata.json").read_text())
        assert champion["model_version"] == runs[2]["model_version"]

        # Restart MLflow and PostgreSQL: nothing lost.
        stack.stop_mlflow()
        stack.stop_postgres()
        stack.start_postgres()
        stack.start_mlflow()
        assert server_state(project, stack) == state

        # The registry's champion, fetched as CD fetches it, serves what models/champion serves.
        step_with(
            project,
            "uv",
            "run",
            "--no-sync",
            "python",
            "-m",
            f"{PACKAGE}.tracking.registry",
            "fetch-champion",
            "--output",
            "models/registry-champion",
            env=env,
        )
        fetched = json.loads((project / "models" / "registry-champion" / "metadata.json").read_text())
        assert fetched["tracking"]["registered_version"] == "2"
        assert fetched["model_version"] == champion["model_version"]
        assert (project / "models/registry-champion/model.onnx").read_bytes() == (
            project / "models/champion/model.onnx"
        ).read_bytes()
        sample = yaml.safe_load((project / "params.yaml").read_text())["data"]["raw"]
        records = records_of(project, sample, count=20)
        with serving(project, "models/champion") as local, serving(project, "models/registry-champion") as registry:
            assert predictions(registry, records) == predictions(local, records)
            assert get_json(f"{registry}/version")["registry_version"] == "2"

        # Rollback: the alias moves back to version 1, and the fetched champion is version 1's model.
        step_with(project, "make", "rollback-champion", "VERSION=1", env=env)
        assert server_state(project, stack)["champion"] == "1"
        step_with(project, "make", "fetch-champion", env=env)
        assert step_output(project, "make", "--silent", "registry-version") == "1"

        # The server down: the pipeline fails with the reason, and nothing falls back to a local file.
        stack.stop_mlflow()
        set_params(project, lambda p: p["model"].update(threshold=0.5))
        down = pipeline(project, {**env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"})
        assert down.returncode != 0
        output = down.stdout + down.stderr
        assert f"the MLflow tracking server {stack.url} did not answer" in output, output[-3000:]
        assert "tracking-server-down.md" in output
        assert not (project / "mlruns.db").exists() and not (project / "mlruns").exists()
    finally:
        if setup.poll() is None:
            setup.kill()
        stack.stop_all()
    timings["total"] = time.monotonic() - started
    print(f"  timings: { {name: round(value, 1) for name, value in timings.items()} }")


def step_with(project: Path, *command: str, env: dict[str, str]) -> None:
    result = run(list(command), cwd=project, env=env, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-4000:]}"


def step_output(project: Path, *command: str) -> str:
    result = run(list(command), cwd=project, env=project_env())
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def records_of(project: Path, raw: str, count: int) -> list[dict]:
    """The first `count` rows of the raw data as the service's records (inputs of the contract only)."""
    script = (
        "import sys, pandas as pd\n"
        f"from {PACKAGE}.contract import load_contract\n"
        "frame = pd.read_csv(sys.argv[1]).head(int(sys.argv[2]))\n"
        "print(frame[list(load_contract().input_columns)].to_json(orient='records'))\n"
    )
    result = run(["uv", "run", "--no-sync", "python", "-c", script, raw, str(count)], cwd=project, env=project_env())
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)
