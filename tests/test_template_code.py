"""The template's own Python (hooks, tests, benchmarks) is linted and formatted like the code it generates."""

from __future__ import annotations

import pytest
from conftest import TEMPLATE_ROOT, run, tool

OWN_CODE = ["hooks", "tests", "benchmarks"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["ruff-check", "ruff-format"])
def test_own_python_passes_ruff(command: list[str]) -> None:
    result = run([tool("ruff"), *command, "--no-cache", *OWN_CODE], cwd=TEMPLATE_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_entry_point_runs_the_readme_test_command() -> None:
    """CI must run exactly what README.md tells a developer to run."""
    readme = (TEMPLATE_ROOT / "README.md").read_text(encoding="utf-8")
    ci = (TEMPLATE_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in readme
    assert ci.rstrip().splitlines()[-1] == "make test"
