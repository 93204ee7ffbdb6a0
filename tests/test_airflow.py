"""orchestrator airflow: the generated DAG parses in a bare Airflow 3, follows dvc.yaml, and runs the pipeline.

Airflow never enters the template's or the project's dependencies: the tests install apache-airflow and the three
cloud providers (no ML library) once into a venv under the user's cache directory, keyed by the pins below, and
run every check in that interpreter as a subprocess. The slow test runs the whole DAG with `dag.test()` in the
local execution profile, Airflow's metadata database on a PostgreSQL server it starts on 127.0.0.1 (as production
Airflow runs on PostgreSQL), and compares the model's metrics with `dvc repro` of the same render.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from conftest import run
from pipeline_runs import METRICS_TOLERANCE, commit_checkout, dvc_repro_metrics, step
from tool_venvs import tool_venv

AIRFLOW_PINS = (
    "apache-airflow==3.3.2",
    "apache-airflow-providers-amazon==9.39.0",
    "apache-airflow-providers-google==22.8.0",
    "apache-airflow-providers-cncf-kubernetes==10.25.0",
    "apache-airflow-providers-postgres==7.1.1",
)
AIRFLOW_PYTHON = "3.11"
# The operator each cloud's execution profile builds (runner.json `execution`); none: the local profile.
OPERATORS = {
    "aws": "EcsRunTaskOperator",
    "gcp": "CloudRunExecuteJobOperator",
    "azure": "KubernetesPodOperator",
    "none": "_PythonDecoratedOperator",
}
ML_MODULES = ("sklearn", "pandas", "mlflow", "onnxruntime", "dvc", "customer_churn")


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    outside = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"}
    env = {key: value for key, value in os.environ.items() if key not in outside and not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DVC_NO_ANALYTICS": "1",
            **extra,
        }
    )
    return env


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """A bare Airflow 3 (+ the cloud providers and PostgreSQL driver, no ML library), installed once per cache."""
    return tool_venv("airflow", AIRFLOW_PYTHON, AIRFLOW_PINS) / "bin" / "python"


DAGBAG_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
reports = {}
for folder in sys.argv[2:]:
    bag = DagBag(dag_folder=folder)
    report = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
    for dag_id, dag in bag.dags.items():
        report["dags"][dag_id] = {
            "schedule": str(getattr(dag.timetable, "expression", None)),
            "params": sorted(dag.params.keys()),
            "max_active_runs": dag.max_active_runs,
            "tasks": [
                {"id": t.task_id, "operator": type(t).__name__, "upstream": sorted(t.upstream_task_ids),
                 "retries": t.retries,
                 "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None}
                for t in dag.topological_sort()
            ],
        }
    reports[folder] = report
reports["ml_modules"] = sorted(m for m in sys.argv[1].split(",") if m in sys.modules)
print(json.dumps(reports))
"""


