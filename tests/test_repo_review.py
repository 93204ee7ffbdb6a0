"""scientific-python's repo-review on a default render fails only the checks its docs/project-checks.md explains.

The generated project follows the scientific-python development guide where it can: strict pytest and mypy, a
spell checker, a Markdown formatter, zizmor, ruff's target version from `requires-python`. The checks it fails
by design (mostly: its pre-commit hooks are local, and repo-review recognises a hook only by the URL of its
upstream repository) are listed with their reason in the generated docs/project-checks.md and mirrored in
DOCUMENTED_FAILURES here. A check that newly fails, or a documented one that now passes, fails this test, so the
document stays the complete and true list.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import run, tool

DOC = "docs/project-checks.md"
# The checks docs/project-checks.md explains, in its order (the doc, pyproject.toml and these constants agree):
# skipped because they do not apply (`[tool.repo-review.ignore]`, with the reason repo-review prints) ...
NOT_APPLICABLE = ("PY007", "PC140", "PC170", "PC901", "PC902", "PC903")
# ... and failed by design: the tool runs as a local hook, and repo-review recognises only its upstream repository.
DOCUMENTED_FAILURES = ("PC100", "PC110", "PC160", "PC180", "PC190")
DOC_ROW = re.compile(r"^\| `(?P<check>[A-Z]+\d+)` \| (?P<looks_for>[^|]+) \| (?P<reason>[^|]+) \|$", re.M)


@pytest.fixture(scope="module")
def default_render(render, tmp_path_factory) -> Path:
    """A copy of the default render with a git repository (repo-review reads the project like a checkout)."""
    project = tmp_path_factory.mktemp("repo-review") / "project"
    shutil.copytree(render(), project, ignore=shutil.ignore_patterns(".venv", ".git"))
    run(["git", "init", "--quiet"], cwd=project)
    run(["git", "add", "--all"], cwd=project)
    return project


@pytest.fixture(scope="module")
def review(default_render: Path) -> dict:
    result = run([tool("repo-review"), "--format", "json", str(default_render)], cwd=default_render)
    assert result.stdout.strip(), f"repo-review printed nothing:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


def documented(project: Path) -> dict[str, str]:
    """check -> reason, from the table of docs/project-checks.md."""
    text = (project / DOC).read_text(encoding="utf-8")
    return {row["check"]: row["reason"].strip() for row in DOC_ROW.finditer(text)}


def test_the_doc_pyproject_and_the_constants_list_the_same_checks(default_render: Path) -> None:
    rows = documented(default_render)
    assert tuple(rows) == NOT_APPLICABLE + DOCUMENTED_FAILURES, "docs/project-checks.md and the constants disagree"
    assert all(len(reason) > 20 for reason in rows.values()), f"every documented check needs a reason: {rows}"
    pyproject = tomllib.loads((default_render / "pyproject.toml").read_text(encoding="utf-8"))
    ignored = pyproject["tool"]["repo-review"]["ignore"]
    assert tuple(ignored) == NOT_APPLICABLE
    assert all(len(reason) > 20 for reason in ignored.values())


def test_repo_review_fails_only_the_documented_checks(review: dict) -> None:
    checks = review["checks"]
    failed = {name for name, check in checks.items() if check["result"] is False}
    undocumented = {name: checks[name]["description"] for name in sorted(failed - set(DOCUMENTED_FAILURES))}
    assert not undocumented, f"repo-review fails checks docs/project-checks.md does not explain: {undocumented}"
    now_passing = sorted(set(DOCUMENTED_FAILURES) - failed)
    assert not now_passing, f"documented failures that no longer fail (remove them from {DOC}): {now_passing}"
    skipped = {name for name, check in checks.items() if check["result"] is None and check.get("skip_reason")}
    assert set(NOT_APPLICABLE) <= skipped, f"not skipped with a reason: {sorted(set(NOT_APPLICABLE) - skipped)}"


def test_repo_review_ran_the_scientific_python_checks(review: dict) -> None:
    """The guide's checks of the generated configuration pass (so a missing plugin cannot make the test pass)."""
    checks = review["checks"]
    expected_passing = {
        "PP302",  # pytest minversion
        "PP304",  # log_level
        "PP305",  # xfail_strict
        "PP306",  # --strict-config
        "PP307",  # --strict-markers
        "PP309",  # filterwarnings
        "MY101",  # mypy strict
        "MY103",  # warn_unreachable
        "MY104",  # ignore-without-code
        "MY105",  # redundant-expr
        "MY106",  # truthy-bool
        "RF002",  # ruff's target version from requires-python only
        "SEC001",  # zizmor: the CI security job's zizmor-action (its hook is local)
    }
    missing = expected_passing - set(checks)
    assert not missing, f"repo-review did not run {sorted(missing)}: is sp-repo-review installed?"
    failing = {name: checks[name]["err_msg"] for name in sorted(expected_passing) if checks[name]["result"] is not True}
    assert not failing, failing


def test_the_zizmor_of_code_scanning_is_the_zizmor_of_the_hook(default_render: Path) -> None:
    """SEC001 passes through the CI step that uploads zizmor's findings: it runs the version the hook pins."""
    ci = yaml.safe_load((default_render / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    (step,) = [s for s in ci["jobs"]["security"]["steps"] if s.get("uses", "").startswith("zizmorcore/zizmor-action@")]
    hooks = yaml.safe_load((default_render / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    (zizmor,) = [hook for repo in hooks["repos"] for hook in repo["hooks"] if hook["id"] == "zizmor"]
    assert zizmor["additional_dependencies"] == [f"zizmor=={step['with']['version']}"]
    assert step["with"]["online-audits"] is False, "the same offline audits as `make lint-workflows`"
