"""Shared fixtures: the answer matrix and session-cached renders of the template.

Every test module that checks a render asks `render(...)` for it, so each answer combination is rendered once per
test session however many checkers look at it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent

# The answers that change what a render contains, with every value each can take. A new answer (or a new value)
# adds its pairs to the matrix below, not a product: the renders grow linearly with the answer space.
ANSWER_SPACE: dict[str, tuple] = {
    "cloud_provider": ("aws", "gcp", "azure", "none"),
    "serving": ("container", "managed", "batch", "kubernetes", "none"),
    "experiment_tracking": ("mlflow", "none"),
    "monitoring": (True, False),
    "task": ("binary", "multiclass", "regression"),
    "python_version": ("3.11", "3.12", "3.13"),
    # asked only with serving kubernetes (copier.yml `when`); False is its default everywhere else
    "kserve": (False, True),
    # asked only with experiment_tracking mlflow; managed only where the cloud has a managed MLflow (aws, azure)
    "tracking_server": ("local", "self_hosted", "managed"),
    # feast: locally (cloud_provider none), or in a cloud with serving container (copier.yml's validator)
    "feature_store": ("none", "feast"),
    # what runs the pipeline's stages: dvc repro (today's behaviour), an Airflow DAG or a Kubeflow pipeline (every
    # cloud; cloud_provider none: their local execution profiles) or SageMaker Pipelines (aws only, with MLflow
    # managed or off)
    "orchestrator": ("dvc", "airflow", "kubeflow", "sagemaker"),
}
DEFAULTS = {name: values[0] for name, values in ANSWER_SPACE.items()}
CLOUDS = ANSWER_SPACE["cloud_provider"]
SERVING = ANSWER_SPACE["serving"]
TRACKING = ANSWER_SPACE["experiment_tracking"]


def is_allowed(cloud: str, serving: str) -> bool:
    """The cloud x serving combinations copier.yml accepts (mirrors its `serving` validator)."""
    return not (serving in ("managed", "kubernetes") and cloud == "none")


def allows(answers: dict) -> bool:
    """Whether a (possibly partial) answer set passes copier.yml's validators and `when` conditions."""
    if (
        "cloud_provider" in answers
        and "serving" in answers
        and not is_allowed(answers["cloud_provider"], answers["serving"])
    ):
        return False
    # tracking_server is asked only with experiment_tracking mlflow; managed needs a cloud with managed MLflow
    server = answers.get("tracking_server", "local")
    if server != "local" and answers.get("experiment_tracking", "mlflow") != "mlflow":
        return False
    if server == "managed" and answers.get("cloud_provider", "aws") not in ("aws", "azure"):
        return False
    # the feature store's online store is read by the container service in a cloud (its identity has the access),
    # or locally (SQLite or Redis): so feast in a cloud needs serving container (no managed endpoint, Kubernetes,
    # KServe or batch job)
    if answers.get("feature_store") == "feast" and (
        (answers.get("cloud_provider", "none") != "none" and answers.get("serving", "container") != "container")
        or answers.get("kserve")
    ):
        return False
    # sagemaker needs aws, and MLflow the jobs can reach with their AWS role (managed) or none (copier.yml's
    # orchestrator validator); tracking_server defaults to local when it is not asked
    if answers.get("orchestrator") == "sagemaker" and (
        answers.get("cloud_provider", "aws") != "aws"
        or (answers.get("experiment_tracking", "mlflow") == "mlflow" and server != "managed")
    ):
        return False
    # kserve is asked only with serving kubernetes, which needs a cloud
    return not answers.get("kserve") or (
        answers.get("serving", "kubernetes") == "kubernetes" and answers.get("cloud_provider") != "none"
    )


