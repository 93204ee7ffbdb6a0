"""The generated project works: its shipped sample data, its pipeline, its own tests and its hooks.

The slow tests install a rendered project with uv (seconds with a warm uv cache) and run its Makefile targets
as a user would after `copier copy`. Timings and model metrics are printed (`pytest -s` shows them).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_ROOT, run
from moto_server import running_moto

PACKAGE = "customer_churn"  # the default package_name
STAGES = ("validate", "features", "train", "evaluate", "gate")


def project_env() -> dict[str, str]:
    """The environment of a developer's shell: git identity, no telemetry, not inside the template's venv."""
    outside = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    env = {key: value for key, value in os.environ.items() if key not in outside}
    env.update(
        {
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "Template Test",
            "GIT_AUTHOR_EMAIL": "template-test@example.com",
            "GIT_COMMITTER_NAME": "Template Test",
            "GIT_COMMITTER_EMAIL": "template-test@example.com",
        }
    )
    return env


def step(cwd: Path, *command: str, timeout: int = 1200) -> float:
    """Run a command in the project, fail with its output if it fails; return how long it took."""
    started = time.monotonic()
    result = run(list(command), cwd=cwd, timeout=timeout, env=project_env())
    elapsed = time.monotonic() - started
    output = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"
    print(f"  {' '.join(command)}: {elapsed:.1f} s")
    return elapsed


def fresh_copy(render: Callable[..., Path], tmp_path: Path, **answers: object) -> Path:
    """A private copy of a render (renders are shared by the session), committed to a new git repository."""
    project = tmp_path / "project"
    shutil.copytree(render(**answers), project)
    step(project, "git", "init", "-q")
    step(project, "git", "add", "-A")
    step(project, "git", "commit", "-qm", "Start from copier-mlops")
    return project


SAMPLES = {
    "binary": "data/raw/customers.csv",
    "multiclass": "data/raw/customer_plans.csv",
    "regression": "data/raw/customer_revenue.csv",
}


@pytest.mark.parametrize("task", sorted(SAMPLES))
def test_shipped_sample_is_what_the_generator_writes(render: Callable[..., Path], tmp_path: Path, task: str) -> None:
    project = render(task=task)
    regenerated = tmp_path / "sample.csv"
    result = run(
        [
            "uv",
            "run",
            "--no-project",
            "--with",
            "numpy",
            "python",
            "-m",
            f"{PACKAGE}.sample_data",
            "--task",
            task,
            "--output",
            str(regenerated),
        ],
        cwd=tmp_path,
        env={**project_env(), "PYTHONPATH": str(project / "src")},
    )
    assert result.returncode == 0, result.stderr
    shipped = project / SAMPLES[task]
    assert shipped.read_bytes() == regenerated.read_bytes()
    assert shipped.read_bytes() == (TEMPLATE_ROOT / "template" / shipped.relative_to(project)).read_bytes()
    assert shipped.stat().st_size < 2_000_000
    assert len(shipped.read_text().splitlines()) == 5001


def test_without_tracking_nothing_mentions_mlflow(render: Callable[..., Path]) -> None:
    project = render(experiment_tracking="none")
    assert not list(project.rglob("*mlflow*"))
    assert "mlflow" not in (project / "pyproject.toml").read_text()
    assert "backend: none" in (project / "params.yaml").read_text()
    for source in (project / "src").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+mlflow", source.read_text(), re.MULTILINE), source


# `make setup` on a machine with Python, git and make but no uv. python3 is a stand-in on PATH: `-m pip` records
# its arguments and, unless told to fail, puts a stand-in uv (which records its own) where pip --user would; every
# other use runs the real interpreter (the Makefile asks it for the user base, PYTHONUSERBASE here).
PYTHON3_STAND_IN = """#!/bin/sh
if [ "$1 $2" = "-m pip" ]; then
  echo "pip $*" >> "$CALLS"
  [ -n "$PIP_FAILS" ] && exit 1
  mkdir -p "$PYTHONUSERBASE/bin"
  printf '#!/bin/sh\necho "uv $*" >> "$CALLS"\n' > "$PYTHONUSERBASE/bin/uv"
  chmod +x "$PYTHONUSERBASE/bin/uv"
  exit 0
