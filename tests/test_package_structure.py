"""The line between the team's domain and the template's machinery, checked on renders of every task.

- No column, id, timestamp or target name of the shipped example appears outside the team's own files: the
  machinery reads everything about the data from contract.yaml at run time.
- The package has no import cycle.
- Every module a DVC stage imports, transitively, is among that stage's deps (else editing it would leave
  `dvc status` clean and the stage's outputs stale).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from package_imports import closure, cycles, import_graph, module_files

PACKAGE = "customer_churn"
TASKS = ("binary", "multiclass", "regression")
# Names of the shipped example's data (its contract.yaml); generic words such as "plan" are left out.
EXAMPLE_NAMES = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_tickets",
    "contract_type",
    "payment_method",
    "customer_id",
    "event_timestamp",
    "churned",
    "next_plan",
    "next_quarter_revenue",
    "churn_probability",
)
# The team's files (README "Who owns what"), and the generator of the shipped sample, which is the example.
TEAM_OWNED = re.compile(
    r"^(contract\.yaml|data/raw/.*|tests/test_domain\.py|docs/model-card\.template\.md|README\.md"
    r"|\.copier-answers\.yml|src/[^/]+/sample_data\.py|tests/test_sample_data\.py)$"
)
EXAMPLE_PATTERN = re.compile(r"\b(" + "|".join(EXAMPLE_NAMES) + r")\b")


def files_of(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*") if path.is_file() and ".git" not in path.parts)


@pytest.mark.parametrize("task", TASKS)
def test_no_example_name_outside_the_teams_files(render, task: str) -> None:
    project = render(task=task)
    offenders = []
    for path in files_of(project):
        relative = path.relative_to(project).as_posix()
        if TEAM_OWNED.match(relative):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if EXAMPLE_PATTERN.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()[:100]}")
    assert not offenders, "example names in template-owned files:\n" + "\n".join(offenders[:40])


def test_the_example_names_are_the_shipped_contracts(render) -> None:
    """The grep above looks for the right names: every one is in some shipped contract or the old batch output."""
    names = set()
    for task in TASKS:
        contract = yaml.safe_load((render(task=task) / "contract.yaml").read_text(encoding="utf-8"))
        names |= set(contract["columns"]) | {contract["target"]["column"], contract["id"]["column"]}
        names.add(contract["timestamp"]["column"])
    assert set(EXAMPLE_NAMES) - {"churn_probability"} <= names


def test_the_package_has_no_import_cycle(render) -> None:
    graph = import_graph(render() / "src", PACKAGE)
    assert len(graph) > 30
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "src" / "demo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("def thing():\n    from . import a\n")
    assert cycles(import_graph(tmp_path / "src", "demo")) == [["demo.a", "demo.b", "demo.a"]]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("answers", [{}, {"experiment_tracking": "none"}, {"monitoring": False}])
def test_every_stage_depends_on_every_module_it_imports(render, answers: dict) -> None:
    project = render(**answers)
    graph = import_graph(project / "src", PACKAGE)
    files = module_files(project / "src", PACKAGE)
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert set(stages) == {"validate", "features", "train", "evaluate", "gate"}
    for stage, spec in stages.items():
        module = f"{PACKAGE}.stages.{stage}"
        assert f"python -m {module}" in spec["cmd"], f"stage {stage} must run its module {module}"
        deps = [str(dep) for dep in spec["deps"]]
        for dep in deps:
            if dep.startswith("src/"):
                assert (project / dep).exists(), f"{stage}: dep {dep} does not exist"
        imported = sorted(files[name].relative_to(project).as_posix() for name in closure(graph, module))
        missing = [path for path in imported if not covered(path, deps)]
        assert not missing, f"stage {stage} imports modules that are not its deps: {missing}"
        assert "contract.yaml" in deps, f"stage {stage} reads the contract"
