"""`make bench`: how fast the golden path gets a team to a served model, and how the generated service holds up.

Everything runs on this machine against 127.0.0.1, bounded in time. Results go to benchmarks/results/ (machine.json
and render_update.json once, <task>/*.json per task) and a Markdown summary to benchmarks/SUMMARY.md. Benchmarks
are reports, not tests: nothing here asserts a target.

Steps
1. render time (copier copy --defaults) and copier update time for one release step, medians of several runs
   (once: they do not depend on the task);
then for each task (copier answer `task`: binary, multiclass, regression):
2. the golden path on a warm package cache: copy -> make setup -> make pipeline -> service up -> first /predict;
3. serving under wrk (2 threads, 16 connections): the generated /predict (1 and 100 records), the same server's
   /health (the HTTP floor of the stack), and `mlflow models serve --env-manager local` of the same model;
4. cold start (process start -> /ready), resident memory under load, installed size of the serving dependencies;
5. hostile bodies, one request at a time: the server's CPU time per request and the size of its answer for bodies
   built to make validation expensive (100 records of 1,300 unknown keys, 100 empty records, one 900 KB key),
   beside a valid 100-record batch.

Every request body is the rendered project's reports/example.json (the model's reference record, valid for any
contract): as is for 1 record, {"records": [...]} of 100 copies, and {"dataframe_records": [...]} for MLflow.
The MLflow peer is what a team would deploy with MLflow instead: an mlflow.pyfunc model that loads the package's
scikit-learn model (training.artifacts.load_model) and returns its raw output (class probabilities or values)
for a DataFrame of the contract's inputs, served with the same number of workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "customer_churn"  # the package of a `copier copy --defaults` render
TASKS = ("binary", "multiclass", "regression")
TASK_SECTIONS = ("golden_path", "cold_start", "serving", "footprint", "hostile_bodies")
WORKERS = 2
CONNECTIONS = 16
BATCH_ROWS = 100
EXAMPLE_RECORD = Path("reports") / "example.json"  # written by the train stage of `make pipeline`
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore", "LOG_LEVEL": "warning"}
# The generated service needs an API key (AUTH_MODE=api_key, its default): the bench runs it with this one.
API_KEY = secrets.token_urlsafe(32)
AUTH_HEADER = {"Authorization": f"Bearer {API_KEY}"}
MAX_REQUEST_BYTES = 1_048_576  # the generated service's default MAX_REQUEST_BYTES
HOSTILE_REQUESTS = 20


def sh(cmd: list[str] | str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 900) -> float:
    """Run a command and return its wall time in seconds; raise with its output when it fails."""
    started = time.perf_counter()
    result = subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **QUIET_ENV, **(env or {})},
        shell=isinstance(cmd, str),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def git_commit_all(cwd: Path, message: str) -> None:
    env = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
    env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    sh("git init -q 2>/dev/null; git add -A && git commit -qm " + json.dumps(message), cwd, env)


def copier_copy(dst: Path, vcs_ref: str = "HEAD", src: Path = ROOT, task: str | None = None) -> float:
    cmd = [sys.executable, "-m", "copier", "copy", "--quiet", "--defaults", "--vcs-ref", vcs_ref]
    if task is not None:
        cmd += ["--data", f"task={task}"]
    return sh([*cmd, str(src), str(dst)], ROOT)


def parse_tasks(task: str, tasks: str | None) -> list[str]:
    """The tasks to benchmark: `--tasks a,b` (in that order, duplicates dropped) or else `--task`."""
    names = [name.strip() for name in (tasks.split(",") if tasks else [task]) if name.strip()]
    unknown = sorted(set(names) - set(TASKS))
    if unknown or not names:
        raise ValueError(f"unknown task(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(TASKS)}")
    return list(dict.fromkeys(names))


def request_bodies(record: dict[str, Any], rows: int = BATCH_ROWS) -> dict[str, Any]:
    """The request bodies of the load runs, all of the same record: the generated service's and MLflow's."""
    return {
        "generated_1": record,
        "generated_batch": {"records": [record] * rows},
        "mlflow_1": {"dataframe_records": [record]},
        "mlflow_batch": {"dataframe_records": [record] * rows},
    }


def hostile_bodies(record: dict[str, Any], rows: int = BATCH_ROWS) -> dict[str, bytes]:
    """Bodies under MAX_REQUEST_BYTES built to make validation expensive, and a valid batch to compare with."""
    compact = {"separators": (",", ":")}
    unknown = {f"{i:x}": 0 for i in range(1300)}  # 1,300 keys no contract has, ~10 KB per record
    return {
        "valid_100_records": json.dumps({"records": [record] * rows}, **compact).encode(),
        "unknown_keys_100x1300": json.dumps({"records": [unknown] * rows}, **compact).encode(),
        "empty_records_100": json.dumps({"records": [{}] * rows}, **compact).encode(),
        "key_of_900kb": json.dumps({**record, "k" * 900_000: 0}, **compact).encode(),
    }


def example_record(project: Path) -> dict[str, Any]:
    """The model's reference record, as `make pipeline` wrote it (a valid request for whatever contract)."""
    record = json.loads((project / EXAMPLE_RECORD).read_text())
    if not isinstance(record, dict) or not record:
        raise RuntimeError(f"{project / EXAMPLE_RECORD} is not a record: {record!r}")
    return record


