"""`make bench-feature-store`: /predict by id (feature_store feast) beside /predict with the full record.

One `feature_store: feast` render (cloud_provider none, binary sample) is set up and run through `make pipeline`,
then served three times under wrk with the settings of `make bench` (2 workers, 2 threads, 16 connections, same
machine, same run): the full record with no feature store, by id from the SQLite online store, and by id from a
Redis online store (a redis-server started here on 127.0.0.1, after `make materialize` into it). The body by id is
the reference record's id, which the online store holds. Results: benchmarks/results/feature_store.json and a
Markdown table in benchmarks/results/feature_store.md. A report, not a test: no target is asserted (the issue's
goal is by id within 2x of the full-record rate with Redis).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

ANSWERS = {"cloud_provider": "none", "serving": "container", "feature_store": "feast"}
STARTUP_SECONDS = 240.0


def render(project: Path) -> None:
    cmd = [sys.executable, "-m", "copier", "copy", "--quiet", "--defaults", "--vcs-ref", "HEAD"]
    for key, value in ANSWERS.items():
        cmd += ["--data", f"{key}={value}"]
    bench.sh([*cmd, str(ROOT), str(project)], ROOT)
    bench.git_commit_all(project, "Start from copier-mlops")


def first_id_record(project: Path) -> dict[str, Any]:
    """The first row of the raw data as a full record (id and inputs typed by the contract)."""
    import csv

    import yaml

    contract = yaml.safe_load((project / "contract.yaml").read_text())
    raw = yaml.safe_load((project / "params.yaml").read_text())["data"]["raw"]
    casts = {"int": int, "float": float, "category": str}
    with (project / raw).open(newline="", encoding="utf-8") as table:
        row = next(csv.DictReader(table))
    id_column = contract["id"]["column"]
    inputs = {
        name: casts[column["dtype"]](row[name]) if row[name] != "" else None
        for name, column in contract["columns"].items()
    }
    return {id_column: row[id_column], **inputs}


def load(project: Path, work: Path, env: dict[str, str], body: Any, seconds: int) -> dict[str, Any]:
    port = bench.free_port()
    with bench.server(bench.service_cmd(project), project, {**bench.service_env(port, bench.WORKERS), **env}):
        url = f"http://127.0.0.1:{port}/predict"
        # two workers each import Feast (seconds of CPU) before the first answer by id
        bench.wait_for(url, json.dumps(body).encode(), deadline_s=STARTUP_SECONDS)
        bench.wrk(url, work, body, max(2, seconds // 3))  # warm-up
        return bench.wrk(url, work, body, seconds)


def redis_server(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (bash .ci/bootstrap installs it)")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration of each measured run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-feature-store-") as scratch:
        work = Path(scratch)
        project = work / "project"
        render(project)
        bench.sh(["make", "setup"], project)
        bench.sh(["make", "pipeline"], project)
        record = first_id_record(project)
        id_column = next(iter(record))
        by_id = {id_column: record[id_column]}
        sqlite_yaml = str(project / "feature_repo" / "feature_store.yaml")
        results = {"full_record": load(project, work, {}, record, args.seconds)}
        results["by_id_sqlite"] = load(project, work, {"FEATURE_STORE_YAML": sqlite_yaml}, by_id, args.seconds)
        redis_port = bench.free_port()
        redis = redis_server(redis_port)
        try:
            redis_env = {
                "FEATURE_STORE_YAML": str(project / "feature_repo" / "feature_store.redis.yaml"),
                "REDIS_CONNECTION_STRING": f"127.0.0.1:{redis_port}",
            }
            bench.sh(
                ["uv", "run", "--no-sync", "python", "-m", f"{bench.PACKAGE}.stages.materialize"], project, redis_env
            )
            results["by_id_redis"] = load(project, work, redis_env, by_id, args.seconds)
        finally:
            redis.terminate()
            redis.wait(timeout=10)
    report = {
        "machine": bench.machine(),
        "load_average_after": bench.load_average(),
        "settings": {"workers": bench.WORKERS, "connections": bench.CONNECTIONS, "seconds": args.seconds},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "feature_store.json").write_text(json.dumps(report, indent=2) + "\n")
    full = results["full_record"]["rps"] or float("nan")
    lines = [
        "| /predict, 1 record | requests/s | p50 ms | p99 ms | errors | rate vs full record |",
        "| -- | --: | --: | --: | --: | --: |",
    ]
    for name, label in (
        ("full_record", "full record"),
        ("by_id_sqlite", "by id, SQLite"),
        ("by_id_redis", "by id, Redis"),
    ):
        run = results[name]
        lines.append(
            f"| {label} | {run['rps']:.0f} | {run['p50_ms']} | {run['p99_ms']} | {run['errors']} | "
            f"{run['rps'] / full:.2f} |"
        )
    (args.out / "feature_store.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
