"""A team brings its own data: a default render takes a different dataset and task by changing its own files only.

As a new user would, following the generated README: put the table in data/raw/, draft the contract with
`make contract`, point params.yaml at the table, drop the shipped sample and its domain tests. Then the CI
workflow's steps that read the data (test, pre-commit, pipeline) and a served /predict must pass with no edit of
any template-owned file. The datasets ship inside packages (tests/byod_datasets.py), so this runs offline:

    breast_cancer  binary      30 numeric inputs with spaces in their names; no category, id or timestamp
    penguins       multiclass  categorical and numeric inputs with missing values
    diabetes       regression  numeric inputs only
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from byod_datasets import write_dataset
from conftest import run
from test_generated_project import fresh_copy, project_env, serve_and_predict, step
from test_package_structure import TEAM_OWNED

DATASETS = {"breast_cancer": "binary", "penguins": "multiclass", "diabetes": "regression"}


def changed_files(project: Path) -> dict[str, str]:
    """path -> git status of every file that differs from the committed render (uv.lock aside: `make setup`)."""
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project, env=project_env())
    changes = {}
    for line in status.stdout.splitlines():
        path = line[3:].strip().strip('"')
        if path != "uv.lock":
            changes[path] = line[:2].strip()
    return changes


def diff_lines(project: Path) -> dict[str, str]:
    """+added/-removed lines of every tracked file the team changed."""
    numstat = run(["git", "diff", "--numstat"], cwd=project, env=project_env()).stdout
    return {path: f"+{added}/-{removed}" for added, removed, path in (row.split("\t") for row in numstat.splitlines())}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_new_dataset_needs_only_team_owned_changes(render: Callable[..., Path], tmp_path: Path, name: str) -> None:
    project = fresh_copy(render, tmp_path)
    step(project, "make", "setup")

    table, target = write_dataset(name, project / "data" / "raw")
    (project / "data" / "raw" / "customers.csv").unlink()
    (project / "tests" / "test_domain.py").unlink()
    relative = table.relative_to(project).as_posix()
    step(project, "make", "contract", f"DATA={relative}", f"TARGET={target}", "FORCE=1")
    params = project / "params.yaml"
    params.write_text(re.sub(r"(?m)^  raw: .*$", f"  raw: {relative}", params.read_text()))

    changes = changed_files(project)
    print(f"  {name}: changed {changes}; lines {diff_lines(project)}")
    assert all(TEAM_OWNED.match(path) or path == "params.yaml" for path in changes), changes
    assert "task: " + DATASETS[name] in (project / "contract.yaml").read_text()

    # lint and typecheck read no data, so a team's dataset cannot change them: the default project's end-to-end
    # test runs them. Everything below reads the contract or the table.
    for target_name in ("test", "precommit", "pipeline"):
        step(project, "make", target_name)
    serve_and_predict(project)
