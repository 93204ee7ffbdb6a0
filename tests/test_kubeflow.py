"""orchestrator kubeflow: the generated KFP 2 pipeline compiles from dvc.yaml, its committed IR YAML is checked, and
the same pipeline runs locally with kfp.local.

kfp never enters the template's or the project's dependencies: the tests install it (the pin of the generated
Makefile's KFP_VERSION) once into a venv under the user's cache directory and run every check in that interpreter as a
subprocess. Submission to Vertex AI Pipelines or to a cluster's Kubeflow Pipelines API cannot run here (no cloud, no
cluster); submit.py's own logic (the wait, the timeout, the image, its refusals) is tested without a service. The slow
test runs the whole pipeline with kfp.local's SubprocessRunner and compares the model's metrics with `dvc repro` of
the same render.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import run
from pipeline_runs import METRICS_TOLERANCE, commit_checkout, dvc_repro_metrics, step
from tool_venvs import tool_venv

KFP_PYTHON_VERSION = "3.11"
CLOUDS = ("none", "aws", "gcp", "azure")
PLATFORMS = {"none": "local", "aws": "kfp", "gcp": "vertex", "azure": "kfp"}
TEMPLATE_MAKEFILE = Path(__file__).resolve().parents[1] / "template" / "Makefile.jinja"


def kfp_pin() -> str:
    """The kfp the generated project installs (`make kubeflow-venv`): the tests use the same one."""
    match = re.search(r"^KFP_VERSION \?= (\S+)$", TEMPLATE_MAKEFILE.read_text(), re.MULTILINE)
    assert match, "the generated Makefile pins KFP_VERSION"
    return f"kfp=={match.group(1)}"


def clean_env(**extra: str) -> dict[str, str]:
    outside = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"}
    env = {key: value for key, value in os.environ.items() if key not in outside}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DVC_NO_ANALYTICS": "1", **extra})
    return env


@pytest.fixture(scope="session")
def kfp_python() -> Path:
    """A venv with kfp alone (no ML library), installed once per cache and pin."""
    return tool_venv("kfp", KFP_PYTHON_VERSION, (kfp_pin(),)) / "bin" / "python"


def project_copy(render: Callable[..., Path], tmp_path: Path, **answers: str) -> Path:
    """A private copy of the kubeflow render: compiling writes into it."""
    project = tmp_path / "project"
    shutil.copytree(render(orchestrator="kubeflow", **answers), project)
    return project


def kfp(python: Path, project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run(
        [str(python), "orchestration/kubeflow/pipeline.py", *args], cwd=project, timeout=600, env=env or clean_env()
    )


def dvc_stages(project: Path) -> dict[str, dict]:
    return yaml.safe_load((project / "dvc.yaml").read_text())["stages"]


def task_names(project: Path) -> list[str]:
    """dvc.yaml's stages as KFP names its tasks (lower case, `_` as `-`), sorted as the compiler writes them."""
    return sorted(name.lower().replace("_", "-") for name in dvc_stages(project))


