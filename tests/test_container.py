"""The generated Dockerfile and .dockerignore, linted by hadolint and checkov for every serving answer and
checked against the serving contract: base image, user, port, health check, entrypoint, groups, model.

No Docker engine is needed: the generated project's CD workflow builds the image; here the files are judged.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SERVING, run, tool

PACKAGE = "customer_churn"
# The default render (serving=container, python 3.11), every other serving answer, and the newest Python.
ANSWER_SETS = [
    {},
    *({"serving": serving} for serving in SERVING if serving != "container"),
    {"python_version": "3.13"},
]
ANSWER_IDS = ["defaults", *(f"serving-{s}" for s in SERVING if s != "container"), "python-3.13"]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int


def instructions(dockerfile: str) -> list[Instruction]:
    """The instructions of a Dockerfile (continuation lines joined, comments dropped), numbered by stage."""
    result: list[Instruction] = []
    stage = -1
    logical = ""
    for line in dockerfile.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        logical += stripped.removesuffix("\\").strip() + " "
        if stripped.endswith("\\"):
            continue
        keyword, _, arguments = logical.strip().partition(" ")
        logical = ""
        if keyword.upper() == "FROM":
            stage += 1
        result.append(Instruction(keyword.upper(), arguments.strip(), stage))
    return result


def dockerfile(project: Path) -> list[Instruction]:
    return instructions((project / "Dockerfile").read_text())


def final_stage(parsed: list[Instruction]) -> list[Instruction]:
    last = parsed[-1].stage
    return [instruction for instruction in parsed if instruction.stage == last]


def only(parsed: list[Instruction], keyword: str) -> Instruction:
    matches = [instruction for instruction in parsed if instruction.keyword == keyword]
    assert len(matches) == 1, f"expected one {keyword}, found {len(matches)}"
    return matches[0]


def env_vars(parsed: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in parsed:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.arguments):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


@pytest.fixture(params=ANSWER_SETS, ids=ANSWER_IDS)
def answers(request: pytest.FixtureRequest) -> dict[str, str]:
    return request.param


@pytest.fixture
def project(render, answers: dict[str, str]) -> Path:
    return render(**answers)


def test_hadolint_finds_nothing(project: Path) -> None:
    """Every Dockerfile of the render: the service's, and the pipeline's and Spark's where the answers have them."""
    dockerfiles = sorted(path.name for path in project.glob("Dockerfile*") if path.suffix != ".dockerignore")
    result = run([tool("hadolint"), "--failure-threshold", "warning", *dockerfiles], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_passes_every_dockerfile_check(project: Path) -> None:
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    result = run(
        [
            tool("checkov"),
            "-d",
            str(project),
            "--framework",
            "dockerfile",
            "--skip-download",
            "--compact",
            "--quiet",
        ],
        cwd=project,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.search(r"Passed checks: (\d+), Failed checks: (\d+)", result.stdout)
    assert passed is not None, result.stdout
    assert int(passed.group(1)) > 0 and int(passed.group(2)) == 0, result.stdout


def test_every_stage_uses_the_pinned_slim_python_of_the_answers(project: Path, answers: dict) -> None:
    python_version = answers.get("python_version", "3.11")
    bases = [i.arguments.split()[0] for i in dockerfile(project) if i.keyword == "FROM"]

    assert len(bases) >= 2, "the image is built in stages: the build tools stay out of the final image"
    assert set(bases) == {f"python:{python_version}-slim-bookworm"}


def test_uv_is_pinned_and_installs_only_the_runtime_dependencies(project: Path, answers: dict) -> None:
    parsed = dockerfile(project)
    runs = [i.arguments for i in parsed if i.keyword == "RUN"]

    assert any(re.search(r"\buv==\d+\.\d+\.\d+\b", command) for command in runs)
    syncs = [command for command in runs if "uv sync" in command]
    assert len(syncs) == 2  # dependencies (cached layer), then the project
    for command in syncs:
        assert {"--locked", "--no-dev", "--no-default-groups"} <= set(command.split())
        # serving kubernetes: the same image also runs the batch CronJob (deploy/kubernetes/base/cronjob.yaml)
        assert ("--group batch" in command) == (answers.get("serving") in ("batch", "kubernetes"))
        for group in ("train", "dev"):
            assert f"--group {group}" not in command


def test_final_stage_follows_the_serving_contract(project: Path) -> None:
    final = final_stage(dockerfile(project))

    user = only(final, "USER").arguments
    assert user.split(":")[0] == "10001", "run as the non-root user app (uid 10001), by number"
    assert only(final, "WORKDIR").arguments == "/app"
    assert only(final, "EXPOSE").arguments == "8000 9100", "the service's port, then the metrics port"
    healthcheck = only(final, "HEALTHCHECK").arguments
    assert "/health" in healthcheck
    assert f"{PACKAGE}.serving.client" in healthcheck  # python + urllib: slim images have no curl
    assert only(final, "ENTRYPOINT").arguments == f'["python", "-m", "{PACKAGE}.serving"]'
    copies = [i.arguments for i in final if i.keyword == "COPY"]
    model_copy = "models/champion/model.onnx models/champion/metadata.json /app/model/"
    contract_copy = "contract.yaml params.yaml /app/"
    assert model_copy in copies, "the image serves the ONNX model; model.joblib (scikit-learn) stays out"
    assert contract_copy in copies, "the contract (the service's schemas) and params.yaml (batch settings)"
    assert all(c.startswith("--from=builder") or c in (model_copy, contract_copy) for c in copies), copies
    env = env_vars(final)
    assert env["MODEL_DIR"] == "/app/model"
    assert env["CONTRACT_PATH"] == "/app/contract.yaml"
    assert env["PARAMS_PATH"] == "/app/params.yaml"
    assert env["PORT"] == "8000"
    assert env["METRICS_PORT"] == "9100"
    assert env["AUTH_MODE"] == "api_key", "the image refuses callers without a key unless told otherwise"
    assert env["APP_ENV"] == "production", "no interactive docs in the image"
    assert env["HOST"] == "0.0.0.0"
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert env[variable] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONUNBUFFERED"] == "1"


def test_image_labels_name_the_project(project: Path) -> None:
    labels = " ".join(i.arguments for i in dockerfile(project) if i.keyword == "LABEL")

    for key in ("title", "description", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert 'org.opencontainers.image.source="https://github.com/my-org/customer-churn"' in labels


def copied_from_context(project: Path) -> set[str]:
    """Sources of the COPY instructions that read the build context (not another stage)."""
    return {
        source.rstrip("/")
        for i in dockerfile(project)
        if i.keyword == "COPY" and not i.arguments.startswith("--from")
        for source in i.arguments.split()[:-1]
    }


def test_build_context_sources_exist_or_come_from_setup_and_pipeline(project: Path) -> None:
    """What the image copies is in the render, except uv.lock (make setup) and the model (make pipeline)."""
    produced = {"uv.lock", "models/champion/model.onnx", "models/champion/metadata.json"}
    sources = copied_from_context(project)

    assert produced < sources, "the lock file and the champion model go into the image"
    for source in sources - produced:
        assert (project / source).exists(), source


def test_dockerignore_admits_exactly_what_the_dockerfile_copies(project: Path) -> None:
    patterns = [
        line.strip()
        for line in (project / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert patterns[0] == "*", "start from nothing, then admit files: data, .venv, .git, secrets stay out"
    admitted = {pattern.removeprefix("!").rstrip("/") for pattern in patterns if pattern.startswith("!")}
    assert admitted == copied_from_context(project)
