"""Where a model came from: the code version, the data version and the software environment."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ..metadata import file_sha256


def git_sha(cwd: Path | None = None) -> str:
    """The commit of the working tree, or "unknown" outside a git repository."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    result = subprocess.run(  # noqa: S603 (fixed argument list, no shell, git from PATH)
        [git, "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def environment(lock_file: Path = Path("uv.lock")) -> dict[str, Any]:
    """Python, platform and installed distributions (and the uv.lock hash when there is one)."""
    packages = sorted(
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    )
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "uv_lock_sha256": file_sha256(lock_file) if lock_file.is_file() else None,
        "packages": packages,
    }
