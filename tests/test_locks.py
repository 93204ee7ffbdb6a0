"""Every render ships a uv.lock that matches its pyproject.toml, from the template's lock of its profile.

The locks live in locks/<lock_profile>.lock (hooks/locks.py writes them; `make locks`). A lock that matches its
project is checked offline (`uv lock --check --offline`): uv compares the lock with the project's dependencies and needs
no index. Every check runs with its own empty uv cache, so a result never depends on what the machine cached before:
a lock that passes here passes on a new machine. A lock that does *not* match needs the registry to say so (uv
re-resolves, and offline with an empty cache it can only report "not found in the cache", which does not prove the
lock is stale), so that one check runs online, against the package index CI reaches. Only Python 3.11 is installed
here; the lock is universal (every interpreter from `requires-python` up), so 3.11 checks the 3.12 and 3.13 renders
too. Installing with `--locked` (`make setup`) runs in the end-to-end tests (tests/test_generated_project.py).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from conftest import RENDER_MATRIX, TEMPLATE_ROOT, combo_id, run

sys.path.insert(0, str(TEMPLATE_ROOT / "hooks"))
import locks


def uv() -> str:
    """The uv of the template's environment, by path: a pyenv shim named uv would read the render's .python-version."""
    path = Path(sys.executable).with_name("uv")
    if not path.exists():
        found = shutil.which("uv")
        if found is None:
            pytest.fail("uv is not installed: run `make bootstrap`")
        return found
    return str(path)


def lock_check(project: Path, *, offline: bool = True):
    """`uv lock --check` with an empty cache of its own, so a warm cache cannot change the answer."""
    command = [uv(), "lock", "--check", "--python", sys.executable, *(["--offline"] if offline else [])]
    with tempfile.TemporaryDirectory(prefix="uv-cache-") as cache:
        return run(command, cwd=project, timeout=180, env={**os.environ, "UV_CACHE_DIR": cache})


def test_every_lock_profile_has_a_lock_and_every_lock_a_profile() -> None:
    stored = {path.stem for path in (TEMPLATE_ROOT / "locks").glob("*.lock")}
    assert stored == set(locks.profiles()), "run `make locks`"


@pytest.mark.parametrize("answers", RENDER_MATRIX, ids=combo_id)
def test_render_ships_a_lock_that_uv_accepts(render, answers: dict) -> None:
    project = render(**answers)
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    name = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]

    assert locks.ROOT_ENTRY.format(name=name) in lock
    assert lock.endswith("\n") and not lock.endswith("\n\n"), "the lock must end as uv writes it"
    result = lock_check(project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lock_names_the_project_it_is_rendered_for(copie) -> None:
    result = copie.copy(extra_answers={"project_name": "Fraud Scoring", "python_version": "3.13"})
    assert result.exit_code == 0, result.exception
    lock = (result.project_dir / "uv.lock").read_text(encoding="utf-8")

    assert 'name = "fraud-scoring"' in lock
    assert "customer-churn" not in lock
    check = lock_check(result.project_dir)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_dependency_edit_makes_the_lock_check_fail(render, tmp_path: Path) -> None:
    """The check the template's CI relies on can fail: a changed requirement no longer matches the shipped lock.

    uv must re-resolve to tell, so this check reaches the package index (with an empty cache, whatever the machine
    cached before); offline it could only say that packages are missing from the cache, which is not the verdict.
    """
    project = tmp_path / "project"
    shutil.copytree(render(), project)
    pyproject = project / "pyproject.toml"
    edited = re.sub(r'"numpy>=[\d.]+"', '"numpy>=1.27"', pyproject.read_text(encoding="utf-8"))
    assert '"numpy>=1.27"' in edited
    pyproject.write_text(edited, encoding="utf-8")

    result = lock_check(project, offline=False)

    assert result.returncode != 0
    assert "needs to be updated" in result.stderr, result.stdout + result.stderr
    assert "network was disabled" not in result.stderr


def test_the_project_installs_exactly_its_lock(render) -> None:
    makefile = (render() / "Makefile").read_text(encoding="utf-8")
    setup = re.search(r"^setup:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert setup is not None
    assert "sync --locked" in setup.group(1)


def test_stored_lock_becomes_a_template_with_the_project_name_left_to_copier() -> None:
    entry = locks.ROOT_ENTRY.format(name="demo-project")
    lock = f'version = 1\n\n[[package]]\nname = "numpy"\n\n{entry}'

    assert locks.to_template(lock, "demo-project").endswith(locks.ROOT_ENTRY.format(name="{{ project_slug }}"))
    with pytest.raises(ValueError, match="no single root entry"):
        locks.to_template(lock, "other-project")
    with pytest.raises(ValueError, match="Jinja"):
        locks.to_template(lock + "# {{ oops }}\n", "demo-project")