def all_pairs(space: dict[str, tuple], allowed: Callable[[dict], bool]) -> list[dict]:
    """A small set of answer sets that together contain every allowed pair of values of two answers.

    Greedy (in the manner of AETG): each new row starts from the first pair not yet covered and takes, answer by
    answer, the allowed value that covers the most pairs still missing. Deterministic, so test ids are stable.
    """
    names = list(space)

    def pairs(row: dict) -> set[tuple]:
        return {(a, row[a], b, row[b]) for i, a in enumerate(names) for b in names[i + 1 :] if a in row and b in row}

    def completable(row: dict) -> bool:
        """Whether some full answer set that `allowed` accepts contains `row` (a pair can look fine on its own,
        e.g. tracking_server managed and feature_store feast, and still exclude every cloud)."""
        if not allowed(row):
            return False
        name = next((name for name in names if name not in row), None)
        return name is None or any(completable({**row, name: value}) for value in space[name])

    uncovered = [
        (a, va, b, vb)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        for va in space[a]
        for vb in space[b]
        if completable({a: va, b: vb})
    ]
    missing = set(uncovered)
    rows: list[dict] = []
    while missing:
        a, va, b, vb = next(pair for pair in uncovered if pair in missing)
        row = {a: va, b: vb}
        for name in names:
            if name in row:
                continue
            candidates = [value for value in space[name] if completable({**row, name: value})]
            row[name] = max(candidates, key=lambda value: len(pairs({**row, name: value}) & missing))
        rows.append({name: row[name] for name in names})
        missing -= pairs(row)
    return rows


# Profiles a team is likely to pick, rendered in full beside the pairwise rows (the defaults are the first row).
NAMED_PROFILES: list[dict] = [
    {},
    {"cloud_provider": "none", "serving": "none", "experiment_tracking": "none"},
]
PAIRWISE = all_pairs(ANSWER_SPACE, allows)
# Every render the checkers run on: the named profiles, then every allowed pair of answer values.
RENDER_MATRIX = [{**DEFAULTS, **profile} for profile in NAMED_PROFILES] + [
    row for row in PAIRWISE if row not in [{**DEFAULTS, **profile} for profile in NAMED_PROFILES]
]
# Checks of the infrastructure and deployment depend on cloud x serving only: the first render of each pair.
CLOUD_SERVING_COMBOS = [
    next(row for row in RENDER_MATRIX if (row["cloud_provider"], row["serving"]) == (cloud, serving))
    for cloud in CLOUDS
    for serving in SERVING
    if is_allowed(cloud, serving)
]

# The Terraform of the shared tracking server depends on cloud x tracking_server: the first render of each such pair.
CLOUD_TRACKING_COMBOS = [
    next(row for row in RENDER_MATRIX if (row["cloud_provider"], row["tracking_server"]) == (cloud, tracking))
    for cloud in CLOUDS
    if cloud != "none"
    for tracking in ANSWER_SPACE["tracking_server"]
    if tracking != "local" and allows({"cloud_provider": cloud, "tracking_server": tracking})
]
# An orchestrator's Terraform (orchestration_<orchestrator>.tf) depends on cloud x orchestrator: first render of each.
CLOUD_ORCHESTRATOR_COMBOS = [
    row
    for cloud in CLOUDS
    if cloud != "none"
    for orchestrator in ANSWER_SPACE["orchestrator"]
    if orchestrator != "dvc"
    and (
        row := next(
            (row for row in RENDER_MATRIX if (row["cloud_provider"], row["orchestrator"]) == (cloud, orchestrator)),
            None,
        )
    )
]
INFRA_COMBOS = [row for row in CLOUD_SERVING_COMBOS if row["cloud_provider"] != "none"] + [
    row for row in CLOUD_TRACKING_COMBOS if row not in CLOUD_SERVING_COMBOS
]
INFRA_COMBOS += [row for row in CLOUD_ORCHESTRATOR_COMBOS if row not in INFRA_COMBOS]


def non_default(answers: dict) -> dict:
    """The answers that differ from the defaults (one render serves every spelling of the same answer set)."""
    return {name: value for name, value in answers.items() if DEFAULTS.get(name, object()) != value}


def combo_id(answers: dict) -> str:
    changed = non_default(answers)
    return "-".join(f"{name}={value}" for name, value in changed.items()) or "defaults"


def run(cmd: list[str], cwd: Path, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command, capturing output; the caller asserts on the result."""
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def tool(name: str) -> str:
    """Path of a checker installed by .ci/run; fail (not skip) when it is missing, so CI cannot pass silently."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: run `bash .ci/run` (or `uv sync`) to install the checkers")
    return path


@pytest.fixture(scope="session")
def render(copie_session) -> Callable[..., Path]:
    """Render the template with the given answers (defaults for the rest) once per session; return the project dir."""
    cache: dict[tuple, Path] = {}

    def _render(**answers: object) -> Path:
        answers = non_default(answers)
        key = tuple(sorted(answers.items()))
        if key not in cache:
            result = copie_session.copy(extra_answers=answers)
            assert result.exit_code == 0, f"render failed for {answers}: {result.exception}"
            assert result.project_dir is not None
            cache[key] = result.project_dir
        return cache[key]

    return _render