def compiled(project: Path) -> dict:
    return yaml.safe_load((project / "orchestration" / "kubeflow" / "training_pipeline.yaml").read_text())


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_pipeline_compiles_with_one_component_per_stage(
    render: Callable[..., Path], kfp_python: Path, tmp_path: Path, cloud: str
) -> None:
    project = project_copy(render, tmp_path, cloud_provider=cloud, serving="none" if cloud == "none" else "container")
    runner = json.loads((project / "orchestration" / "kubeflow" / "runner.json").read_text())
    assert runner["platform"] == PLATFORMS[cloud]
    started = time.monotonic()
    result = kfp(kfp_python, project, "compile")
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"  {cloud}: compiled in {time.monotonic() - started:.1f} s")
    spec = compiled(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    stages = dvc_stages(project)
    tasks = spec["root"]["dag"]["tasks"]  # the compiler sorts them by name; the order is in dependentTasks
    assert sorted(tasks) == task_names(project)
    assert spec["pipelineInfo"]["name"] == "customer-churn-training"
    executors = spec["deploymentSpec"]["executors"]
    settings = params["orchestration"]
    for name, task in tasks.items():
        container = executors[f"exec-{name}"]["container"]
        # the stage's command in the pipeline image, bounded by the stage timeout of params.yaml
        assert container["command"] == [
            "env",
            "MLFLOW_TRACKING_URI={{$.inputs.parameters['tracking_uri']}}",
            "timeout",
            f"{settings['stage_timeout_minutes'] * 60}s",
            "python",
            "orchestration/pipeline.py",
            "run",
            name,
        ]
        assert container["image"] == "customer-churn-pipeline:compiled"  # submit.py sets this commit's image
        assert "--result-file" in container["args"] and "--params-json" in container["args"]
        assert task["cachingOptions"] == {}  # caching off: a stage reads the run's store
        if name == "gate":
            assert "retryPolicy" not in task  # a refusal is a decision, not a failure to retry
        else:
            assert task["retryPolicy"]["maxRetryCount"] == settings["retries"]
            assert task["retryPolicy"]["backoffDuration"] == f"{settings['retry_delay_minutes'] * 60}s"
    assert executors["exec-train"]["container"]["resources"]["resourceCpuLimit"] == runner["train_resources"]["cpu"]
    assert (
        executors["exec-train"]["container"]["resources"]["resourceMemoryRequest"]
        == runner["train_resources"]["memory"]
    )
    assert tasks["validate"].get("dependentTasks") is None
    assert "train" in tasks["gate"]["dependentTasks"]
    # the run's parameters: params.yaml's sections (not the runner's own settings), as one JSON default
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert set(inputs) == {"params", "run_id", "store", "tracking_uri"}
    default = json.loads(inputs["params"]["defaultValue"])
    assert default == {key: value for key, value in params.items() if key != "orchestration"}
    # the gate's decision is an output of the run
    assert set(spec["root"]["outputDefinitions"]["parameters"]) == set(stages)
    assert kfp(kfp_python, project, "check").returncode == 0


def test_a_stage_added_to_dvc_yaml_makes_the_committed_yaml_stale(
    render: Callable[..., Path], kfp_python: Path, tmp_path: Path
) -> None:
    """The one list of stages is dvc.yaml: a new stage fails the check until the pipeline is recompiled."""
    project = project_copy(render, tmp_path, cloud_provider="gcp", serving="container")
    assert kfp(kfp_python, project, "check").returncode == 1  # nothing committed yet: a render must compile first
    assert kfp(kfp_python, project, "compile").returncode == 0
    assert kfp(kfp_python, project, "check").returncode == 0
    dvc = yaml.safe_load((project / "dvc.yaml").read_text())
    dvc["stages"]["model_card"] = {
        "cmd": "python -m customer_churn.stages.model_card --reports-dir reports",
        "deps": ["reports/gate.json", "models/metadata.json"],
        "outs": [{"reports/model_card.md": {"cache": False}}],
    }
    (project / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    stale = kfp(kfp_python, project, "check")
    assert stale.returncode == 1
    assert "training_pipeline.yaml is stale" in stale.stderr and "make kubeflow-compile" in stale.stderr
    assert kfp(kfp_python, project, "compile").returncode == 0
    tasks = compiled(project)["root"]["dag"]["tasks"]
    assert sorted(tasks) == task_names(project)
    assert sorted(tasks["model-card"]["dependentTasks"]) == ["gate", "train"]
    assert kfp(kfp_python, project, "check").returncode == 0
    # A stage that is not `python -m <package>.stages.<stage>` cannot be run by every orchestrator: refused.
    dvc["stages"]["export"] = {"cmd": "bash scripts/export.sh", "deps": ["models/model.onnx"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    refused = kfp(kfp_python, project, "compile")
    assert refused.returncode != 0
    assert "stage 'export' of dvc.yaml must run one command" in refused.stderr


SUBMIT_PROBE = """
import json, sys
sys.path.insert(0, "orchestration/kubeflow")
import submit

def states(*values):
    it = iter(values)
    return lambda: next(it)

class Clock:
    def __init__(self):
        self.now = 0.0
    def __call__(self):
        return self.now
    def sleep(self, seconds):
        self.now += seconds

out = {}
clock = Clock()
vertex = ("PipelineState.PIPELINE_STATE_RUNNING", "PipelineState.PIPELINE_STATE_SUCCEEDED")
out["vertex_ok"] = submit.wait_for(states(*vertex), "vertex", timeout_seconds=600, interval_seconds=30,
    clock=clock, sleep=clock.sleep)
out["vertex_ok_after"] = clock.now
clock = Clock()
out["kfp_failed"] = submit.wait_for(states("PENDING", "RUNNING", "FAILED"), "kfp", timeout_seconds=600,
    interval_seconds=30, clock=clock, sleep=clock.sleep)
clock = Clock()
out["kfp_timed_out"] = submit.wait_for(lambda: "RUNNING", "kfp", timeout_seconds=100, interval_seconds=30,
    clock=clock, sleep=clock.sleep)
out["timed_out_after"] = clock.now
import pathlib, tempfile, yaml
with tempfile.TemporaryDirectory() as tmp:
    image = "registry.example/p@sha256:" + "0" * 64
    target = submit.with_image(submit.pipeline.COMPILED, image, pathlib.Path(tmp) / "p.yaml")
    spec = yaml.safe_load(target.read_text())
    out["images"] = sorted({e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()})
print(json.dumps(out))
"""


@pytest.mark.parametrize("cloud", ["gcp", "none"])
def test_submit_waits_times_out_and_refuses_what_it_cannot_submit(
    render: Callable[..., Path], kfp_python: Path, tmp_path: Path, cloud: str
) -> None:
    project = project_copy(render, tmp_path, cloud_provider=cloud, serving="none" if cloud == "none" else "container")
    assert kfp(kfp_python, project, "compile").returncode == 0
    submit = [str(kfp_python), "orchestration/kubeflow/submit.py", "--wait", "--timeout-minutes", "1"]
    if cloud == "none":
        refused = run(submit, cwd=project, env=clean_env())
        assert refused.returncode == 2 and "make kubeflow-run-local" in refused.stderr
        return
    missing = run(submit, cwd=project, env={k: v for k, v in clean_env().items() if not k.startswith("PIPELINE_")})
    assert missing.returncode == 2 and "PIPELINE_STORE is not set" in missing.stderr
    probe = run([str(kfp_python), "-c", SUBMIT_PROBE], cwd=project, env=clean_env())
    assert probe.returncode == 0, probe.stderr[-3000:]
    out = json.loads(probe.stdout.strip().splitlines()[-1])
    assert out["vertex_ok"] == "succeeded" and out["vertex_ok_after"] == 30
    assert out["kfp_failed"] == "failed"
    assert out["kfp_timed_out"] == "timed_out" and out["timed_out_after"] == 100
    assert out["images"] == ["registry.example/p@sha256:" + "0" * 64]
    # a stale compiled pipeline is never submitted
    (project / "params.yaml").write_text((project / "params.yaml").read_text().replace("retries: 2", "retries: 3"))
    env = clean_env(
        PIPELINE_STORE="gs://bucket/pipeline",
        PIPELINE_IMAGE="registry.example/p@sha256:" + "0" * 64,
        MLFLOW_TRACKING_URI="https://tracking.example",
    )
    stale = run(submit, cwd=project, env=env)
    assert stale.returncode == 2 and "is stale" in stale.stderr
    # what the client raises (here: no google-cloud-aiplatform in the test's kfp venv) is a clear refusal, exit 2
    assert kfp(kfp_python, project, "compile").returncode == 0
    env.update(GCP_PROJECT="demo", PIPELINE_SERVICE_ACCOUNT="pipeline@demo.iam.gserviceaccount.com")
    unreachable = run(submit, cwd=project, env=env)
    assert unreachable.returncode == 2, unreachable.stderr
    assert "error: vertex refused or could not take the run: ImportError" in unreachable.stderr
    assert "aiplatform" in unreachable.stderr


# ---------------------------------------------------------------------------------------------------------------
# The whole pipeline on the sample: kfp.local in the local profile, against dvc repro
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_kfp_local_runs_the_pipeline_like_dvc_repro(
    render: Callable[..., Path], kfp_python: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, task: str
) -> None:
    project = project_copy(render, tmp_path, cloud_provider="none", serving="none", task=task)
    env = clean_env()
    timings = {"uv sync": step(project, ["uv", "sync", "--locked", "--quiet"], env)[0]}
    commit_checkout(project, env)
    # `dvc repro` of the same stages on the same data (a copy of this checkout; shared with tests/test_airflow.py)
    expected, timings["dvc repro"] = dvc_repro_metrics(project, tmp_path_factory.getbasetemp().parent, env)
    store = tmp_path / "store"
    # A run parameter overridden for this run only: the raw data path, to the same file spelt differently.
    raw = yaml.safe_load((project / "params.yaml").read_text())["data"]["raw"]
    elapsed, output = step(
        project,
        [
            str(kfp_python),
            "orchestration/kubeflow/pipeline.py",
            "run-local",
            "--store",
            str(store),
            "--run-id",
            "local-1",
            "--params-json",
            json.dumps({"data": {"raw": f"./{raw}"}}),
        ],
        clean_env(PIPELINE_PROJECT_DIR=str(project), PIPELINE_PYTHON=str(project / ".venv" / "bin" / "python")),
    )
    timings["kfp.local"] = elapsed
    result = json.loads(output.strip().splitlines()[-1])
    assert result["runner"] == "kubeflow" and result["run_id"] == "local-1"
    assert result["state"] == "succeeded", output[-4000:]
    assert result["gate"]["passed"] is True and result["gate"]["promoted"] is True, result["gate"]
    assert result["metrics"].keys() == expected.keys()
    for name, value in expected.items():
        assert abs(result["metrics"][name] - value) <= METRICS_TOLERANCE, (name, result["metrics"][name], value)
    run_dir = store / "runs" / "local-1"
    assert json.loads((run_dir / "reports" / "gate.json").read_text())["promoted"] is True
    assert (store / "persist" / "models" / "champion" / "model.onnx").is_file()
    # the gate component's output parameter holds the same decision (what the run view shows)
    (gate_output,) = (tmp_path / "pipeline-root").glob("*/gate/result")
    assert json.loads(gate_output.read_text())["gate"] == result["gate"]
    print(f"  metrics {result['metrics']}\n  timings: { {k: round(v, 1) for k, v in timings.items()} }")