# ---------------------------------------------------------------------------------------------------------------
# 1. render and update
# ---------------------------------------------------------------------------------------------------------------
def bench_render_and_update(work: Path, runs: int) -> dict[str, Any]:
    render = [copier_copy(work / f"render-{i}") for i in range(runs)]
    update = []
    previous, new = release_pair(work / "template-releases")
    for i in range(runs):
        project = work / f"update-{i}"
        copier_copy(project, vcs_ref=previous, src=work / "template-releases")
        git_commit_all(project, "render previous release")
        cmd = [sys.executable, "-m", "copier", "update", "--quiet", "--defaults", "--trust", "--vcs-ref", new]
        update.append(sh(cmd, project))
    return {
        "render_seconds": {"median": statistics.median(render), "runs": render},
        "update_seconds": {"median": statistics.median(update), "runs": update, "from": previous, "to": new},
    }


def release_pair(dst: Path) -> tuple[str, str]:
    """A repository of the template with its previous and newest releases tagged (the one tests/test_update.py uses)."""
    # the migration scripts releases.py reads import their helper (hooks/migrations/moved_files.py) by name
    sys.path[:0] = [str(ROOT / "hooks"), str(ROOT / "hooks" / "migrations")]
    from releases import build_release_repo

    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "bench")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "bench@example.com")
    return build_release_repo(dst)


# ---------------------------------------------------------------------------------------------------------------
# 2. golden path
# ---------------------------------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", **AUTH_HEADER} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def wait_for(url: str, body: bytes | None = None, deadline_s: float = 60.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < deadline_s:
        status, _ = http(url, body, timeout=1.0)
        if status == 200:
            return time.perf_counter() - started
        time.sleep(0.01)
    raise TimeoutError(f"{url} did not answer 200 within {deadline_s}s")


