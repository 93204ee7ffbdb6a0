"""Shared fixtures: the answer matrix and session-cached renders of the template.

Every test module that checks a render asks `render(...)` for it, so each answer combination is rendered once per
test session however many checkers look at it.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent

CLOUDS = ("aws", "gcp", "azure", "none")
SERVING = ("container", "managed", "batch", "none")
TRACKING = ("mlflow", "none")


def is_allowed(cloud: str, serving: str) -> bool:
    """The combinations copier.yml accepts (mirrors its `serving` validator)."""
    return not (serving == "managed" and cloud == "none")


ALLOWED_COMBOS = [
    {"cloud_provider": c, "serving": s, "experiment_tracking": t}
    for c, s, t in itertools.product(CLOUDS, SERVING, TRACKING)
    if is_allowed(c, s)
]
# Infrastructure does not depend on experiment tracking: one render per cloud x serving is enough for it.
CLOUD_SERVING_COMBOS = [
    {"cloud_provider": c, "serving": s} for c, s in itertools.product(CLOUDS, SERVING) if is_allowed(c, s)
]


def combo_id(answers: dict) -> str:
    return "-".join(f"{v}" for v in answers.values()) or "defaults"


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
        key = tuple(sorted(answers.items()))
        if key not in cache:
            result = copie_session.copy(extra_answers=answers)
            assert result.exit_code == 0, f"render failed for {answers}: {result.exception}"
            assert result.project_dir is not None
            cache[key] = result.project_dir
        return cache[key]

    return _render