fi
exec {python} "$@"
"""


@pytest.mark.parametrize("pip_works", [True, False], ids=["pip-installs-uv", "pip-cannot"])
def test_make_setup_without_uv_installs_the_locked_uv_or_says_how(
    render: Callable[..., Path], tmp_path: Path, pip_works: bool
) -> None:
    project = render()
    required = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["uv"]["required-version"]
    version = required.removeprefix(">=")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"required-version {required!r} is not `>=X.Y.Z`"
    assert tuple(map(int, version.split("."))) <= uv_version(), "the lock is made with an older uv than this one"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "python3"
    stand_in.write_text(PYTHON3_STAND_IN.format(python=shutil.which("python3", path="/usr/bin:/bin")), encoding="utf-8")
    stand_in.chmod(0o755)
    path = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
    if shutil.which("uv", path=path) or not shutil.which("make", path=path) or not shutil.which("git", path=path):
        pytest.skip(f"needs make and git but no uv on {path}")
    calls, user_base = tmp_path / "calls", tmp_path / "user-base"
    env = {**project_env(), "PATH": path, "CALLS": str(calls), "PYTHONUSERBASE": str(user_base)}
    env.pop("UV", None)  # `uv run` (which runs these tests) names itself there, and the Makefile would use it
    if not pip_works:
        env["PIP_FAILS"] = "1"

    result = run(["make", "--no-print-directory", "setup"], cwd=project, env=env)

    logged = calls.read_text(encoding="utf-8").splitlines()
    pip = f"pip -m pip install --user --quiet --disable-pip-version-check uv=={version}"
    if pip_works:
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"uv is not installed: installing uv {version}" in result.stdout
        assert logged == [pip, "uv sync --locked --all-groups", "uv run --no-sync pre-commit install"]
    else:
        assert result.returncode != 0
        assert logged == [pip], "nothing runs after uv could not be installed"
        assert f"make setup needs uv {version}, and it could not be installed with pip" in result.stderr
        assert f"https://astral.sh/uv/{version}/install.sh" in result.stderr
    assert "No such file or directory" not in result.stderr


def test_the_image_installs_the_uv_the_lock_was_made_with(render: Callable[..., Path]) -> None:
    project = render()
    required = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["uv"]["required-version"]
    pins = re.findall(r"\buv==(\S+)", (project / "Dockerfile").read_text(encoding="utf-8"))
    assert pins == [required.removeprefix(">=")], f"the Dockerfile installs uv {pins}, pyproject.toml says {required}"


def uv_version() -> tuple[int, ...]:
    output = run(["uv", "--version"], cwd=TEMPLATE_ROOT).stdout.split()
    return tuple(map(int, output[1].split(".")))


def cached_outputs(project: Path) -> list[str]:
    """The outputs of dvc.yaml that DVC keeps in its cache (not `cache: false`): data, never git's."""
    outputs = []
    for stage in yaml.safe_load((project / "dvc.yaml").read_text())["stages"].values():
        for out in stage.get("outs", []):
            path, options = (out, {}) if isinstance(out, str) else next(iter(out.items()))
            if options.get("cache", True):
                outputs.append(path)
    return outputs


def test_every_cached_pipeline_output_is_ignored_by_a_shipped_gitignore(
    render: Callable[..., Path], tmp_path: Path
) -> None:
    """Not left to DVC, which drops the entries it wrote when a stage fails (the slow rentals run of
    test_bring_your_own_data.py walks that sequence): git ignores them in a fresh render already."""
    project = tmp_path / "project"
    shutil.copytree(render(), project)
    step(project, "git", "init", "-q")
    outputs = cached_outputs(project)
    assert {"data/processed/train.parquet", "models/model.onnx", "models/champion"} <= set(outputs)

    ignored = run(["git", "check-ignore", "--verbose", *outputs], cwd=project)

    sources = dict(line.split("\t")[::-1] for line in ignored.stdout.splitlines())
    assert set(sources) == set(outputs), f"not ignored: {set(outputs) - set(sources)}"
    for path, source in sources.items():  # the .gitignore beside each output, with DVC's entry for it
        assert source.startswith(f"{Path(path).parent.as_posix()}/.gitignore:"), (path, source)
        assert source.endswith(f":/{Path(path).name}"), (path, source)


