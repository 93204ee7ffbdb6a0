"""`make audit` of the generated project fails when a dependency could not be audited.

pip-audit skips what it cannot look up ("Dependency not found on PyPI and could not be audited") and, without
--strict, still exits 0 with "No known vulnerabilities found": an audit of nothing would pass. Here the audit
command of the generated Makefile runs, with the pip-audit the generated uv.lock pins, on a requirement that
does not exist on PyPI. pip-audit's vulnerability service is PyPI's JSON API: without PyPI the test is skipped.
"""

from __future__ import annotations

import re
import shlex
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import run, tool

MISSING = "copier-mlops-no-such-distribution-for-audit-tests"
# --disable-pip (the Makefile's, to audit the lock without installing it) needs hashed requirements, as
# `uv export` writes them; pip-audit never downloads anything with it, so any well-formed hash will do.
FAKE_HASH = "sha256:" + "0" * 64


def pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def audit_arguments(project: Path) -> list[str]:
    """The arguments of pip-audit in the `audit` recipe of the generated Makefile (the requirement file dropped)."""
    makefile = (project / "Makefile").read_text(encoding="utf-8")
    (line,) = [line for line in makefile.splitlines() if "pip-audit " in line and line.startswith("\t")]
    words = shlex.split(line.split("pip-audit", 1)[1])
    position = words.index("--requirement")
    return words[:position] + words[position + 2 :]


def locked_version(project: Path, name: str) -> str:
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    match = re.search(rf'^name = "{name}"\nversion = "([^"]+)"', lock, re.MULTILINE)
    assert match, f"{name} is not in uv.lock"
    return match.group(1)


def test_the_audit_is_strict(render) -> None:
    assert "--strict" in audit_arguments(render())


@pytest.mark.skipif(not pypi_reachable(), reason="PyPI (pip-audit's vulnerability service) is not reachable")
def test_an_unauditable_requirement_fails_the_audit(render, tmp_path: Path) -> None:
    project = render()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{MISSING}==1.0.0 --hash={FAKE_HASH}\n")
    pip_audit = ["uvx", "--from", f"pip-audit=={locked_version(project, 'pip-audit')}", "pip-audit"]
    command = [tool("uvx"), *pip_audit[1:], *audit_arguments(project), "--requirement", str(requirements)]

    result = run(command, tmp_path, timeout=300)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{MISSING}: Dependency not found on PyPI and could not be audited" in output
