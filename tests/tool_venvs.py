"""Heavy tools of single tests (Airflow, kfp, the SageMaker SDK, an MLflow server, an emulator) in venvs of their own.

Never in the template's lock or a project's: each venv is created once per Python version and pin set under the
user's cache directory (`$XDG_CACHE_HOME/copier-mlops-tests/<name>-<hash of the pins>`) and reused by later runs.
pytest-xdist workers share the cache: one installs under a file lock, the others wait for it and reuse it. A venv
is complete only when its marker file exists, so an interrupted install is redone, never half used.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "copier-mlops-tests"
INSTALL_TIMEOUT = 900


class ToolInstallError(RuntimeError):
    """uv could not create the venv or install the pins (the message has its output)."""


def tool_venv(name: str, python: str, packages: Sequence[str]) -> Path:
    """The venv `name` with `packages` installed for `python` (a version or an interpreter path)."""
    key = hashlib.sha256(" ".join((python, *packages)).encode()).hexdigest()[:12]
    root = CACHE / f"{name}-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".complete").is_file():
            shutil.rmtree(root, ignore_errors=True)
            started = time.monotonic()
            uv = shutil.which("uv") or "uv"
            for command in (
                [uv, "venv", "--quiet", "--python", python, str(root)],
                [uv, "pip", "install", "--quiet", "--python", str(root / "bin" / "python"), *packages],
            ):
                result = subprocess.run(
                    command, cwd=CACHE, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
                )
                if result.returncode != 0:
                    raise ToolInstallError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
            (root / ".complete").write_text(f"{' '.join(packages)}\n{time.monotonic() - started:.0f} s\n")
            print(f"  installed the {name} test venv in {time.monotonic() - started:.0f} s")
    return root
