"""A team brings its own data: a default render takes a different dataset and task by changing its own files only.

As a new user would, following the generated README: put the table in data/raw/, draft the contract with
`make contract`, point params.yaml at the table, drop the shipped sample and its domain tests. Then the CI
workflow's steps that read the data (test, pre-commit, pipeline) and a served /predict must pass with no edit of
any template-owned file. The datasets ship inside packages (tests/byod_datasets.py), so this runs offline:

    breast_cancer  binary      30 numeric inputs with spaces in their names; no category, id or timestamp
    penguins       multiclass  categorical and numeric inputs with missing values
    rentals        regression  a count target; 0/1 flags that are 0 for most rows, a zero-inflated input, a year,
                               an integer id, and a date of birth that is not an event time (synthetic)

One dataset per task, each a different kind of contract. A numeric-only regression table (scikit-learn's diabetes)
was a fourth run until CI's time needed the room: breast_cancer has only numeric inputs, rentals a regression
target, and the feature matrix does not depend on the task (scoring/features.py never reads it).

The rentals run also walks the sequence that once put pipeline outputs into git: its first `make pipeline` fails
at the gate (an impossible threshold), the threshold is lowered, `make pipeline` again; the splits and the models
must stay out of `git status`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from byod_datasets import write_dataset
from conftest import run
from test_generated_project import cached_outputs, fresh_copy, precommit_on, project_env, serve_and_predict, step
from test_package_structure import TEAM_OWNED

DATASETS = {"breast_cancer": "binary", "penguins": "multiclass", "rentals": "regression"}


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

    if name == "rentals":
        check_the_rentals_draft(project)
        a_failed_gate_keeps_pipeline_outputs_out_of_git(project)

    # lint and typecheck read no data, so a team's dataset cannot change them: the default project's end-to-end
    # test runs them, and every hook on every file of the render. Here the hooks run on what the team changed (as
    # its commit runs them); the tests and the pipeline read the contract and the table.
    step(project, "make", "test")
    precommit_on(project, sorted(changes))
    step(project, "make", "pipeline")
    serve_and_predict(project)


def check_the_rentals_draft(project: Path) -> None:
    """Flags stay 0..1, the year is not widened, the date of birth is neither the timestamp nor an input."""
    text = (project / "contract.yaml").read_text(encoding="utf-8")
    contract = yaml.safe_load(text)
    columns = contract["columns"]
    for flag in ("holiday", "event", "snow", "workingday"):
        assert (columns[flag]["min"], columns[flag]["max"]) == (0, 1), columns[flag]
        assert "0/1 flag" in columns[flag]["description"]
    assert (columns["year"]["min"], columns["year"]["max"]) == (2007, 2009)
    assert contract["id"] == {"column": "rental_id"}
    assert "timestamp" not in contract
    assert "date_of_birth" not in columns
    assert "# timestamp: none taken; not 'date_of_birth': a date of birth" in text


def a_failed_gate_keeps_pipeline_outputs_out_of_git(project: Path) -> None:
    """First `make pipeline` fails at the gate, the second passes: no split or model shows up in git."""
    params = project / "params.yaml"
    reachable = params.read_text(encoding="utf-8")
    assert reachable.count("r2: {min: 0.3}") == 1
    params.write_text(reachable.replace("r2: {min: 0.3}", "r2: {min: 1.5}"), encoding="utf-8")
    failed = run(["make", "pipeline"], cwd=project, timeout=1200, env=project_env())
    assert failed.returncode != 0
    assert "gate" in failed.stdout + failed.stderr
    said = re.search(r"^split: .*$", failed.stdout, re.MULTILINE)
    assert said, failed.stdout[-3000:]
    assert said.group(0).startswith("split: random (split.strategy is auto and the contract has no timestamp")
    params.write_text(reachable, encoding="utf-8")
    step(project, "make", "pipeline")

    outputs = cached_outputs(project)  # reports and models/registry.json are `cache: false`: git's
    changed = [path for path in changed_files(project) if any(path.startswith(out) for out in outputs)]
    assert changed == [], f"pipeline outputs git would commit: {changed}"
    shipped = {"data/processed/.gitignore", "models/.gitignore"}
    assert not shipped & set(changed_files(project))  # DVC left the shipped entries alone
    assert (project / "models" / "model.onnx").is_file()
    ignored = run(["git", "check-ignore", "data/processed/train.parquet", "models/model.joblib"], cwd=project)
    assert ignored.stdout.split() == ["data/processed/train.parquet", "models/model.joblib"]
