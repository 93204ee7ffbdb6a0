"""`make bench-batch`: batch scoring of large tables: in memory (0.3.0's path), streamed (1, 2 workers), Spark.

A default render (binary task) is set up and trained once; the project's own sample generator then writes a
synthetic table of each size (Parquet, in 500,000-row row groups, generated with a new seed per group). Each
mode scores it in its own process, into Parquet:

- in_memory: the whole table read with pandas, checked, scored and written at once, as `python -m
  <package>.batch` did up to 0.3.0 (read_table, check_inputs, score_frame, write_table);
- streamed_1 / streamed_2: `python -m <package>.batch --workers 1|2` (record batches of params.yaml's size);
- spark_local_2: `python -m <package>.spark_batch` on Spark `local[2]` (the same scoring core in mapInArrow),
  with pyspark installed into the project's venv for the bench only (`--pyspark`, default pyspark==3.5.7; the
  project never locks it). Skipped, with a note in the results, when pyspark cannot be installed or `java` is
  missing. Its memory is the whole tree: the JVM (driver and executors, heap 1 GB) and the Python workers.

Measured: wall time, rows per second, and the peak resident memory of the process tree (the sum of the RSS of
the process and its workers, sampled every 50 ms from /proc). Results go to benchmarks/results/batch.json and a
Markdown table to benchmarks/results/batch.md. A report, not a test: nothing here asserts a target.

    uv run python benchmarks/bench_batch.py --rows 1000000,10000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "customer_churn"
RESULTS = ROOT / "benchmarks" / "results"
ROWS_PER_GROUP = 500_000
ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore"}
SPARK_MODE = "spark_local_2"

GENERATE = """
import sys
import pyarrow as pa, pyarrow.parquet as pq
from {package}.sample_data import generate
rows, path = int(sys.argv[1]), sys.argv[2]
writer = None
for group, start in enumerate(range(0, rows, {group})):
    columns = generate(min({group}, rows - start), seed=1000 + group)
    columns.pop("churned")
    table = pa.table(columns)
    writer = writer or pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
writer.close()
"""

IN_MEMORY = """
import sys
from datetime import UTC, datetime
from {package}.batch import score_frame
from {package}.contract import load_contract
from {package}.scoring.model import load_onnx_model
from {package}.tables.files import read_table, write_table
from {package}.tables.input_checks import check_inputs
source, output = sys.argv[1], sys.argv[2]
contract = load_contract()
frame = read_table(source, contract)
assert check_inputs(frame, source, contract).passed
model = load_onnx_model(__import__("pathlib").Path("models/champion"), contract)
write_table(score_frame(frame, model, contract, datetime.now(UTC).isoformat()), output)
"""


SPARK = """
import sys
from {package} import spark_batch
session = spark_batch.session("local[2]", {{"spark.ui.enabled": "false", "spark.driver.memory": "1g"}})
sys.exit(spark_batch.run(session, ["--input", sys.argv[1], "--output", sys.argv[2]]))
"""


def spark_ready(python: str, pyspark: str) -> str:
    """Install pyspark into the bench project's venv; why the Spark mode cannot run ("" when it can)."""
    if shutil.which("java") is None:
        return "no Java runtime (java is not on PATH)"
    installed = subprocess.run(
        ["uv", "pip", "install", "--quiet", "--python", python, pyspark], capture_output=True, text=True, check=False
    )
    return "" if installed.returncode == 0 else f"{pyspark} could not be installed: {installed.stderr[-500:]}"


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parent, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
        rss[int(entry.name)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total


def measure(command: list[str], cwd: Path) -> dict[str, float]:
    """Run `command`; its wall time and the peak RSS of its process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output.decode(errors='replace')[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak / 2**20, 1)}


def setup_project(workdir: Path) -> Path:
    project = workdir / "project"
    subprocess.run(
        ["copier", "copy", "--defaults", "--vcs-ref", "HEAD", "--quiet", str(ROOT), str(project)],
        check=True,
        env=ENV,
    )
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(
            command,
            cwd=project,
            check=True,
            env={
                **ENV,
                "GIT_AUTHOR_NAME": "bench",
                "GIT_AUTHOR_EMAIL": "bench@example.com",
                "GIT_COMMITTER_NAME": "bench",
                "GIT_COMMITTER_EMAIL": "bench@example.com",
            },
        )
    subprocess.run(["make", "setup", "pipeline"], cwd=project, check=True, env=ENV, stdout=subprocess.DEVNULL)
    return project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated table sizes")
    parser.add_argument("--modes", default=f"in_memory,streamed_1,streamed_2,{SPARK_MODE}")
    parser.add_argument("--project", type=Path, help="an existing trained default render (skips the set-up)")
    parser.add_argument("--pyspark", default="pyspark==3.5.7", help="the pyspark the spark mode installs")
    args = parser.parse_args()
    sizes = [int(value) for value in args.rows.split(",")]
    modes = args.modes.split(",")
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        workdir = Path(scratch)
        project = args.project or setup_project(workdir)
        python = str(project / ".venv" / "bin" / "python")
        if SPARK_MODE in modes:
            note = spark_ready(python, args.pyspark)
            if note:
                modes.remove(SPARK_MODE)
                results["notes"] = [f"{SPARK_MODE} skipped: {note}"]
                print(results["notes"][0], flush=True)
        for rows in sizes:
            table = workdir / f"input-{rows}.parquet"
            subprocess.run(
                [python, "-c", GENERATE.format(package=PACKAGE, group=ROWS_PER_GROUP), str(rows), str(table)],
                cwd=project,
                check=True,
                env=ENV,
            )
            for mode in modes:
                output = workdir / f"output-{rows}-{mode}.parquet"
                if mode == "in_memory":
                    command = [python, "-c", IN_MEMORY.format(package=PACKAGE), str(table), str(output)]
                elif mode == SPARK_MODE:
                    command = [python, "-c", SPARK.format(package=PACKAGE), str(table), str(output)]
                else:
                    workers = mode.rsplit("_", 1)[1]
                    command = [
                        python,
                        "-m",
                        f"{PACKAGE}.batch",
                        "--input",
                        str(table),
                        "--output",
                        str(output),
                        "--workers",
                        workers,
                    ]
                figures = measure(command, project)
                figures["rows_per_second"] = round(rows / figures["seconds"])
                run = {"rows": rows, "mode": mode, **figures}
                print(json.dumps(run), flush=True)
                results["runs"].append(run)  # type: ignore[union-attr]
                shutil.rmtree(output) if output.is_dir() else output.unlink(missing_ok=True)
            table.unlink()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = ["| rows | mode | seconds | rows/s | peak RSS (MB) |", "| --: | -- | --: | --: | --: |"]
    for run in results["runs"]:  # type: ignore[union-attr]
        lines.append(
            f"| {run['rows']:,} | {run['mode']} | {run['seconds']} | {run['rows_per_second']:,} | "
            f"{run['peak_rss_mb']} |"
        )
    lines += [f"\n{note}" for note in results.get("notes", [])]  # type: ignore[attr-defined]
    (RESULTS / "batch.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
