"""`make bench` runs end to end (benchmarks/bench.py) and writes its results. Benchmarks are reports: no target
is asserted here, only that every measurement ran and every request was answered.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE_ROOT, run

SECTIONS = ("machine", "golden_path", "render_update", "cold_start", "serving", "footprint")
LOAD_RUNS = (
    "generated_health",
    "generated_predict_1",
    "generated_predict_100",
    "mlflow_predict_1",
    "mlflow_predict_100",
)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bootstrap)")
def test_bench_runs_and_writes_results(tmp_path: Path) -> None:
    result = run(
        [sys.executable, "benchmarks/bench.py", "--seconds", "1", "--runs", "1", "--out", str(tmp_path)],
        TEMPLATE_ROOT,
        timeout=1500,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = {name: json.loads((tmp_path / "results" / f"{name}.json").read_text()) for name in SECTIONS}
    serving = results["serving"]
    for name in LOAD_RUNS:
        assert serving[name]["rps"] > 0, name
        assert serving[name]["errors"] == 0, name
    assert results["cold_start"]["median_s"] > 0
    assert results["footprint"]["installed_mib"] > 0
    summary = (tmp_path / "SUMMARY.md").read_text()
    assert results["machine"]["cpu"] in summary