@pytest.mark.slow
def test_default_project_installs_lints_tests_and_runs_its_pipeline(
    render: Callable[..., Path], tmp_path: Path
) -> None:
    project = fresh_copy(render, tmp_path)
    timings = {"setup": step(project, "make", "setup")}
    for target in ("lint", "typecheck", "test", "pipeline"):
        timings[target] = step(project, "make", target)

    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    print(f"  model metrics: {metrics['model']}\n  baseline: {metrics['baseline']}\n  timings: {timings}")
    assert 0.75 <= metrics["model"]["roc_auc"] <= 0.9
    assert json.loads((project / "reports" / "gate.json").read_text())["promoted"] is True
    assert (project / "models" / "champion" / "model.joblib").is_file()
    assert (project / "mlruns.db").is_file()

    # Nothing changed, so nothing re-runs.
    again = run(["uv", "run", "--no-sync", "dvc", "repro"], cwd=project, env=project_env())
    assert again.returncode == 0, again.stderr
    assert "Running stage" not in again.stdout
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in again.stdout

    # A model parameter change re-runs training and what depends on it, nothing upstream.
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("threshold: 0.4 ", "threshold: 0.45 "))
    changed = run(["uv", "run", "--no-sync", "dvc", "repro"], cwd=project, env=project_env())
    assert changed.returncode == 0, changed.stderr
    assert re.findall(r"Running stage '(\w+)'", changed.stdout) == ["train", "evaluate", "gate"]

    step(project, "make", "gate", "DRY_RUN=1")
    step(project, "make", "explain")
    step(project, "make", "batch-score", "BATCH_OUTPUT_URI=data/predictions/sample.parquet")
    assert (project / "data" / "predictions" / "sample.parquet").stat().st_size > 0
    step(project, "uv", "run", "--no-sync", "pre-commit", "run", "--all-files")
    serve_and_predict(project)
    shipped_inference_log_reaches_the_bucket_and_drift_flags_it(project, tmp_path)
    import_linter_refuses_a_training_import_in_serving(project)


