"""What the orchestrator tests compare a runner with: the metrics of `dvc repro` on the same checkout.

tests/test_airflow.py (`dag.test()`) and tests/test_kubeflow.py (kfp.local) each run the whole pipeline of a render
and compare its model metrics with `dvc repro` of the same stages on the same data. The two renders differ only in
their orchestration files, so `dvc repro` is run once per set of pipeline inputs (dvc.yaml, params, contract, data,
code and lock: hashed) and its result shared by every test of the session, across xdist workers: the first test to
need it runs it in a copy of its checkout, under a file lock; the others wait for it and read its metrics.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

# Every stage runs the same deterministic code on the same data: metrics may differ only by float formatting.
METRICS_TOLERANCE = 1e-9
# What decides a `dvc repro`'s result: the stages, their parameters, the contract, the data, the code and its lock.
PIPELINE_INPUTS = ("dvc.yaml", "params.yaml", "contract.yaml", "pyproject.toml", "uv.lock", "data/raw", "src")
GIT_IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@example.com"]


def step(cwd: Path, command: list[str], env: dict[str, str], timeout: int = 900) -> tuple[float, str]:
    """Run a command, fail with its output if it fails; return (seconds, stdout)."""
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command[:4])} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return time.monotonic() - started, result.stdout


def commit_checkout(project: Path, env: dict[str, str]) -> None:
    """`git init` and a first commit, as a team's checkout has (DVC works inside a git repository)."""
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", *GIT_IDENTITY, "commit", "-qm", "start"]):
        step(project, command, env)


def pipeline_inputs_digest(project: Path) -> str:
    """sha256 over the path and bytes of every file that decides what `dvc repro` produces."""
    digest = hashlib.sha256()
    for name in PIPELINE_INPUTS:
        root = project / name
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in files:
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(project).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def dvc_repro_metrics(project: Path, shared: Path, env: dict[str, str]) -> tuple[dict[str, float], float]:
    """(the model metrics of `dvc repro` on a copy of `project`, the seconds this call waited or ran for).

    `shared` is a directory every xdist worker of the session sees; the first caller with these pipeline inputs
    runs `dvc repro`, later callers read its reports/metrics.json."""
    started = time.monotonic()
    folder = shared / f"dvc-repro-{pipeline_inputs_digest(project)[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = folder / "metrics.json"
        if not result.exists():
            copy = folder / "project"
            shutil.rmtree(copy, ignore_errors=True)  # a run that failed earlier in the session
            shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".venv", ".git"))
            step(copy, ["uv", "sync", "--locked", "--quiet"], env)
            commit_checkout(copy, env)
            step(copy, ["uv", "run", "--no-sync", "dvc", "repro"], env)
            metrics = json.loads((copy / "reports" / "metrics.json").read_text())["model"]
            result.write_text(json.dumps(metrics))
            shutil.rmtree(copy)
        return json.loads(result.read_text()), time.monotonic() - started
