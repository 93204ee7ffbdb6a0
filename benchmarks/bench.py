"""`make bench`: how fast the golden path gets a team to a served model, and how the generated service holds up.

Everything runs on this machine against 127.0.0.1, bounded in time. Results go to benchmarks/results/*.json and a
Markdown summary to benchmarks/SUMMARY.md. Benchmarks are reports, not tests: nothing here asserts a target.

Steps
1. render time (copier copy --defaults) and copier update time for one release step, medians of several runs;
2. the golden path on a warm package cache: copy -> make setup -> make pipeline -> service up -> first /predict;
3. serving under wrk (2 threads, 16 connections): the generated /predict (1 and 100 records), the same server's
   /health (the HTTP floor of the stack), and `mlflow models serve --env-manager local` of the same model;
4. cold start (process start -> /ready), resident memory under load, installed size of the serving dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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
PACKAGE = "customer_churn"
WORKERS = 2
CONNECTIONS = 16
SAMPLE_RECORD = {
    "tenure_months": 14,
    "monthly_charges": 79.5,
    "total_charges": 1100.0,
    "support_tickets": 3,
    "contract_type": "month_to_month",
    "payment_method": "card",
    "plan": "standard",
}
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore", "LOG_LEVEL": "warning"}


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


def copier_copy(dst: Path, vcs_ref: str = "HEAD", src: Path = ROOT) -> float:
    cmd = [sys.executable, "-m", "copier", "copy", "--quiet", "--defaults", "--vcs-ref", vcs_ref]
    return sh([*cmd, str(src), str(dst)], ROOT)


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
    headers = {"Content-Type": "application/json"} if body is not None else {}
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
    }


def bench_golden_path(work: Path) -> tuple[dict[str, Any], Path]:
    project = work / "golden"
    steps: dict[str, float] = {"copier_copy": copier_copy(project)}
    git_commit_all(project, "Start from copier-mlops")
    steps["make_setup"] = sh(["make", "setup"], project)
    steps["make_pipeline"] = sh(["make", "pipeline"], project)
    port = free_port()
    started = time.perf_counter()
    with server(service_cmd(project), project, service_env(port, 1)):
        steps["service_up_and_first_predict"] = wait_for(
            f"http://127.0.0.1:{port}/predict", json.dumps(SAMPLE_RECORD).encode()
        )
    steps["total"] = sum(steps.values())
    return {"steps_seconds": steps, "elapsed_with_shutdown": time.perf_counter() - started}, project


# ---------------------------------------------------------------------------------------------------------------
# 3. serving under load
# ---------------------------------------------------------------------------------------------------------------
WRK_POST = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}", "r"):read("*a")
"""
UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def parse_wrk(output: str) -> dict[str, Any]:
    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        return float(match.group(1)) * UNIT_SECONDS[match.group(2)] * 1000 if match else float("nan")

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
    pids = {root_pid}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip()) in pids:
            pids.add(int(status.parent.name))
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def export_mlflow_peer(project: Path, work: Path) -> Path:
    """The same trained model as an MLflow model a user would serve instead: features + estimator in one pipeline."""
    target = work / "mlflow-model"
    script = f"""
import joblib, mlflow.sklearn
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from {PACKAGE}.features import build_matrix
estimator = joblib.load("models/champion/model.joblib")
pipeline = make_pipeline(FunctionTransformer(build_matrix), estimator)
mlflow.sklearn.save_model(
    pipeline,
    {str(target)!r},
    pyfunc_predict_fn="predict_proba",  # probabilities, as the generated service returns
    skops_trusted_types=["{PACKAGE}.features.build_matrix"],  # MLflow 3 serialises with skops
)
"""
    sh([str(project / ".venv" / "bin" / "python"), "-c", script], project)
    return target