def import_linter_refuses_a_training_import_in_serving(project: Path) -> None:
    """The layer contracts can fail: the service importing scikit-learn breaks `make lint-imports`."""
    app = project / "src" / PACKAGE / "serving" / "app.py"
    original = app.read_text()
    app.write_text(original.replace("import gc\n", "import gc\n\nimport sklearn  # noqa: F401\n", 1))
    try:
        result = run(["make", "lint-imports"], cwd=project, env=project_env())
    finally:
        app.write_text(original)
    assert result.returncode != 0
    assert f"{PACKAGE}.serving is not allowed to import sklearn" in result.stdout, result.stdout[-2000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post_json(url: str, payload: object) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def invalid_variant(project: Path, record: dict) -> tuple[dict, str]:
    """A copy of `record` that breaks the contract, and the field the 422 must name."""
    contract = yaml.safe_load((project / "contract.yaml").read_text())
    for name, column in contract["columns"].items():
        if column["dtype"] == "category":
            return {**record, name: "not-a-category"}, name
    for name, column in contract["columns"].items():
        if column.get("max") is not None:
            return {**record, name: column["max"] + 1}, name
    return {**record, "not_an_input": 1}, "not_an_input"


def check_prediction(body: dict, task: str) -> None:
    """The response shape of /predict for `task` (scoring/outputs.py of the generated package)."""
    if task == "binary":
        assert 0.0 <= body["score"] <= 1.0
        assert "predicted_class" in body
    elif task == "multiclass":
        assert abs(sum(body["probabilities"].values()) - 1.0) < 1e-6
        assert str(body["predicted_class"]) in body["probabilities"]
    else:
        assert isinstance(body["prediction"], float)


def first_row_id(project: Path) -> tuple[str, str] | None:
    """(the contract's id column, the id of the first row of the raw data), or None without an id."""
    contract = yaml.safe_load((project / "contract.yaml").read_text())
    if not contract.get("id"):
        return None
    raw = yaml.safe_load((project / "params.yaml").read_text())["data"]["raw"]
    with (project / raw).open(newline="", encoding="utf-8") as table:
        return contract["id"]["column"], next(csv.DictReader(table))[contract["id"]["column"]]


def serve_and_predict(project: Path) -> None:
    """`make serve` on 127.0.0.1, then `make predict` and a direct POST: 200 with a prediction; bad input 422."""
    port = str(free_port())
    env = {**project_env(), "PORT": port, "HOST": "127.0.0.1"}
    server = subprocess.Popen(
        ["make", "serve"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert server.poll() is None, (
                f"the server exited:\n{server.stdout.read().decode() if server.stdout else ''}"
            )
            assert time.monotonic() < deadline, "the server was not ready within 60 s"
            time.sleep(0.2)

        metadata = json.loads((project / "models/champion/metadata.json").read_text())
        record = json.loads((project / "reports/example.json").read_text())
        status, body = post_json(f"http://127.0.0.1:{port}/predict", record)
        print(f"  /predict -> {status} {body}")
        assert status == 200
        check_prediction(body, metadata["task"])
        assert body["model_version"] == metadata["model_version"]

        keyed = first_row_id(project)
        if keyed is not None:  # a row's id is accepted, not scored, and comes back with its prediction
            column, value = keyed
            status, with_id = post_json(f"http://127.0.0.1:{port}/predict", {**record, column: value})
            assert status == 200, with_id
            assert with_id.pop(column) == value
            assert with_id == body

        broken, field = invalid_variant(project, record)
        status, body = post_json(f"http://127.0.0.1:{port}/predict", broken)
        assert status == 422, body
        assert field in json.dumps(body)

        step(project, "make", "predict", f"PORT={port}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def files_differing(project: Path, reference: Path) -> list[str]:
    """The files of `project` that `reference` lacks or holds with other bytes (relative paths, sorted)."""
    differing = []
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if path.is_file() and ".git" not in relative.parts:
            other = reference / relative
            if not other.is_file() or other.read_bytes() != path.read_bytes():
                differing.append(relative.as_posix())
    return differing


def precommit_on(project: Path, paths: list[str]) -> None:
    """Every pre-commit hook on these files (as a commit of them runs them); deleted paths are left out."""
    existing = [path for path in paths if (project / path).is_file()]
    assert existing, "no file to run the hooks on: the check would prove nothing"
    step(project, "uv", "run", "--no-sync", "pre-commit", "run", "--files", *existing)


@pytest.mark.slow
@pytest.mark.parametrize(
    "answers",
    [{"task": "multiclass"}, {"task": "regression", "experiment_tracking": "none"}],
    ids=["multiclass", "regression-without-tracking"],
)
def test_every_task_runs_the_ci_steps_and_serves(render: Callable[..., Path], tmp_path: Path, answers: dict) -> None:
    """The shipped sample of each other task through the CI workflow's steps and a served /predict; the
    regression render also runs without MLflow, which must then not even be installed.

    What the render shares byte for byte with the default render, the default project's end-to-end test has
    checked: the hooks run on the files that differ from it, and lint and typecheck only when code or
    dependencies differ (a task alone changes the contract, the sample and docs, not the package)."""
    project = fresh_copy(render, tmp_path, **answers)
    differing = files_differing(project, render())
    print(f"  {answers}: {len(differing)} files differ from the default render")
    code_differs = any(path.endswith(".py") or path in ("pyproject.toml", "uv.lock") for path in differing)
    for target in ("setup", "lint", "typecheck") if code_differs else ("setup",):
        step(project, "make", target)
    step(project, "make", "test")
    precommit_on(project, differing)
    step(project, "make", "pipeline")
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    print(f"  {answers} model metrics: {metrics['model']}\n  baseline: {metrics['baseline']}")
    assert metrics["task"] == answers["task"]
    assert json.loads((project / "reports" / "gate.json").read_text())["promoted"] is True
    serve_and_predict(project)
    if answers.get("experiment_tracking") == "none":
        assert code_differs, "a render without MLflow must differ in code from the default: lint and typecheck it"
        probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('mlflow') is not None)"
        step(project, "uv", "run", "--no-sync", "python", "-c", probe)
        assert not (project / "mlruns.db").exists()
        metadata = json.loads((project / "models" / "champion" / "metadata.json").read_text())
        assert metadata["tracking"] == {"backend": "none"}


def shifted_batches(project: Path, records: int) -> list[dict]:
    """Batches of `records` copies of the example record with every numeric input at the contract's maximum (or
    ten times the example's value): inputs the training data never looked like."""
    contract = yaml.safe_load((project / "contract.yaml").read_text())
    example = json.loads((project / "reports/example.json").read_text())
    shifted = dict(example)
    for name, column in contract["columns"].items():
        if column["dtype"] != "category" and isinstance(example.get(name), int | float):
            shifted[name] = column.get("max", example[name] * 10 + 10)
    return [{"records": [shifted] * 100} for _ in range(records // 100)]


def shipped_inference_log_reaches_the_bucket_and_drift_flags_it(project: Path, tmp_path: Path) -> None:
    """The deployed path, offline: the service samples its records, its shipper uploads the closed files to S3 (moto
    on 127.0.0.1, a real botocore client), `make drift-pull` fetches them and `make drift` flags the shift."""
    import boto3  # moto's dependency, in the template's dev environment

    with running_moto(tmp_path) as url:
        bucket, prefix = "customer-churn-data-staging", "inference/"
        aws = {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )  # pragma: allowlist secret
        s3.create_bucket(Bucket=bucket)
        port = str(free_port())
        env = {
            **project_env(),
            **aws,
            "PORT": port,
            "HOST": "127.0.0.1",
            "METRICS_PORT": str(free_port()),
            "WEB_CONCURRENCY": "2",
            "INFERENCE_LOG_DIR": str(tmp_path / "service-inference"),
            "INFERENCE_LOG_URI": f"s3://{bucket}/{prefix}",
            "INFERENCE_LOG_SAMPLE_RATE": "1",
            "INFERENCE_LOG_ROTATE_SECONDS": "1",
            "INFERENCE_LOG_SHIP_SECONDS": "1",
        }
        server = subprocess.Popen(
            ["make", "serve"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started = time.monotonic()
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "the service did not get ready"
                time.sleep(0.2)
            batches = shifted_batches(project, 300)
            for batch in batches:
                status, body = post_json(f"http://127.0.0.1:{port}/predict", batch)
                assert status == 200, body

            def shipped() -> int:
                listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
                return sum(
                    s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().count(b"\n") for item in listing
                )

            deadline = time.monotonic() + 30  # rotation (1 s) + the shipper's pass (1 s), with room for a slow runner
            while shipped() < 300:
                assert time.monotonic() < deadline, f"{shipped()} of 300 records reached the bucket within 30 s"
                time.sleep(0.5)
            print(f"  300 sampled records in s3://{bucket}/{prefix} after {time.monotonic() - started:.1f} s")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        pulled = run(
            ["make", "drift-pull", f"INFERENCE_LOG_URI=s3://{bucket}/{prefix}"],
            cwd=project,
            env={**project_env(), **aws},
        )
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        assert "copied" in pulled.stdout
        checked = run(["make", "drift"], cwd=project, env=project_env())
        report = json.loads((project / "reports" / "drift.json").read_text())
        assert checked.returncode != 0
        assert report["status"] == "drift", report["message"]
        assert report["freshness"]["newest_record_age_seconds"] < 600
        print(f"  make drift on the shipped records: {report['message']}")
