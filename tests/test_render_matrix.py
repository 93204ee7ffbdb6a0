"""Every answer combination the validators allow renders into a clean project.

For each render: the files the answers call for are there and the others are not, nothing is left unrendered, every
data file parses, every Python file compiles and passes ruff with the generated project's own configuration.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import RENDER_MATRIX, combo_id, run, tool

PACKAGE = "customer_churn"
ANSWER_NAMES = (
    "project_name|project_slug|package_name|description|author_name|author_email|github_org|cost_center|"
    "python_version|license|task|cloud_provider|serving|region|experiment_tracking|monitoring|repository|image_name|"
    "cloud_region|dvc_remote_url|kserve|tracking_server|orchestrator"
)
LEFTOVER_ANSWER = re.compile(r"\{\{-?\s*(" + ANSWER_NAMES + r")\b")
JINJA_STATEMENT = re.compile(r"\{%-?\s*(if|for|set|raw|endif|endfor|endraw|else|elif)\b")
# Where `{{` is legitimate output: GitHub expressions, Prometheus and Grafana templating, escaped braces in Python
# f-strings. Everywhere else it is a Jinja expression the render missed.
TEMPLATING_DIRS = (".github", "monitoring")
ESCAPED_BRACE_SUFFIXES = (".py",)

ALWAYS = [
    ".copier-answers.yml",
    "README.md",
    "Makefile",
    "pyproject.toml",
    "params.yaml",
    "dvc.yaml",
    ".dvc/config",
    ".gitignore",
    ".pre-commit-config.yaml",
    "Dockerfile",
    ".dockerignore",
    "SECURITY.md",
    "contract.yaml",
    "tests/test_domain.py",
    f"src/{PACKAGE}/__init__.py",
    f"src/{PACKAGE}/contract.py",
    f"src/{PACKAGE}/expressions.py",
    f"src/{PACKAGE}/scoring/features.py",
    f"src/{PACKAGE}/scoring/model.py",
    f"src/{PACKAGE}/stages/validate.py",
    f"src/{PACKAGE}/stages/features.py",
    f"src/{PACKAGE}/stages/train.py",
    f"src/{PACKAGE}/stages/evaluate.py",
    f"src/{PACKAGE}/stages/gate.py",
    f"src/{PACKAGE}/batch.py",
    f"src/{PACKAGE}/serving/app.py",
    f"src/{PACKAGE}/serving/metrics.py",
    ".github/workflows/ci.yml",
    ".github/workflows/train.yml",
    ".github/workflows/template-update.yml",
    ".github/dependabot.yml",
    "docs/architecture.md",
    "docs/well-architected.md",
]


# The shipped sample of each `task` answer (params.yaml `data.raw` points at it).
SAMPLES = {
    "binary": "data/raw/customers.csv",
    "multiclass": "data/raw/customer_plans.csv",
    "regression": "data/raw/customer_revenue.csv",
}


def expected_paths(answers: dict) -> tuple[set[str], set[str]]:
    """(paths that must exist, paths that must not) for one answer set."""
    cloud = answers.get("cloud_provider", "aws")
    serving = answers.get("serving", "container")
    tracking = answers.get("experiment_tracking", "mlflow")
    monitoring = answers.get("monitoring", True)
    task = answers.get("task", "binary")
    kserve = answers.get("kserve", False)
    present, absent = set(ALWAYS), set()

    for other, sample in SAMPLES.items():
        (present if other == task else absent).add(sample)
    for other in ("aws", "gcp", "azure"):
        (present if other == cloud else absent).add(f"infra/terraform/{other}")
    (absent if cloud == "none" else present).update({".github/workflows/infra.yml"})
    if cloud == "none":
        absent.add("infra")
    deploys = cloud != "none" and serving != "none"
    (present if deploys else absent).add(".github/workflows/cd.yml")
    (present if tracking == "mlflow" else absent).add(f"src/{PACKAGE}/tracking/mlflow_backend.py")
    (present if tracking == "mlflow" else absent).add(f"src/{PACKAGE}/tracking/registry.py")
    server = answers.get("tracking_server", "local")
    (absent if server == "local" else present).update(
        {"docs/runbooks/tracking-server-down.md", "docs/runbooks/tracking-server-restore.md"}
    )
    # serving kubernetes: the kustomize tree, the cloud side in Terraform, and the KServe variant only with kserve
    kubernetes = serving == "kubernetes"
    (present if kubernetes else absent).update(
        {
            "deploy/kubernetes/base/kustomization.yaml",
            "deploy/kubernetes/base/deployment.yaml",
            "deploy/kubernetes/base/cronjob.yaml",
            "deploy/kubernetes/staging/kustomization.yaml",
            "deploy/kubernetes/production/kustomization.yaml",
            "deploy/kubernetes/namespaces.yaml",
            "deploy/kubernetes/README.md",
        }
    )
    if not kubernetes:
        absent.add("deploy")
    (present if kubernetes and kserve else absent).add("deploy/kubernetes/components/kserve/inferenceservice.yaml")
    (present if kubernetes else absent).add("deploy/kubernetes/components/spark/scheduledsparkapplication.yaml")
    (present if kubernetes and monitoring else absent).add("deploy/kubernetes/base/podmonitor.yaml")
    for other in ("aws", "gcp", "azure"):
        for name in ("serving_kubernetes.tf", "outputs_kubernetes.tf"):
            (present if kubernetes and other == cloud else absent).add(f"infra/terraform/{other}/{name}")
    (present if kubernetes and cloud == "azure" and monitoring else absent).add(
        "infra/terraform/azure/monitoring_kubernetes.tf"
    )
    # batch scoring on Spark: the managed engine's Terraform, image and manual submission where one is wired; on
    # Kubernetes, the image of the Spark application (deploy/kubernetes/components/spark)
    spark = serving == "batch" and cloud in ("aws", "gcp")
    (present if spark or kubernetes else absent).update({"Dockerfile.spark", f"src/{PACKAGE}/spark_submit.py"})
    for other in ("aws", "gcp"):
        (present if spark and other == cloud else absent).add(f"infra/terraform/{other}/spark_batch.tf")
    absent.add("infra/terraform/azure/spark_batch.tf")
    monitored = {"monitoring", f"src/{PACKAGE}/monitoring/drift.py", "docs/runbooks/drift.md"}
    (present if monitoring else absent).update(monitored)
    # the scheduled drift job needs a bucket where the service's inference logs collect
    (present if monitoring and cloud != "none" else absent).add(".github/workflows/drift.yml")
    # orchestrator: the runner-neutral description and runner, and each runner's files with its runbook
    orchestrated = answers.get("orchestrator", "dvc") != "dvc"
    (present if orchestrated else absent).update({"orchestration/pipeline.py", "tests/test_orchestration.py"})
    airflow = answers.get("orchestrator", "dvc") == "airflow"
    (present if airflow else absent).update(
        {
            "orchestration/airflow/dags/training_pipeline.py",
            "orchestration/airflow/runner.json",
            "docs/runbooks/airflow.md",
        }
    )
    # orchestrator kubeflow: the pipeline, its runner settings and submission, and its runbook; the compiled IR YAML
    # is the project's to commit after `make kubeflow-compile` (kfp is not a render-time dependency)
    kubeflow = answers.get("orchestrator", "dvc") == "kubeflow"
    (present if kubeflow else absent).update(
        {
            "orchestration/kubeflow/pipeline.py",
            "orchestration/kubeflow/runner.json",
            "orchestration/kubeflow/submit.py",
            "docs/runbooks/kubeflow.md",
        }
    )
    absent.add("orchestration/kubeflow/training_pipeline.yaml")
    cluster_kfp = kubeflow and cloud in ("aws", "azure")
    (present if cluster_kfp else absent).add("orchestration/kubeflow/profile.yaml")
    for other in ("aws", "gcp", "azure"):
        for name in ("orchestration_kubeflow.tf", "tests/orchestration_kubeflow.tftest.hcl"):
            (present if kubeflow and other == cloud else absent).add(f"infra/terraform/{other}/{name}")
    sagemaker = answers.get("orchestrator", "dvc") == "sagemaker"
    (present if sagemaker else absent).update(
        {
            "orchestration/sagemaker/pipeline.py",
            "orchestration/sagemaker/submit.py",
            "orchestration/sagemaker/settings.json",
            "docs/runbooks/sagemaker.md",
            "infra/terraform/aws/orchestration_sagemaker.tf",
            "infra/terraform/aws/tests/orchestration_sagemaker.tftest.hcl",
        }
    )
    (present if sagemaker and server == "managed" else absent).add(
        "infra/terraform/aws/orchestration_sagemaker_tracking.tf"
    )
    # every orchestrator but dvc: the pipeline image its stages run in, and the submit step of the Retrain workflow
    (present if orchestrated else absent).update({"Dockerfile.pipeline", "Dockerfile.pipeline.dockerignore"})
    (present if airflow else absent).add("orchestration/airflow/submit.py")
    for other in ("aws", "gcp", "azure"):
        (present if airflow and other == cloud else absent).add(f"infra/terraform/{other}/orchestration_airflow.tf")
        (present if airflow and other == cloud == "aws" else absent).add(
            f"infra/terraform/{other}/tests/orchestration_airflow.tftest.hcl"
        )
    if not orchestrated:
        absent.add("orchestration")
    # feature_store: the Feast repository and stages; in a cloud, its configuration and online store's Terraform
    feast = answers.get("feature_store", "none") == "feast"
    (present if feast else absent).update(
        {"feature_repo/feature_store.yaml", f"src/{PACKAGE}/feature_store/offline.py", "tests/test_feature_store.py"}
    )
    (present if feast and cloud != "none" else absent).add("feature_repo/feature_store.cloud.yaml")
    for other in ("aws", "gcp", "azure"):
        (present if feast and other == cloud else absent).add(f"infra/terraform/{other}/feature_store.tf")
    return present, absent


RENDERS = RENDER_MATRIX


@pytest.mark.parametrize("answers", RENDERS, ids=combo_id)
def test_render_has_exactly_the_expected_files(render, answers: dict) -> None:
    project = render(**answers)
    present, absent = expected_paths(answers)
    missing = sorted(p for p in present if not (project / p).exists())
    unexpected = sorted(p for p in absent if (project / p).exists())
    assert not missing, f"missing for {answers}: {missing}"
    assert not unexpected, f"should not be rendered for {answers}: {unexpected}"


def project_files(project: Path) -> list[Path]:
    return [p for p in project.rglob("*") if p.is_file() and ".git" not in p.relative_to(project).parts]


@pytest.mark.parametrize("answers", RENDERS, ids=combo_id)
def test_nothing_is_left_unrendered(render, answers: dict) -> None:
    project = render(**answers)
    problems = []
    for path in project_files(project):
        rel = path.relative_to(project)
        if path.suffix == ".jinja" or "{{" in str(rel) or "{%" in str(rel):
            problems.append(f"{rel}: unrendered path")
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if JINJA_STATEMENT.search(text):
            problems.append(f"{rel}: Jinja statement left in output")
        if LEFTOVER_ANSWER.search(text):
            problems.append(f"{rel}: copier answer left unrendered")
        if "{{" in text and rel.parts[0] not in TEMPLATING_DIRS and path.suffix not in ESCAPED_BRACE_SUFFIXES:
            problems.append(f"{rel}: '{{{{' outside GitHub/Prometheus/Grafana templating")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("answers", RENDERS, ids=combo_id)
def test_data_files_parse_and_python_compiles(render, answers: dict) -> None:
    project = render(**answers)
    for path in project_files(project):
        rel = path.relative_to(project)
        if path.suffix in {".yml", ".yaml"}:
            list(yaml.safe_load_all(path.read_text()))
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".py":
            compile(path.read_text(), str(rel), "exec")


@pytest.mark.parametrize("answers", RENDERS, ids=combo_id)
def test_generated_python_passes_ruff(render, answers: dict) -> None:
    project = render(**answers)
    ruff = tool("ruff")
    check = run([ruff, "check", "--no-cache", "."], cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = run([ruff, "format", "--check", "--no-cache", "."], cwd=project)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_python_version_reaches_every_place_that_names_it(render, python_version: str) -> None:
    """Only 3.11 runs here, so other versions are checked statically.

    `requires-python` is the support floor, not the answer (one lock serves every answer), and ruff takes its
    target version from it; the answer picks the interpreter: .python-version (uv, locally and in CI), the
    Docker image, mypy's target and the drift workflow's UV_PYTHON.
    """
    project = render(python_version=python_version)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    floor = re.fullmatch(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert floor, pyproject["project"]["requires-python"]
    assert (int(floor[1]), int(floor[2])) <= tuple(map(int, python_version.split("."))), "the answer is below the floor"
    assert "target-version" not in pyproject["tool"]["ruff"], "ruff infers it from requires-python"
    assert pyproject["tool"]["mypy"]["python_version"] == python_version
    assert (project / ".python-version").read_text().strip() == python_version
    assert f"python:{python_version}-" in (project / "Dockerfile").read_text()
    drift = yaml.safe_load((project / ".github/workflows/drift.yml").read_text())
    assert drift["env"]["UV_PYTHON"] == python_version


def test_default_render_has_no_stray_jinja_suffix_or_empty_dirs(render) -> None:
    project = render()
    empty_dirs = [
        p.relative_to(project)
        for p in project.rglob("*")
        if p.is_dir() and not any(p.iterdir()) and ".git" not in p.parts
    ]
    assert not empty_dirs, f"empty directories (add a .gitkeep or drop them): {empty_dirs}"
