"""feature_store feast: what a render holds, that projects without it are unchanged, and (slow) that the generated
feature-store tests pass for every task: apply -> materialise -> online equals offline, the point-in-time join,
/predict by id equal to /predict with the full record, 404 and 503, on SQLite and on a real redis-server.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import run
from test_generated_project import PACKAGE, free_port, fresh_copy, post_json, project_env, step

FEAST = {"cloud_provider": "none", "serving": "container", "feature_store": "feast"}
FEAST_ONLY = (
    "feature_repo/feature_store.yaml",
    "feature_repo/feature_store.redis.yaml",
    f"src/{PACKAGE}/feature_store/repository.py",
    f"src/{PACKAGE}/feature_store/online.py",
    f"src/{PACKAGE}/feature_store/offline.py",
    f"src/{PACKAGE}/stages/feature_apply.py",
    f"src/{PACKAGE}/stages/materialize.py",
    f"src/{PACKAGE}/stages/training_set.py",
    "tests/test_feature_store.py",
)


def test_a_feast_render_has_the_feature_repository_and_its_stages(render: Callable[..., Path]) -> None:
    project = render(**FEAST)
    for path in FEAST_ONLY:
        assert (project / path).is_file(), path
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert list(stages)[:4] == ["validate", "feature_apply", "materialize", "features"]
    for name in ("feature_apply", "materialize", "features"):
        assert stages[name]["cmd"].startswith(f"python -m {PACKAGE}.stages."), stages[name]["cmd"]
    assert "training_set" in stages["features"]["cmd"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert set(params["feature_store"]["materialize"]) == {"start", "end"}
    pyproject = (project / "pyproject.toml").read_text()
    assert '"feast[redis]>=' in pyproject
    assert "tracking | feature_store" in pyproject


def test_without_a_feature_store_nothing_of_it_is_rendered(render: Callable[..., Path]) -> None:
    project = render(cloud_provider="none", serving="container")
    for path in FEAST_ONLY:
        assert not (project / path).exists(), path
    assert "feast" not in (project / "pyproject.toml").read_text()
    assert "feast" not in (project / "uv.lock").read_text()
    assert "feature_store" not in (project / "params.yaml").read_text()
    assert "feature_apply" not in (project / "dvc.yaml").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_generated_feature_store_tests_pass_for_every_task(
    render: Callable[..., Path], tmp_path: Path, task: str
) -> None:
    """The generated tests/test_feature_store.py of each task's render, in its own locked environment."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/bootstrap installs it): the Redis online store is untested")
    project = fresh_copy(render, tmp_path, **FEAST, task=task)
    started = time.monotonic()
    step(project, "uv", "sync", "--locked", "--all-groups", "--quiet")
    result = run(
        ["uv", "run", "--no-sync", "pytest", "tests/test_feature_store.py", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=project,
        env=project_env(),
        timeout=900,
    )
    print(f"  {task}: {time.monotonic() - started:.0f} s\n{result.stdout[-1500:]}")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " skipped" not in result.stdout.splitlines()[-1] or "once, with the Redis" in result.stdout


@pytest.mark.slow
def test_feast_project_runs_its_pipeline_and_serves_by_id(render: Callable[..., Path], tmp_path: Path) -> None:
    """The heavy end to end: lint, types and `make pipeline` with the feature-store stages, then the served
    /predict by id over HTTP equals /predict with the full record; a second `dvc repro` re-runs nothing."""
    project = fresh_copy(render, tmp_path, **FEAST)
    timings = {"setup": step(project, "make", "setup")}
    for target in ("lint", "typecheck", "pipeline"):
        timings[target] = step(project, "make", target)
    print(f"  timings: {timings}")
    materialized = json.loads((project / "reports" / "materialization.json").read_text())
    assert materialized["online_store"] == "sqlite"
    assert json.loads((project / "reports" / "gate.json").read_text())["promoted"] is True
    again = run(["uv", "run", "--no-sync", "dvc", "repro"], cwd=project, env=project_env())
    assert again.returncode == 0, again.stderr
    assert "Running stage" not in again.stdout, again.stdout
    serve_by_id(project)


def serve_by_id(project: Path) -> None:
    """`make serve` (FEATURE_STORE_YAML: the local SQLite store), then /predict by the first row's id equals
    /predict with that row's inputs, a batch of ids keeps their order, and an unknown id is a 404 naming it."""
    port = str(free_port())
    server = subprocess.Popen(
        ["make", "serve"],
        cwd=project,
        env={**project_env(), "PORT": port, "HOST": "127.0.0.1", "METRICS_PORT": str(free_port())},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server was not ready within 90 s"
            time.sleep(0.3)
        contract = yaml.safe_load((project / "contract.yaml").read_text())
        id_column = contract["id"]["column"]
        rows = raw_rows(project, contract, 3)
        status, by_id = post_json(f"{url}/predict", {id_column: rows[0][id_column]})
        assert status == 200, by_id
        status, full = post_json(f"{url}/predict", rows[0])
        assert status == 200, full
        assert by_id == full
        status, batch = post_json(f"{url}/predict", {id_column: [row[id_column] for row in rows]})
        assert status == 200, batch
        assert [item[id_column] for item in batch["predictions"]] == [row[id_column] for row in rows]
        unknown = "C000000"
        status, missing = post_json(f"{url}/predict", {id_column: unknown})
        assert status == 404, missing
        assert repr(unknown) in missing["detail"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def raw_rows(project: Path, contract: dict, count: int) -> list[dict]:
    """The first rows of the raw data as full records (id and inputs, typed by the contract)."""
    raw = yaml.safe_load((project / "params.yaml").read_text())["data"]["raw"]
    casts = {"int": int, "float": float, "category": str}
    with (project / raw).open(newline="", encoding="utf-8") as table:
        rows = [row for _, row in zip(range(count), csv.DictReader(table), strict=False)]
    id_column = contract["id"]["column"]
    return [
        {
            id_column: row[id_column],
            **{
                name: casts[column["dtype"]](row[name]) if row[name] != "" else None
                for name, column in contract["columns"].items()
            },
        }
        for row in rows
    ]