def dagbags(python: Path, folders: list[Path], home: Path) -> dict:
    """DagBag of each folder, parsed in one process of the bare Airflow (its import costs seconds)."""
    result = run(
        [str(python), "-c", DAGBAG_PROBE, ",".join(ML_MODULES), *map(str, folders)],
        cwd=home.parent,
        timeout=300,
        # the kubernetes profile's pod resources: infra/terraform/azure's Helm values set this Variable
        env=airflow_env(home, AIRFLOW_VAR_PIPELINE_RESOURCES='{"cpu": "2", "memory": "8Gi"}'),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def dagbag(python: Path, folder: Path, home: Path) -> dict:
    return dagbags(python, [folder], home)[str(folder)]


CLOUDS = ("none", "aws", "gcp", "azure")


@pytest.fixture(scope="session")
def parsed(render: Callable[..., Path], airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The DAG of the airflow render of every cloud, parsed together."""
    projects = {
        cloud: render(orchestrator="airflow", cloud_provider=cloud, serving="none" if cloud == "none" else "container")
        for cloud in CLOUDS
    }
    folders = {cloud: project / "orchestration" / "airflow" / "dags" for cloud, project in projects.items()}
    reports = dagbags(airflow_python, list(folders.values()), tmp_path_factory.mktemp("airflow") / "home")
    return {
        "ml_modules": reports["ml_modules"],
        **{cloud: (projects[cloud], reports[str(folder)]) for cloud, folder in folders.items()},
    }


def dvc_stages(project: Path) -> list[str]:
    return list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_dag_parses_in_a_bare_airflow_with_one_task_per_stage(parsed: dict, cloud: str) -> None:
    project, report = parsed[cloud]
    assert report["errors"] == {}
    assert parsed["ml_modules"] == [], "the DAG file must not import the pipeline's ML dependencies"
    assert list(report["dags"]) == ["customer-churn-training"]
    dag = report["dags"]["customer-churn-training"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    tasks = dag["tasks"]
    assert [task["id"] for task in tasks] == dvc_stages(project)
    assert {task["operator"] for task in tasks} == {OPERATORS[cloud]}
    assert tasks[0]["upstream"] == []
    assert "train" in tasks[-1]["upstream"]
    settings = params["orchestration"]
    assert {task["retries"] for task in tasks} == {settings["retries"]}
    assert {task["timeout"] for task in tasks} == {settings["stage_timeout_minutes"] * 60}
    assert settings["schedule"] in dag["schedule"]
    assert dag["max_active_runs"] == 1
    # every params.yaml section the stages read is a run parameter; the runner's own settings are not
    assert set(dag["params"]) == {key for key in params if key != "orchestration"}


def test_the_dvc_default_renders_no_orchestration(render: Callable[..., Path]) -> None:
    project = render()
    assert not (project / "orchestration").exists()
    assert "orchestration" not in yaml.safe_load((project / "params.yaml").read_text())
    assert "airflow" not in (project / "Makefile").read_text()


def test_a_stage_added_to_dvc_yaml_reaches_the_dag_and_its_bundle(
    render: Callable[..., Path], airflow_python: Path, tmp_path: Path
) -> None:
    """The one list of stages is dvc.yaml: a new stage is a new task, in the checkout and in the deployed bundle."""
    project = tmp_path / "project"
    shutil.copytree(render(orchestrator="airflow"), project)
    dvc = yaml.safe_load((project / "dvc.yaml").read_text())
    dvc["stages"]["model_card"] = {
        "cmd": "python -m customer_churn.stages.model_card --reports-dir reports",
        "deps": ["reports/gate.json", "models/metadata.json"],
        "outs": [{"reports/model_card.md": {"cache": False}}],
    }
    (project / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    report = dagbag(airflow_python, project / "orchestration" / "airflow" / "dags", tmp_path / "home")
    tasks = {task["id"]: task for task in report["dags"]["customer-churn-training"]["tasks"]}
    assert list(tasks) == [*dvc_stages(project)]
    assert tasks["model_card"]["upstream"] == ["gate", "train"]

    # The deployed DAG folder: the DAG with the description `make airflow-bundle` writes, no checkout around it.
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(project / "orchestration" / "airflow" / "dags" / "training_pipeline.py", bundle)
    shutil.copy(project / "orchestration" / "airflow" / "runner.json", bundle)
    described = run(
        ["python", "orchestration/pipeline.py", "describe", "--output", str(bundle / "pipeline.json")], cwd=project
    )
    assert described.returncode == 0, described.stderr
    bundled = dagbag(airflow_python, bundle, tmp_path / "home")
    assert bundled["errors"] == {}
    assert [task["id"] for task in bundled["dags"]["customer-churn-training"]["tasks"]] == list(tasks)

    # A stage that is not `python -m <package>.stages.<stage>` cannot be run by every orchestrator: refused.
    dvc["stages"]["export"] = {"cmd": "bash scripts/export.sh", "deps": ["models/model.onnx"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    refused = dagbag(airflow_python, project / "orchestration" / "airflow" / "dags", tmp_path / "home")
    assert refused["dags"] == {}
    (error,) = refused["errors"].values()
    assert "stage 'export' of dvc.yaml must run one command `python -m <package>.stages.<stage> ...`" in error


# ---------------------------------------------------------------------------------------------------------------
# The whole DAG on the sample: dag.test() in the local profile, metadata on PostgreSQL, against dvc repro
# ---------------------------------------------------------------------------------------------------------------
def postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for this test (as the postgres user when the tests run as root)."""
    initdb, pg_ctl = postgres_binary("initdb"), postgres_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (.ci/bootstrap installs them): no metadata database")
    as_user: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="airflow-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None or run(["id", "postgres"], cwd=data).returncode != 0:
            pytest.skip("running as root without a postgres user: initdb refuses to run as root")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cluster = data / "cluster"
    result = run([*as_user, initdb, "-D", str(cluster), "-U", "airflow", "--auth=trust", "-E", "UTF8"], cwd=data)
    assert result.returncode == 0, result.stderr
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data}"
    result = run(
        [*as_user, pg_ctl, "-D", str(cluster), "-o", options, "-w", "-l", str(data / "log"), "start"], cwd=data
    )
    assert result.returncode == 0, result.stderr + (data / "log").read_text()
    try:
        yield f"postgresql+psycopg2://airflow@127.0.0.1:{port}/postgres"
    finally:
        run([*as_user, pg_ctl, "-D", str(cluster), "-m", "fast", "-w", "stop"], cwd=data)
        shutil.rmtree(data, ignore_errors=True)


DAG_TEST = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.dags[sys.argv[2]]
run = dag.test(run_conf=json.loads(sys.argv[3]))
with create_session() as session:
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
    xcoms = {row.task_id: XComModel.deserialize_value(row) for row in session.query(XComModel).filter(
        XComModel.dag_id == dag.dag_id, XComModel.run_id == run.run_id, XComModel.key == "return_value")}
print(json.dumps({"run_id": run.run_id, "state": str(run.state), "states": states, "xcoms": xcoms}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_dag_test_runs_the_pipeline_locally_like_dvc_repro(
    render: Callable[..., Path],
    airflow_python: Path,
    postgres: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    task: str,
) -> None:
    project = tmp_path / "project"
    shutil.copytree(render(orchestrator="airflow", cloud_provider="none", serving="none", task=task), project)
    home, store = tmp_path / "airflow-home", tmp_path / "store"
    env = airflow_env(home)
    timings = {"uv sync": step(project, ["uv", "sync", "--locked", "--quiet"], env)[0]}
    commit_checkout(project, env)
    # `dvc repro` of the same stages on the same data (a copy of this checkout; shared with tests/test_kubeflow.py)
    expected, timings["dvc repro"] = dvc_repro_metrics(project, tmp_path_factory.getbasetemp().parent, env)

    dags = project / "orchestration" / "airflow" / "dags"
    local = airflow_env(
        home,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgres,
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW_VAR_PIPELINE_EXECUTION="local",
        PIPELINE_PROJECT_DIR=str(project),
        PIPELINE_STORE=str(store),
    )
    timings["airflow db migrate"] = step(project, [str(airflow_python.parent / "airflow"), "db", "migrate"], local)[0]
    # A run parameter overridden for this run only: the raw data path, to the same file spelt differently.
    raw = yaml.safe_load((project / "params.yaml").read_text())["data"]["raw"]
    conf = {"data": {"raw": f"./{raw}"}}
    elapsed, output = step(
        project, [str(airflow_python), "-c", DAG_TEST, str(dags), "customer-churn-training", json.dumps(conf)], local
    )
    timings["dag.test"] = elapsed
    result = json.loads(output.strip().splitlines()[-1])
    assert result["state"].endswith("success"), result
    assert all(state.endswith("success") for state in result["states"].values()), result["states"]
    gate = result["xcoms"]["gate"]["gate"]
    assert gate["passed"] is True and gate["promoted"] is True, gate
    metrics = result["xcoms"]["evaluate"]["metrics"]
    assert metrics.keys() == expected.keys()
    for name, value in expected.items():
        assert abs(metrics[name] - value) <= METRICS_TOLERANCE, (name, metrics[name], value)
    run_dir = store / "runs" / result["run_id"]
    assert json.loads((run_dir / "reports" / "gate.json").read_text())["promoted"] is True
    assert (store / "persist" / "models" / "champion" / "model.onnx").is_file()
    print(f"  {task}: metrics {metrics}\n  timings: { {k: round(v, 1) for k, v in timings.items()} }")


# ---------------------------------------------------------------------------------------------------------------
# orchestration/airflow/submit.py (what the Retrain workflow runs): trigger, poll, collect, against an HTTP server on
# 127.0.0.1 that answers the Airflow 3 REST API calls submit.py makes (POST /auth/token and the /api/v2 routes of
# DAGs, DAG runs, task instances and XCom entries) with the JSON shapes Airflow's API server returns. A real Airflow
# API server (with its scheduler and the whole DAG) is what the slow test above starts; this one scripts a run's
# states so that success, a refused gate, a failed task and a timeout are each exercised in well under a second.
# ---------------------------------------------------------------------------------------------------------------
class ScriptedAirflow:
    """A DAG run whose successive states, task states and XComs are scripted; requests are recorded."""

    def __init__(self, states: list[str], tasks: dict[str, str], xcoms: dict[str, object]) -> None:
        import http.server
        import threading

        self.states, self.tasks, self.xcoms = states, tasks, xcoms
        self.requests: list[tuple[str, str, dict]] = []
        self.run_id = ""
        airflow = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                airflow.requests.append((method, self.path, body))
                path = self.path.split("?")[0]
                if method == "POST" and path == "/auth/token":
                    ok = body == {"username": "ci", "password": "s3cret"}  # pragma: allowlist secret
                    return self._answer(201 if ok else 401, {"access_token": "jwt-1"} if ok else {"detail": "no"})
                if self.headers.get("Authorization") != "Bearer jwt-1":
                    return self._answer(401, {"detail": "Not authenticated"})
                parts = path.removeprefix("/api/v2/").split("/")
                if parts[:2] != ["dags", "customer-churn-training"]:
                    return self._answer(404, {"detail": f"no route {path}"})
                if len(parts) == 2:
                    return self._answer(200, {"dag_id": parts[1], "is_paused": False})
                if method == "POST" and parts[2:] == ["dagRuns"]:
                    airflow.run_id = body["dag_run_id"]
                    return self._answer(200, {"dag_run_id": airflow.run_id, "state": "queued", "conf": body["conf"]})
                if parts[2:4] != ["dagRuns", airflow.run_id]:
                    return self._answer(404, {"detail": "no such run"})
                if len(parts) == 4:
                    state = airflow.states.pop(0) if len(airflow.states) > 1 else airflow.states[0]
                    return self._answer(200, {"dag_run_id": airflow.run_id, "state": state})
                if parts[4:] == ["taskInstances"]:
                    instances = [{"task_id": task, "state": state} for task, state in airflow.tasks.items()]
                    return self._answer(200, {"task_instances": instances, "total_entries": len(instances)})
                if len(parts) == 8 and parts[4] == "taskInstances" and parts[6:] == ["xcomEntries", "return_value"]:
                    if parts[5] in airflow.xcoms:
                        return self._answer(200, {"key": "return_value", "value": airflow.xcoms[parts[5]]})
                    return self._answer(404, {"detail": "XCom entry not found"})
                return self._answer(404, {"detail": f"no route {path}"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


GATE = {"passed": True, "promoted": True, "candidate_version": "3", "champion_version": "2", "reasons": []}
METRICS = {"roc_auc": 0.91, "f1": 0.74}


@pytest.fixture(scope="module")
def submit_project(render: Callable[..., Path]) -> Path:
    return render(orchestrator="airflow", cloud_provider="none", serving="none")


def submit(project: Path, airflow: ScriptedAirflow, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GITHUB", "PIPELINE"))},
        "AIRFLOW_API_URL": airflow.url,
        "AIRFLOW_API_USERNAME": "ci",
        "AIRFLOW_API_PASSWORD": "s3cret",  # pragma: allowlist secret
        "GITHUB_RUN_ID": "4242",
        **env,
    }
    command = [sys.executable, "orchestration/airflow/submit.py", "--wait", "--poll-seconds", "0.05", *args]
    return subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def test_submit_waits_for_the_run_and_reports_the_gate_and_metrics(submit_project: Path, tmp_path: Path) -> None:
    airflow = ScriptedAirflow(
        ["queued", "running", "running", "success"],
        {stage: "success" for stage in ("validate", "features", "train", "evaluate", "gate")},
        # the local profile's XComs are dicts; ECS pushes the task log's last line, a JSON string
        {"evaluate": {"stage": "evaluate", "metrics": METRICS}, "gate": json.dumps({"stage": "gate", "gate": GATE})},
    )
    try:
        params = {"model": {"type": "hist_gradient_boosting"}}
        result = submit(
            submit_project,
            airflow,
            "--timeout-minutes",
            "1",
            "--params-json",
            json.dumps(params),
            PIPELINE_IMAGE="registry.example/churn@sha256:" + "c" * 64,
        )
    finally:
        airflow.close()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "runner": "airflow-api",
        "run_id": "github__4242_1",
        "url": f"{airflow.url}/dags/customer-churn-training/runs/github__4242_1",
        "state": "succeeded",
        "gate": GATE,
        "metrics": METRICS,
    }
    (trigger,) = [body for method, path, body in airflow.requests if method == "POST" and path.endswith("/dagRuns")]
    assert trigger["conf"] == {**params, "pipeline_image": "registry.example/churn@sha256:" + "c" * 64}
    assert trigger["logical_date"] is None and trigger["dag_run_id"] == "github__4242_1"
    polls = [path for method, path, _ in airflow.requests if path.endswith("/dagRuns/github__4242_1")]
    assert len(polls) == 4, polls  # until the first terminal state, no poll after it

    # The job summary renders exactly that line.
    (tmp_path / "run.json").write_text(result.stdout)
    summary = run(
        [sys.executable, "orchestration/pipeline.py", "summary", str(tmp_path / "run.json")], cwd=submit_project
    )
    assert summary.returncode == 0, summary.stderr
    assert "## Training pipeline on airflow-api: succeeded" in summary.stdout
    assert "### Quality gate: passed" in summary.stdout and "| roc_auc | 0.9100 |" in summary.stdout


def test_submit_treats_a_refused_gate_as_a_decision(submit_project: Path, tmp_path: Path) -> None:
    """The gate task fails on purpose when it refuses (exit status 10, no XCom): the run's store has its report."""
    store = tmp_path / "store"
    reports = store / "runs" / "github__4242_1" / "reports"
    reports.mkdir(parents=True)
    refused = {**GATE, "passed": False, "promoted": False, "reasons": ["roc_auc 0.61 < 0.70"]}
    (reports / "gate.json").write_text(json.dumps(refused))
    (reports / "metrics.json").write_text(json.dumps({"model": METRICS}))
    airflow = ScriptedAirflow(
        ["running", "failed"],
        {"validate": "success", "features": "success", "train": "success", "evaluate": "success", "gate": "failed"},
        {},
    )
    try:
        result = submit(submit_project, airflow, "--timeout-minutes", "1", PIPELINE_STORE=str(store))
    finally:
        airflow.close()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["state"] == "succeeded" and report["gate"]["passed"] is False and report["metrics"] == METRICS
    assert report["gate"]["reasons"] == ["roc_auc 0.61 < 0.70"]


def test_submit_fails_clearly_when_a_stage_fails(submit_project: Path) -> None:
    airflow = ScriptedAirflow(
        ["running", "failed"],
        {
            "validate": "success",
            "features": "success",
            "train": "failed",
            "evaluate": "upstream_failed",
            "gate": "upstream_failed",
        },
        {},
    )
    try:
        result = submit(submit_project, airflow, "--timeout-minutes", "1")
    finally:
        airflow.close()
    assert result.returncode == 1
    assert json.loads(result.stdout.strip().splitlines()[-1])["state"] == "failed"
    assert "the run failed in evaluate, gate, train" in result.stderr


def test_submit_gives_up_after_its_timeout(submit_project: Path) -> None:
    airflow = ScriptedAirflow(["running"], {"validate": "running"}, {})
    try:
        started = time.monotonic()
        result = submit(submit_project, airflow, "--timeout-minutes", "0.005")  # 0.3 s
        elapsed = time.monotonic() - started
    finally:
        airflow.close()
    assert result.returncode == 3
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["state"] == "timed_out" and report["gate"] == {} and report["metrics"] == {}
    assert "did not end within 0.005 minutes" in result.stderr
    assert elapsed < 30


def test_submit_refuses_without_credentials(submit_project: Path) -> None:
    airflow = ScriptedAirflow(["success"], {}, {})
    try:
        wrong = submit(submit_project, airflow, AIRFLOW_API_PASSWORD="wrong")  # pragma: allowlist secret
        missing = submit(submit_project, airflow, AIRFLOW_API_USERNAME="")
    finally:
        airflow.close()
    assert wrong.returncode == 2 and "HTTP 401" in wrong.stderr
    assert missing.returncode == 2 and "set AIRFLOW_API_TOKEN" in missing.stderr
    assert not any(path.endswith("/dagRuns") for _, path, _ in airflow.requests), "triggered without credentials"