@contextmanager
def server(cmd: list[str], cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        cmd,
        cwd=cwd,
        env={**os.environ, **QUIET_ENV, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def service_cmd(project: Path) -> list[str]:
    return [str(project / ".venv" / "bin" / "python"), "-m", f"{PACKAGE}.serving"]


def service_env(port: int, workers: int) -> dict[str, str]:
    return {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": str(workers),
        "MODEL_DIR": "models/champion",
        "INFERENCE_LOG_SAMPLE_RATE": "0",
        "METRICS_PORT": str(free_port()),
        "API_KEYS": API_KEY,
    }


def bench_golden_path(work: Path, task: str) -> tuple[dict[str, Any], Path]:
    project = work / "golden"
    steps: dict[str, float] = {"copier_copy": copier_copy(project, task=task)}
    git_commit_all(project, "Start from copier-mlops")
    steps["make_setup"] = sh(["make", "setup"], project)
    steps["make_pipeline"] = sh(["make", "pipeline"], project)
    body = json.dumps(example_record(project)).encode()
    port = free_port()
    started = time.perf_counter()
    with server(service_cmd(project), project, service_env(port, 1)):
        steps["service_up_and_first_predict"] = wait_for(f"http://127.0.0.1:{port}/predict", body)
    steps["total"] = sum(steps.values())
    metadata = json.loads((project / "models" / "champion" / "metadata.json").read_text())
    model = {key: metadata.get(key) for key in ("task", "target", "classes", "input_columns", "feature_names")}
    return {
        "task": task,
        "model": model,
        "steps_seconds": steps,
        "elapsed_with_shutdown": time.perf_counter() - started,
    }, project


# ---------------------------------------------------------------------------------------------------------------
# 3. serving under load
# ---------------------------------------------------------------------------------------------------------------
WRK_POST = f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "{AUTH_HEADER["Authorization"]}"
wrk.body = io.open("{{body}}", "r"):read("*a")
"""
UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def parse_wrk(output: str) -> dict[str, Any]:
    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        return round(float(match.group(1)) * UNIT_SECONDS[match.group(2)] * 1000, 3) if match else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0),
    }


def wrk(url: str, work: Path, body: Any | None, seconds: int) -> dict[str, Any]:
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if body is not None:
        body_file = work / f"body-{abs(hash(json.dumps(body)))}.json"
        body_file.write_text(json.dumps(body))
        script = body_file.with_suffix(".lua")
        script.write_text(WRK_POST.format(body=body_file))
        cmd += ["-s", str(script)]
    result = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(result.stdout)


def rss_mib(root_pid: int) -> float:
    """Resident memory of a process and its children (server workers), in MiB."""
    parents: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        parents[int(status.parent.name)] = int(fields.get("PPid", "0").strip())
    pids, grown = {root_pid}, True
    while grown:  # the whole tree: a worker's pid may be listed before its parent's
        children = {pid for pid, parent in parents.items() if parent in pids}
        grown = not children <= pids
        pids |= children
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


MLFLOW_PEER_MODULE = "bench_mlflow_peer"
MLFLOW_PEER = '''"""The package's scikit-learn model as an MLflow pyfunc model (written by benchmarks/bench.py)."""

import importlib
from pathlib import Path

import mlflow.pyfunc

PACKAGE = {package!r}


class ContractModel(mlflow.pyfunc.PythonModel):
    """Raw model output (class probabilities (n, k) or values (n,)) for a DataFrame of the contract's inputs."""

    def load_context(self, context):
        contract = importlib.import_module(PACKAGE + ".contract")
        artifacts = importlib.import_module(PACKAGE + ".training.artifacts")
        self.files = importlib.import_module(PACKAGE + ".tables.files")
        self.contract = contract.load_contract(Path(context.artifacts["contract"]))
        self.model = artifacts.load_model(Path(context.artifacts["model_dir"]), self.contract)

    def predict(self, context, model_input, params=None):
        columns = self.files.input_columns_of(model_input, self.contract)
        return self.model.raw_output(self.model.features.matrix(columns))
'''
MLFLOW_SAVE = """
import json, sys
from pathlib import Path
import pandas as pd
import mlflow.pyfunc
sys.path.insert(0, {code_dir!r})
from {module} import ContractModel
record = json.loads(Path({example!r}).read_text())
mlflow.pyfunc.save_model(
    {target!r},
    python_model=ContractModel(),
    artifacts={{"model_dir": "models/champion", "contract": "contract.yaml"}},
    code_paths=[{module_file!r}],
    input_example=pd.DataFrame([record]),  # the signature: MLflow checks every request's columns and types
    pip_requirements=["mlflow"],  # served with --env-manager local: skip MLflow's requirement inference
)
"""


def export_mlflow_peer(project: Path, work: Path) -> Path:
    """The same trained model as the MLflow model a team would serve instead: a pyfunc around load_model."""
    code_dir, target = work / "mlflow-code", work / "mlflow-model"
    code_dir.mkdir(parents=True, exist_ok=True)
    module_file = code_dir / f"{MLFLOW_PEER_MODULE}.py"
    module_file.write_text(MLFLOW_PEER.format(package=PACKAGE))
    script = MLFLOW_SAVE.format(
        code_dir=str(code_dir),
        module=MLFLOW_PEER_MODULE,
        example=str(EXAMPLE_RECORD),
        target=str(target),
        module_file=str(module_file),
    )
    sh([str(project / ".venv" / "bin" / "python"), "-c", script], project)
    return target


def first_response(url: str, body: Any) -> Any:
    """One answer of a target, kept in the results to show both serve the same model."""
    status, content = http(url, json.dumps(body).encode(), timeout=30.0)
    if status != 200:
        raise RuntimeError(f"{url} answered {status}: {content[:500]!r}")
    return json.loads(content)


def bench_serving(project: Path, work: Path, seconds: int) -> dict[str, Any]:
    record = example_record(project)
    bodies = request_bodies(record)
    warm_up = min(2, seconds)
    results: dict[str, Any] = {
        "workers": WORKERS,
        "connections": CONNECTIONS,
        "duration_s": seconds,
        "batch_rows": BATCH_ROWS,
        "record": record,
    }
    responses: dict[str, Any] = {}
    port = free_port()
    with server(service_cmd(project), project, service_env(port, WORKERS)) as process:
        wait_for(f"http://127.0.0.1:{port}/ready")
        base = f"http://127.0.0.1:{port}"
        responses["generated"] = first_response(f"{base}/predict", bodies["generated_1"])
        wrk(f"{base}/predict", work, bodies["generated_1"], warm_up)  # warm-up: imports, first-call allocations
        results["generated_health"] = wrk(f"{base}/health", work, None, seconds)
        results["generated_predict_1"] = wrk(f"{base}/predict", work, bodies["generated_1"], seconds)
        results["generated_rss_mib_under_load"] = rss_mib(process.pid)
        results["generated_predict_100"] = wrk(f"{base}/predict", work, bodies["generated_batch"], seconds)

    model = export_mlflow_peer(project, work)
    port = free_port()
    mlflow_cmd = [str(project / ".venv" / "bin" / "mlflow"), "models", "serve", "-m", str(model)]
    mlflow_cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(WORKERS)]
    # mlflow execs `uvicorn` by name: the project's environment must come first on PATH
    mlflow_env = {"PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    with server(mlflow_cmd, project, mlflow_env) as process:
        wait_for(f"http://127.0.0.1:{port}/ping", deadline_s=300)
        url = f"http://127.0.0.1:{port}/invocations"
        responses["mlflow"] = first_response(url, bodies["mlflow_1"])
        wrk(url, work, bodies["mlflow_1"], warm_up)
        results["mlflow_predict_1"] = wrk(url, work, bodies["mlflow_1"], seconds)
        results["mlflow_rss_mib_under_load"] = rss_mib(process.pid)
        results["mlflow_predict_100"] = wrk(url, work, bodies["mlflow_batch"], seconds)
    results["responses_1_record"] = responses

    def ratio(a: str, b: str) -> float:  # same rows per request on both sides: requests/s ratio = rows/s ratio
        return round(results[a]["rps"] / max(results[b]["rps"], 1e-9), 2)

    results["ratios"] = {
        "predict_1_generated_over_mlflow": ratio("generated_predict_1", "mlflow_predict_1"),
        "predict_1_over_health": ratio("generated_predict_1", "generated_health"),
        "rows_per_s_100_generated_over_mlflow": ratio("generated_predict_100", "mlflow_predict_100"),
    }
    return results


# ---------------------------------------------------------------------------------------------------------------
# 4. cold start and footprint
# ---------------------------------------------------------------------------------------------------------------
def bench_cold_start(project: Path, runs: int) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        port = free_port()
        started = time.perf_counter()
        with server(service_cmd(project), project, service_env(port, 1)):
            wait_for(f"http://127.0.0.1:{port}/ready")
            times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "runs_s": times}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_hostile_bodies(project: Path) -> dict[str, Any]:
    """Per body: the status, the body and answer sizes, and the server's CPU per request (one worker, in turn)."""
    bodies = hostile_bodies(example_record(project))
    results: dict[str, Any] = {"requests_per_body": HOSTILE_REQUESTS, "max_request_bytes": MAX_REQUEST_BYTES}
    port = free_port()
    with server(service_cmd(project), project, service_env(port, 1)) as process:
        wait_for(f"http://127.0.0.1:{port}/ready")
        for name, body in bodies.items():
            http(f"http://127.0.0.1:{port}/predict", body, timeout=60.0)  # warm-up
            before = cpu_seconds(process.pid)
            for _ in range(HOSTILE_REQUESTS):
                status, answer = http(f"http://127.0.0.1:{port}/predict", body, timeout=60.0)
            results[name] = {
                "status": status,
                "body_bytes": len(body),
                "response_bytes": len(answer),
                "cpu_ms_per_request": round((cpu_seconds(process.pid) - before) * 1000 / HOSTILE_REQUESTS, 1),
            }
    return results


def directory_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def bench_serving_footprint(project: Path, work: Path) -> dict[str, Any]:
    """Install exactly what the serving image installs (project dependencies, no groups) into a fresh venv."""
    venv = work / "serving-venv"
    sh(["uv", "venv", "--quiet", str(venv)], project)
    env = {"VIRTUAL_ENV": str(venv)}
    sh(
        ["uv", "sync", "--quiet", "--locked", "--no-default-groups", "--active", "--no-install-project"],
        project,
        env,
    )
    site = next(venv.glob("lib/python*/site-packages"))
    packages = sorted(
        ((p.name, directory_mib(p)) for p in site.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")),
        key=lambda item: -item[1],
    )
    return {
        "installed_mib": round(directory_mib(site), 1),
        "largest": [[n, round(s, 1)] for n, s in packages[:8]],
    }


# ---------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem_kib = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": load_average(),
    }


def load_average() -> float:
    """1-minute load average: above ~0.5 the cores were shared with other work during the measurement."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def summary(report: dict[str, Any]) -> str:
    m, ru = report["machine"], report["render_update"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on {m['date']}: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Linux {m['kernel']}, Python {m['python']}, {m['wrk']}. Raw numbers: `benchmarks/results/` "
        "(`<task>/` per task).",
        "",
        f"Load average (1 min) before the run: {m['load_average_at_start']:.2f} "
        f"(after it: {m['load_average_at_end']:.2f}, the benchmark's own load included). The {m['cores']} cores "
        + (
            "were shared with other work during the run: the figures are noisy; ratios within the run compare best."
            if m["load_average_at_start"] > 0.5
            else "were not shared with other work."
        ),
        "wrk runs on the same cores as the servers it loads.",
        "",
        "Every request body is the rendered project's `reports/example.json` (the model's reference record): "
        f"one record, {BATCH_ROWS}-record batches of it, and the same as `dataframe_records` for MLflow. "
        "The MLflow peer is an `mlflow.pyfunc` model around the package's scikit-learn model (`load_model`, the "
        "contract's feature matrix, the raw probabilities or values) served by `mlflow models serve "
        "--env-manager local` with the same number of workers.",
        "",
        f"Render (`copier copy --defaults`): median {ru['render_seconds']['median']:.2f} s. "
        f"`copier update` {ru['update_seconds']['from']} → {ru['update_seconds']['to']}: "
        f"median {ru['update_seconds']['median']:.2f} s.",
        "",
    ]
    for task, sections in report["tasks"].items():
        lines += task_summary(task, sections)
    return "\n".join(lines)


def task_summary(task: str, sections: dict[str, Any]) -> list[str]:
    """The section of one task: the comparisons, then every load run."""
    if "error" in sections:
        return [f"## {task}", "", f"Not measured: {sections['error'].splitlines()[0]}", ""]
    g, c, s, f, h = (sections[name] for name in TASK_SECTIONS)
    model, steps, r = g["model"], g["steps_seconds"], s["ratios"]
    classes = f", classes {', '.join(map(str, model['classes']))}" if model.get("classes") else ""

    def rps(key: str, rows: int = 1) -> str:
        return f"{s[key]['rps'] * rows:.0f}"

    def row(name: str, key: str, rows: int = 1) -> str:
        run = s[key]
        cells = [name, rps(key), rps(key, rows), f"{run['p50_ms']:.2f}", f"{run['p99_ms']:.2f}"]
        return "| " + " | ".join([*cells, str(run["errors"])]) + " |"

    path = ", ".join(f"{step} {secs:.1f}" for step, secs in steps.items() if step != "total")
    return [
        f"## {task}",
        "",
        f"Model of the default `task={task}` render: target `{model['target']}`{classes}; "
        f"{len(model['input_columns'])} inputs, {len(model['feature_names'])} features. "
        f"wrk -t2 -c{s['connections']} -d{s['duration_s']}s, {s['workers']} workers, 127.0.0.1.",
        "",
        "| measure | result |",
        "| --- | --- |",
        f"| `/predict` 1 record vs `mlflow models serve` | **{r['predict_1_generated_over_mlflow']}x** "
        f"requests/s ({rps('generated_predict_1')} vs {rps('mlflow_predict_1')}) |",
        f"| `/predict` 1 record vs the same server's `/health` | {r['predict_1_over_health']}x "
        f"({rps('generated_predict_1')} vs {rps('generated_health')}) |",
        f"| {BATCH_ROWS}-record requests vs mlflow | **{r['rows_per_s_100_generated_over_mlflow']}x** rows/s "
        f"({rps('generated_predict_100', BATCH_ROWS)} vs {rps('mlflow_predict_100', BATCH_ROWS)}) |",
        f"| cold start (process start → `/ready` 200), median of {len(c['runs_s'])} | {c['median_s']:.2f} s |",
        f"| golden path: copy → setup → pipeline → first `/predict` | {steps['total']:.1f} s ({path}) |",
        f"| serving-only dependencies installed | {f['installed_mib']} MiB "
        f"(largest: {', '.join(f'{n} {size:.0f}' for n, size in f['largest'][:5])} MiB) |",
        f"| resident memory under load, {s['workers']} workers: generated vs mlflow | "
        f"{s['generated_rss_mib_under_load']:.0f} vs {s['mlflow_rss_mib_under_load']:.0f} MiB |",
        "",
        "| target | requests/s | rows/s | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- |",
        row("generated `/health` (HTTP floor)", "generated_health"),
        row("generated `/predict`, 1 record", "generated_predict_1"),
        row("`mlflow models serve`, 1 record", "mlflow_predict_1"),
        row(f"generated `/predict`, {BATCH_ROWS} records", "generated_predict_100", BATCH_ROWS),
        row(f"`mlflow models serve`, {BATCH_ROWS} records", "mlflow_predict_100", BATCH_ROWS),
        "",
        f"Hostile bodies, one at a time, {h['requests_per_body']} requests each (server CPU per request, one worker):",
        "",
        "| body | body bytes | status | response bytes | CPU ms per request |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {run['body_bytes']} | {run['status']} | {run['response_bytes']} | "
            f"{run['cpu_ms_per_request']} |"
            for name, run in h.items()
            if isinstance(run, dict)
        ),
        "",
    ]


def bench_task(work: Path, task: str, args: argparse.Namespace) -> dict[str, Any]:
    """Golden path, cold start, serving and footprint of a project rendered with `task`."""
    work.mkdir(parents=True)
    sections: dict[str, Any] = {}
    sections["golden_path"], project = bench_golden_path(work, task)
    sections["cold_start"] = bench_cold_start(project, args.runs)
    sections["serving"] = bench_serving(project, work, args.seconds)
    sections["footprint"] = bench_serving_footprint(project, work)
    sections["hostile_bodies"] = bench_hostile_bodies(project)
    return sections


def write_results(out: Path, report: dict[str, Any]) -> None:
    results = out / "results"
    results.mkdir(parents=True, exist_ok=True)
    for name in TASK_SECTIONS:  # the layout before per-task results: stale, not this run's
        (results / f"{name}.json").unlink(missing_ok=True)
    for section in ("machine", "render_update"):
        (results / f"{section}.json").write_text(json.dumps(report[section], indent=2) + "\n")
    for task, sections in report["tasks"].items():
        directory = results / task
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        for section, data in sections.items():
            name = f"{section}.json" if section != "error" else "error.txt"
            (directory / name).write_text(data if section == "error" else json.dumps(data, indent=2) + "\n")
    (out / "SUMMARY.md").write_text(summary(report))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, default="binary", help="the copier answer `task` (default binary)")
    parser.add_argument("--tasks", help="several tasks in one run, comma-separated (overrides --task)")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="repetitions for medians")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks", help="where results/ and SUMMARY.md go")
    args = parser.parse_args()
    try:
        tasks = parse_tasks(args.task, args.tasks)
    except ValueError as error:
        parser.error(str(error))
    for needed in ("wrk", "uv", "git", "make"):
        if shutil.which(needed) is None:
            print(f"{needed} is not installed: run `make bootstrap` first", file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="copier-mlops-bench-"))
    report: dict[str, Any] = {"machine": machine(), "tasks": {}}
    try:
        report["render_update"] = bench_render_and_update(work, args.runs)
        for task in tasks:
            print(f"benchmarking task={task} ...", file=sys.stderr, flush=True)
            try:
                report["tasks"][task] = bench_task(work / task, task, args)
            except Exception as error:  # report the others; the exit code says one failed
                print(f"task={task} failed: {error}", file=sys.stderr)
                report["tasks"][task] = {"error": f"{type(error).__name__}: {error}"}
    finally:
        report["machine"]["load_average_at_end"] = load_average()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}", file=sys.stderr)

    report["machine"]["tasks"] = tasks
    write_results(args.out, report)
    print(summary(report))
    return 1 if any("error" in sections for sections in report["tasks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
