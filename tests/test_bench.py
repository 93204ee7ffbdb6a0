"""`make bench` runs end to end (benchmarks/bench.py) and writes its results. Benchmarks are reports: no target
is asserted here, only that every measurement ran and every request was answered.

The end-to-end run covers the default task (binary): one task already installs and trains a project and serves it
twice, and three would take the test past several minutes on two cores. The helpers that make the bench generic
over the task (task selection, request bodies from the model's example record, the per-task summary) are checked
without running anything.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import TEMPLATE_ROOT, run

TASK_SECTIONS = ("golden_path", "cold_start", "serving", "footprint", "hostile_bodies")
HOSTILE_BODIES = ("valid_100_records", "unknown_keys_100x1300", "empty_records_100", "key_of_900kb")
LOAD_RUNS = (
    "generated_health",
    "generated_predict_1",
    "generated_predict_100",
    "mlflow_predict_1",
    "mlflow_predict_100",
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench", TEMPLATE_ROOT / "benchmarks" / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tasks_come_from_tasks_else_task(bench: ModuleType) -> None:
    assert bench.parse_tasks("binary", None) == ["binary"]
    assert bench.parse_tasks("binary", "regression, multiclass,regression") == ["regression", "multiclass"]
    with pytest.raises(ValueError, match="ordinal"):
        bench.parse_tasks("binary", "binary,ordinal")


def test_every_request_body_is_the_example_record(bench: ModuleType) -> None:
    record = {"x": 1.5, "colour": "red", "n": None}
    bodies = bench.request_bodies(record, rows=3)

    assert bodies["generated_1"] == record
    assert bodies["generated_batch"] == {"records": [record] * 3}
    assert bodies["mlflow_1"] == {"dataframe_records": [record]}
    assert bodies["mlflow_batch"] == {"dataframe_records": [record] * 3}


def test_hostile_bodies_fit_the_request_limit_and_break_the_contract(bench: ModuleType) -> None:
    record = {"x": 1.5, "colour": "red"}
    bodies = {name: json.loads(body) for name, body in bench.hostile_bodies(record).items()}

    assert set(bodies) == set(HOSTILE_BODIES)
    for name, body in bench.hostile_bodies(record).items():
        assert len(body) <= bench.MAX_REQUEST_BYTES, name
    assert bodies["valid_100_records"] == {"records": [record] * 100}
    unknown = bodies["unknown_keys_100x1300"]["records"]
    assert len(unknown) == 100
    assert all(len(r) == 1300 and not set(r) & set(record) for r in unknown)
    assert bodies["empty_records_100"] == {"records": [{}] * 100}
    assert max(map(len, bodies["key_of_900kb"])) == 900_000


def fake_task_sections(task: str) -> dict:
    run_result = {"rps": 100.0, "requests": 100, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0}
    serving = {name: dict(run_result) for name in LOAD_RUNS}
    serving |= {"workers": 2, "connections": 16, "duration_s": 1, "batch_rows": 100}
    serving |= {"generated_rss_mib_under_load": 200.0, "mlflow_rss_mib_under_load": 900.0}
    serving["ratios"] = {
        "predict_1_generated_over_mlflow": 10.0,
        "predict_1_over_health": 0.8,
        "rows_per_s_100_generated_over_mlflow": 5.0,
    }
    model = {"task": task, "target": "y", "classes": [] if task == "regression" else ["a", "b"]}
    model |= {"input_columns": ["x"], "feature_names": ["x"]}
    return {
        "golden_path": {"task": task, "model": model, "steps_seconds": {"copier_copy": 1.0, "total": 1.0}},
        "cold_start": {"median_s": 1.0, "runs_s": [1.0]},
        "serving": serving,
        "footprint": {"installed_mib": 100.0, "largest": [["onnxruntime", 60.0]]},
        "hostile_bodies": {
            "requests_per_body": 20,
            "max_request_bytes": 1_048_576,
            **{
                name: {"status": 422, "body_bytes": 1000, "response_bytes": 150, "cpu_ms_per_request": 2.5}
                for name in HOSTILE_BODIES
            },
        },
    }


def test_summary_has_a_section_per_task_and_writes_results_per_task(bench: ModuleType, tmp_path: Path) -> None:
    machine = {"cpu": "Test CPU", "cores": 2, "memory_gib": 4.0, "kernel": "6", "python": "3.11", "wrk": "wrk"}
    machine |= {"date": "today", "load_average_at_start": 0.1, "load_average_at_end": 1.0}
    render_update = {
        "render_seconds": {"median": 1.0, "runs": [1.0]},
        "update_seconds": {"median": 2.0, "runs": [2.0], "from": "v1", "to": "v2"},
    }
    tasks = {task: fake_task_sections(task) for task in ("binary", "regression")}
    tasks["multiclass"] = {"error": "RuntimeError: make pipeline failed\nlog"}
    report = {"machine": machine, "render_update": render_update, "tasks": tasks}

    bench.write_results(tmp_path, report)

    summary = (tmp_path / "SUMMARY.md").read_text()
    assert [line for line in summary.splitlines() if line.startswith("## ")] == [
        "## binary",
        "## regression",
        "## multiclass",
    ]
    assert summary.count("Render (`copier copy --defaults`)") == 1
    assert "**10.0x** requests/s" in summary and "Not measured: RuntimeError: make pipeline failed" in summary
    assert "| unknown_keys_100x1300 | 1000 | 422 | 150 | 2.5 |" in summary
    for task in ("binary", "regression"):
        assert sorted(p.name for p in (tmp_path / "results" / task).iterdir()) == sorted(
            f"{name}.json" for name in TASK_SECTIONS
        )
    assert (tmp_path / "results" / "multiclass" / "error.txt").is_file()
    assert json.loads((tmp_path / "results" / "machine.json").read_text())["cpu"] == "Test CPU"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bootstrap)")
def test_bench_runs_and_writes_results(tmp_path: Path) -> None:
    cmd = [sys.executable, "benchmarks/bench.py", "--task", "binary", "--seconds", "1", "--runs", "1"]
    result = run([*cmd, "--out", str(tmp_path)], TEMPLATE_ROOT, timeout=1500)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = tmp_path / "results"
    machine = json.loads((results / "machine.json").read_text())
    assert json.loads((results / "render_update.json").read_text())["render_seconds"]["median"] > 0
    task = {name: json.loads((results / "binary" / f"{name}.json").read_text()) for name in TASK_SECTIONS}
    serving = task["serving"]
    for name in LOAD_RUNS:
        assert serving[name]["rps"] > 0, name
        assert serving[name]["errors"] == 0, name
    # both targets serve the same model: the positive-class probability of the example record agrees
    responses = serving["responses_1_record"]
    assert responses["mlflow"]["predictions"][0][1] == pytest.approx(responses["generated"]["score"], abs=1e-4)
    assert task["golden_path"]["model"]["task"] == "binary"
    assert task["cold_start"]["median_s"] > 0
    assert task["footprint"]["installed_mib"] > 0
    hostile = task["hostile_bodies"]
    assert hostile["valid_100_records"]["status"] == 200
    for name in HOSTILE_BODIES[1:]:  # refused, with a bounded answer (the generated tests/test_api.py's bound)
        assert hostile[name]["status"] == 422, name
        assert hostile[name]["response_bytes"] <= 16 * 1024, name
    summary = (tmp_path / "SUMMARY.md").read_text()
    assert machine["cpu"] in summary and "## binary" in summary
