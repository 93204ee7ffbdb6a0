"""Day-to-day hygiene of a generated project: its first commits, its DVC remote, `make drift` and the data in CI.

Each test pins a defect a generated project had: uv.lock refused by the large-file hook, dvc.lock rewritten by the
whitespace hooks after every `dvc repro`, the local DVC remote inside the project, `make drift` hiding "drift" and
"no data" behind make's exit status 2, workflows running the pipeline without the DVC-tracked raw data, and a
serving image that claimed to run batch scoring without its dependencies.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import run

DEFAULT = {}  # the default answers (cloud_provider aws, serving container)
NO_CLOUD = {"cloud_provider": "none"}


def hooks(project: Path) -> dict[str, dict]:
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def excluded(hook: dict, path: str) -> bool:
    """pre-commit skips a file when `re.search(exclude, path)` matches (and it is not in `files`)."""
    return bool(hook.get("exclude")) and re.search(hook["exclude"], path) is not None


def make(project: Path, *args: str) -> object:
    return run(["make", "--no-print-directory", *args], cwd=project, env={**os.environ, "MAKEFLAGS": ""})


def workflow_steps(project: Path, name: str, job: str) -> list[dict]:
    workflow = yaml.safe_load((project / ".github/workflows" / name).read_text(encoding="utf-8"))
    return workflow["jobs"][job]["steps"]


def index_of_run(steps: list[dict], command: str) -> int:
    matches = [i for i, step in enumerate(steps) if step.get("run", "").strip() == command]
    assert len(matches) == 1, f"expected one step running {command!r}, found {len(matches)}"
    return matches[0]


@pytest.fixture
def scratch(render, tmp_path: Path):
    """A private copy of a render, for tests that create files in it (the session renders are shared)."""

    def _copy(**answers: object) -> Path:
        target = tmp_path / "project"
        shutil.copytree(render(**answers), target)
        return target

    return _copy


# --- 1. uv.lock is committed despite the large-file limit ------------------------------------------------------------


def test_large_file_hook_lets_uv_lock_through_and_keeps_its_limit(render) -> None:
    hook = hooks(render(**DEFAULT))["check-added-large-files"]

    assert "--maxkb=1024" in hook["entry"].split()
    assert excluded(hook, "uv.lock")
    for path in ("data/raw/customers.csv", "models/model.joblib", "big.bin", "uv.lock.bak", "src/uv.lock.py"):
        assert not excluded(hook, path), f"{path} must still be size-checked"


# --- 2. the local DVC remote is outside the project ------------------------------------------------------------------


def remote_url(project: Path) -> str:
    match = re.search(r"^\s*url\s*=\s*(\S+)\s*$", (project / ".dvc/config").read_text(encoding="utf-8"), re.M)
    assert match is not None, ".dvc/config has no remote url"
    return match.group(1)


def test_local_dvc_remote_is_beside_the_project_not_inside_it(render) -> None:
    project = render(**NO_CLOUD).resolve()
    url = remote_url(project)

    assert "://" not in url and not url.startswith("/"), f"expected a relative local remote, got {url}"
    # DVC resolves a relative remote url from the directory of the config file, .dvc/.
    location = (project / ".dvc" / url).resolve()
    assert not location.is_relative_to(project), f"{url} resolves to {location}, inside the project"
    assert location.parent == project.parent, f"{url} resolves to {location}, not beside the project"
    assert "beside the project" in (project / ".dvc/config").read_text(encoding="utf-8")


def test_cloud_dvc_remote_is_the_data_bucket(render) -> None:
    assert remote_url(render(**DEFAULT)).startswith("s3://")


# --- 3. files DVC writes are not rewritten by the whitespace hooks ---------------------------------------------------


@pytest.mark.parametrize("hook_id", ["trailing-whitespace", "end-of-file-fixer"])
def test_whitespace_hooks_leave_the_files_dvc_writes_alone(render, hook_id: str) -> None:
    hook = hooks(render(**DEFAULT))[hook_id]

    for path in ("dvc.lock", ".dvc/config", "data/raw/customers.csv.dvc", "data/processed/train.parquet"):
        assert excluded(hook, path), f"{hook_id} would rewrite {path}"
    for path in ("dvc.yaml", "params.yaml", "README.md", "src/pkg/module.py", "Makefile", ".dvcignore"):
        assert not excluded(hook, path), f"{hook_id} must still fix {path}"


# --- 4. make drift: the verdict is distinguishable, no target that does not exist ------------------------------------


def test_drift_target_runs_the_monitoring_module(render) -> None:
    makefile = (render(**DEFAULT) / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^drift:.*\n((?:\t.*\n)+)", makefile, re.M)

    assert recipe is not None, "no drift target"
    assert "python -m $(PACKAGE).monitoring.drift " in recipe.group(1)
    assert re.search(r"^drift-pull:", makefile, re.M), "with a cloud, make drift-pull fetches the logs"


def test_without_a_cloud_nothing_mentions_drift_pull(render) -> None:
    makefile = (render(**NO_CLOUD) / "Makefile").read_text(encoding="utf-8")

    assert re.search(r"^drift:", makefile, re.M)
    assert "drift-pull" not in makefile


@pytest.mark.parametrize(
    ("status", "message"),
    [(0, None), (1, 'status "drift"'), (2, 'status "no_data"')],
)
def test_make_drift_names_the_outcome_of_the_check(render, status: int, message: str | None) -> None:
    """make exits 2 for any failed recipe; the recipe says which outcome it was (and the report's status)."""
    result = make(render(**NO_CLOUD), "drift", f"RUN=sh -c 'exit {status}' --")

    assert result.returncode == (0 if status == 0 else 2), result.stdout + result.stderr
    if message is not None:
        assert message in result.stderr


def test_drift_workflow_takes_the_verdict_from_the_report(render) -> None:
    steps = workflow_steps(render(**DEFAULT), "drift.yml", "check")
    verdict = next(step for step in steps if step.get("id") == "verdict")["run"]

    assert "make drift ||" in verdict, "make's exit status is not the verdict: the step must go on to read the report"
    assert "jq -r .status reports/drift.json" in verdict


# --- 5. the workflows get the DVC-tracked raw data before the pipeline -----------------------------------------------


def test_data_pull_raw_does_nothing_while_the_raw_data_is_in_git(scratch) -> None:
    project = scratch(**NO_CLOUD)

    result = make(project, "data-pull-raw", "RUN=false")  # `false`: dvc must not run at all
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to pull" in result.stdout


def test_data_pull_raw_fails_clearly_when_the_remote_is_out_of_reach(scratch) -> None:
    project = scratch(**NO_CLOUD)
    (project / "data/raw/customers.csv.dvc").write_text("outs:\n- path: customers.csv\n", encoding="utf-8")

    result = make(project, "data-pull-raw", "RUN=false")  # `false` stands for a dvc pull that fails
    assert result.returncode != 0
    assert "Could not pull data/raw/customers.csv.dvc" in result.stderr
    assert "shared storage" in result.stderr


@pytest.mark.parametrize("answers", [DEFAULT, NO_CLOUD], ids=["aws", "none"])
def test_retrain_pulls_the_raw_data_after_the_login_and_before_the_pipeline(render, answers: dict) -> None:
    steps = workflow_steps(render(**answers), "train.yml", "retrain")
    pull, pipeline = index_of_run(steps, "make data-pull-raw"), index_of_run(steps, "make pipeline")

    assert pull < pipeline
    logins = [i for i, step in enumerate(steps) if step.get("uses") == "./.github/actions/cloud-login"]
    assert bool(logins) == (answers != NO_CLOUD)
    assert all(login < pull for login in logins)


def test_ci_without_a_cloud_pulls_the_raw_data_before_the_pipeline(render) -> None:
    steps = workflow_steps(render(**NO_CLOUD), "ci.yml", "pipeline")

    assert index_of_run(steps, "make data-pull-raw") < index_of_run(steps, "make pipeline")


def test_ci_with_a_cloud_skips_the_pipeline_on_dvc_tracked_data_instead_of_failing(render) -> None:
    """ci.yml gets no data credentials (pull requests, forks): with a data/raw/*.dvc pointer it skips, with a notice."""
    project = render(**DEFAULT)
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    pipeline = workflow["jobs"]["pipeline"]
    steps = pipeline["steps"]
    check = next(i for i, step in enumerate(steps) if step.get("id") == "raw-data")

    assert "data/raw/*.dvc" in steps[check]["run"] and "::notice::" in steps[check]["run"]
    train = index_of_run(steps, "make pipeline")
    assert check < train
    for step in steps[train:]:
        assert step.get("if") == "steps.raw-data.outputs.in-git == 'true'", step.get("name")
    assert "id-token" not in pipeline["permissions"]
    assert pipeline["outputs"]["ran"] == "${{ steps.raw-data.outputs.in-git }}"
    # The image job still runs (its scan and SBOM do not need the model); only the smoke test waits for a model.
    image = workflow["jobs"]["image"]
    assert "if" not in image, "the image job must be scanned on every run"
    smoke = next(step for step in image["steps"] if step.get("name", "").startswith("Smoke-test the container"))
    assert smoke["if"].startswith("needs.pipeline.outputs.ran == 'true'")


# --- 6. the image runs batch scoring only when it has its dependencies -----------------------------------------------


@pytest.mark.parametrize("serving", ["container", "batch"])
def test_image_claims_batch_scoring_only_with_the_batch_group(render, serving: str) -> None:
    dockerfile = (render(serving=serving) / "Dockerfile").read_text(encoding="utf-8")
    syncs = re.findall(r"uv sync [^\n]*", dockerfile)

    assert len(syncs) == 2
    claims_batch = "Batch scoring runs the same image" in dockerfile
    assert claims_batch == (serving == "batch")
    assert all(("--group batch" in sync) == (serving == "batch") for sync in syncs)