def bench_serving(project: Path, work: Path, seconds: int) -> dict[str, Any]:
    single, batch = SAMPLE_RECORD, {"records": [SAMPLE_RECORD] * 100}
    results: dict[str, Any] = {"workers": WORKERS, "connections": CONNECTIONS, "duration_s": seconds}
    port = free_port()
    with server(service_cmd(project), project, service_env(port, WORKERS)) as process:
        wait_for(f"http://127.0.0.1:{port}/ready")
        base = f"http://127.0.0.1:{port}"
        wrk(f"{base}/predict", work, single, 2)  # warm-up: imports, first-call allocations
        results["generated_health"] = wrk(f"{base}/health", work, None, seconds)
        results["generated_predict_1"] = wrk(f"{base}/predict", work, single, seconds)
        results["generated_rss_mib_under_load"] = rss_mib(process.pid)
        results["generated_predict_100"] = wrk(f"{base}/predict", work, batch, seconds)

    model = export_mlflow_peer(project, work)
    port = free_port()
    mlflow_cmd = [str(project / ".venv" / "bin" / "mlflow"), "models", "serve", "-m", str(model)]
    mlflow_cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(WORKERS)]
    # mlflow execs `uvicorn` by name: the project's environment must come first on PATH
    mlflow_env = {"PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    with server(mlflow_cmd, project, mlflow_env):
        wait_for(f"http://127.0.0.1:{port}/ping", deadline_s=120)
        url = f"http://127.0.0.1:{port}/invocations"
        wrk(url, work, {"dataframe_records": [single]}, 2)
        results["mlflow_predict_1"] = wrk(url, work, {"dataframe_records": [single]}, seconds)
        results["mlflow_predict_100"] = wrk(url, work, {"dataframe_records": [single] * 100}, seconds)

    def ratio(a: str, b: str, rows: int = 1) -> float:
        return round(results[a]["rps"] * rows / max(results[b]["rps"] * rows, 1e-9), 2)

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
    m, s = report["machine"], report["serving"]
    ru, g, c, f = report["render_update"], report["golden_path"], report["cold_start"], report["footprint"]

    def row(name: str, key: str, rows: int = 1) -> str:
        r = s[key]
        cells = [name, f"{r['rps']:.0f}", f"{r['rps'] * rows:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}"]
        return "| " + " | ".join([*cells, str(r["errors"])]) + " |"

    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on {m['date']}: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Linux {m['kernel']}, Python {m['python']}, {m['wrk']}. Raw numbers: `benchmarks/results/`.",
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
        "## Golden path (warm package cache)",
        "",
        "| step | seconds |",
        "| --- | --- |",
        *(f"| {step} | {secs:.1f} |" for step, secs in g["steps_seconds"].items()),
        "",
        f"Render (`copier copy --defaults`): median {ru['render_seconds']['median']:.2f} s. "
        f"`copier update` {ru['update_seconds']['from']} → {ru['update_seconds']['to']}: "
        f"median {ru['update_seconds']['median']:.2f} s.",
        "",
        f"## Serving (wrk -t2 -c{s['connections']} -d{s['duration_s']}s, {s['workers']} workers, 127.0.0.1)",
        "",
        "| target | requests/s | rows/s | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- |",
        row("generated `/health` (HTTP floor)", "generated_health"),
        row("generated `/predict`, 1 record", "generated_predict_1"),
        row("`mlflow models serve`, 1 record", "mlflow_predict_1"),
        row("generated `/predict`, 100 records", "generated_predict_100", 100),
        row("`mlflow models serve`, 100 records", "mlflow_predict_100", 100),
        "",
        f"- `/predict` (1 record) vs mlflow: **{s['ratios']['predict_1_generated_over_mlflow']}x** requests/s",
        f"- `/predict` (1 record) vs the same server's `/health`: **{s['ratios']['predict_1_over_health']}x**",
        f"- 100-record requests vs mlflow: **{s['ratios']['rows_per_s_100_generated_over_mlflow']}x** rows/s",
        f"- resident memory of the generated service under load ({s['workers']} workers): "
        f"{s['generated_rss_mib_under_load']:.0f} MiB",
        "",
        "## Footprint",
        "",
        f"- cold start (process start → `/ready` 200), median of {len(c['runs_s'])}: {c['median_s']:.2f} s",
        f"- serving-only dependencies installed: {f['installed_mib']} MiB "
        f"(largest: {', '.join(f'{n} {s_:.0f}' for n, s_ in f['largest'][:5])} MiB)",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="repetitions for medians")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks", help="where results/*.json and SUMMARY.md go")
    args = parser.parse_args()
    for needed in ("wrk", "uv", "git", "make"):
        if shutil.which(needed) is None:
            print(f"{needed} is not installed: run `make bootstrap` first", file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="copier-mlops-bench-"))
    report: dict[str, Any] = {"machine": machine()}
    try:
        report["golden_path"], project = bench_golden_path(work)
        report["render_update"] = bench_render_and_update(work, args.runs)
        report["cold_start"] = bench_cold_start(project, args.runs)
        report["serving"] = bench_serving(project, work, args.seconds)
        report["footprint"] = bench_serving_footprint(project, work)
    finally:
        report["machine"]["load_average_at_end"] = load_average()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    results = args.out / "results"
    results.mkdir(parents=True, exist_ok=True)
    for section, data in report.items():
        (results / f"{section}.json").write_text(json.dumps(data, indent=2) + "\n")
    (args.out / "SUMMARY.md").write_text(summary(report))
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
