"""Batch scoring on Spark equals streamed batch scoring, row for row, on every task and on a team's own data.

One Spark session (`local[2]`, PySpark in a test-only environment: the render's own venv plus pyspark, which the
generated project never locks) scores the shipped samples of the three tasks and the penguins table under the
contract `make contract` drafts for it (categories and numbers with missing values), each with four rows added
that break the contract (out of range, unknown category, missing non-nullable, a word in a numeric column).
`python -m <package>.batch` scores the same files. The predictions must be the same rows in the same order
(keys equal, predictions within 1e-9), the bad rows must be in both rejects with the same reasons, and the
counts must add up to the input's rows. Then the render's own tests of the adapter run with pyspark installed
(so they run, rather than skip). The managed Spark services (EMR Serverless, Dataproc Serverless) and the Spark
Operator on a cluster cannot run here: their Terraform and manifests are checked statically (the render matrix,
tests/test_kubernetes.py). The cluster's image runs Spark 4.0: `TEST_PYSPARK=pyspark==4.0.4` runs this test on it.

Needs Java (.ci/bootstrap installs a headless JRE when `java` is missing); skipped, with that reason, without it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from byod_datasets import write_dataset
from conftest import run
from test_generated_project import SAMPLES, project_env, step

# The Spark of the managed runtimes the generated Terraform picks (EMR 7.x, Dataproc Serverless 2.2); the Spark
# Operator's image (Dockerfile.spark on serving kubernetes) is Spark 4.0.4.
PYSPARK = os.environ.get("TEST_PYSPARK", "pyspark==3.5.7")
PACKAGE = "customer_churn"
NOT_A_CATEGORY = "not-a-category"

# Each project's model, trained in one process (one import of the training stack), without experiment tracking.
TRAIN = """
import json, os, sys
from pathlib import Path
from {package}.stages import features, train

for project in json.loads(sys.argv[1]):
    os.chdir(project)
    os.environ["CONTRACT_PATH"] = str(Path(project) / "contract.yaml")
    assert features.main(["--output-dir", "data/processed"]) == 0, project
    assert train.main(["--data-dir", "data/processed", "--model-dir", "models"]) == 0, project
"""

DRIVER = """
import json, os, subprocess, sys
from pathlib import Path
from {package} import spark_batch

cases = json.loads(sys.argv[1])
spark = spark_batch.session("local[2]", {{
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.files.maxPartitionBytes": "65536",  # several partitions per sample: their order is checked too
}})
codes = {{}}
for case in cases:
    os.chdir(case["project"])
    os.environ["CONTRACT_PATH"] = str(Path(case["project"]) / "contract.yaml")
    common = ["--input", case["input"], "--model-dir", "models", "--max-rejected-fraction", "0.5",
              "--rows-per-batch", "700"]
    streamed = subprocess.run([sys.executable, "-m", "{package}.batch", *common, "--workers", "1",
                               "--output", case["streamed"]], check=False)
    codes[case["name"]] = [streamed.returncode, spark_batch.run(spark, [*common, "--output", case["spark"]])]
spark.stop()
print(json.dumps(codes))
"""


def bad_values(contract: dict) -> list[tuple[str, str, str]]:
    """(column, rule, value) of one row per kind of break the contract allows."""
    columns = contract["columns"]
    numeric = [name for name, spec in columns.items() if spec["dtype"] in ("int", "float")]
    bounded = [name for name in numeric if columns[name].get("max") is not None]
    categorical = [name for name, spec in columns.items() if spec["dtype"] == "category"]
    required = [name for name, spec in columns.items() if not spec.get("nullable", False)]
    breaks = []
    if bounded:
        breaks.append((bounded[0], "in_range", str(int(columns[bounded[0]]["max"]) + 1000)))
    if categorical:
        breaks.append((categorical[0], "allowed_categories", NOT_A_CATEGORY))
    if required:
        breaks.append((required[0], "not_nullable", ""))
    if numeric:
        breaks.append((numeric[-1], "numeric", "many"))
    return breaks


def with_bad_rows(sample: Path, contract: dict, destination: Path) -> dict[int, str]:
    """The sample with a broken copy of its first rows inserted at 3, 6, 9, ...: row position -> reason."""
    with sample.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = {}
    valid = list(rows)
    for number, (column, rule, value) in enumerate(bad_values(contract)):
        position = 3 * (number + 1)
        rows.insert(position, {**valid[number], column: value})
        expected[position] = f"{column}: {rule}"
    with destination.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return expected


def spark_csv(folder: Path) -> pd.DataFrame:
    """A Spark CSV output folder: committed (_SUCCESS), its part files in order."""
    assert (folder / "_SUCCESS").is_file(), f"{folder} was not committed"
    parts = sorted(folder.glob("part-*.csv"))
    return pd.concat([pd.read_csv(part, dtype=str, keep_default_na=False) for part in parts], ignore_index=True)


def assert_same_predictions(streamed: pd.DataFrame, spark: pd.DataFrame, contract: dict, case: str) -> None:
    assert list(spark.columns) == list(streamed.columns), case
    assert len(spark) == len(streamed), case
    timestamp = (contract.get("timestamp") or {}).get("column")
    for name in streamed.columns:
        if name == "scored_at":
            continue
        if name == timestamp:
            found, expected = (pd.to_datetime(frame[name], utc=True) for frame in (spark, streamed))
            assert found.tolist() == expected.tolist(), case
        elif name == "score" or name == "prediction" or name.startswith("probability_"):
            np.testing.assert_allclose(spark[name].astype(float), streamed[name].astype(float), rtol=0, atol=1e-9)
        else:
            assert spark[name].tolist() == streamed[name].tolist(), (case, name)


def penguins_project(source: Path, destination: Path, python: Path) -> Path:
    """A copy of the render that adopted the penguins table as README.md says (drafted contract, params)."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns(".venv", "data", "models"))
    (destination / "models").mkdir()
    table, target = write_dataset("penguins", destination / "data" / "raw")
    relative = table.relative_to(destination).as_posix()
    step(destination, str(python), "-m", f"{PACKAGE}.contract_draft", relative, "--target", target, "--force")
    params = destination / "params.yaml"
    params.write_text(re.sub(r"(?m)^  raw: .*$", f"  raw: {relative}", params.read_text()))
    return destination


@pytest.mark.slow
def test_spark_scores_like_streaming_on_every_task_and_a_teams_data(
    render: Callable[..., Path], tmp_path: Path
) -> None:
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime: `java` is not on PATH (.ci/bootstrap installs default-jre-headless)")
    started = time.monotonic()
    projects = {task: tmp_path / task for task in SAMPLES}
    for task, project in projects.items():
        shutil.copytree(render(task=task), project)
    base = projects["binary"]
    step(base, "uv", "sync", "--locked", "--quiet")
    python = base / ".venv" / "bin" / "python"
    step(base, "uv", "pip", "install", "--quiet", "--python", str(python), PYSPARK)
    projects["penguins"] = penguins_project(base, tmp_path / "penguins", python)
    samples = {**SAMPLES, "penguins": "data/raw/penguins.csv"}

    cases = []
    expected: dict[str, dict[int, str]] = {}
    contracts: dict[str, dict] = {}
    for project in projects.values():
        params = project / "params.yaml"
        params.write_text(re.sub(r"(?m)^  backend: mlflow", "  backend: none", params.read_text()))
    # The package is the same code in every render: the base venv's editable install runs each project.
    trained = run(
        [str(python), "-c", TRAIN.format(package=PACKAGE), json.dumps([str(path) for path in projects.values()])],
        cwd=tmp_path,
        env=project_env(),
    )
    assert trained.returncode == 0, trained.stderr[-4000:]
    print(f"  features and train of {len(projects)} projects: {time.monotonic() - started:.1f} s since the start")
    for name, project in projects.items():
        contracts[name] = yaml.safe_load((project / "contract.yaml").read_text())
        source = tmp_path / f"{name}-input.csv"
        expected[name] = with_bad_rows(project / samples[name], contracts[name], source)
        output = tmp_path / "out" / name
        cases.append(
            {
                "name": name,
                "project": str(project),
                "input": str(source),
                "streamed": str(output / "streamed.csv"),
                "spark": str(output / "spark.csv"),
            }
        )
    assert len(expected["penguins"]) == 4, "the penguins contract allows every kind of break"
    assert any(spec.get("nullable") for spec in contracts["penguins"]["columns"].values())

    spark_started = time.monotonic()
    driver = run(
        [str(python), "-c", DRIVER.format(package=PACKAGE), json.dumps(cases)], cwd=tmp_path, env=project_env()
    )
    assert driver.returncode == 0, driver.stderr[-6000:]
    codes = json.loads(driver.stdout.strip().splitlines()[-1])
    print(f"  spark local[2], {len(cases)} inputs, one session: {time.monotonic() - spark_started:.1f} s")

    for case in cases:
        name = case["name"]
        assert codes[name] == [0, 0], (name, driver.stderr[-4000:])
        streamed = pd.read_csv(case["streamed"], dtype=str, keep_default_na=False)
        spark = spark_csv(Path(case["spark"]))
        assert_same_predictions(streamed, spark, contracts[name], name)

        spark_rejects = spark_csv(Path(case["spark"].replace(".csv", ".rejects.csv")))
        streamed_rejects = pd.read_csv(case["streamed"].replace(".csv", ".rejects.csv"), dtype=str)
        reasons = sorted(expected[name].values())
        assert sorted(spark_rejects["reasons"]) == sorted(streamed_rejects["reasons"]) == reasons, name
        assert streamed_rejects["row_number"].astype(int).tolist() == sorted(expected[name])

        report = json.loads(Path(f"{case['spark']}.validation.json").read_text())
        rows = len(pd.read_csv(case["input"], dtype=str))
        assert (report["rows"], report["scored_rows"], report["rejected_rows"]) == (
            rows,
            len(spark),
            len(expected[name]),
        )
        assert report["scored_rows"] + report["rejected_rows"] == rows
        assert {(failure["column"], failure["rule"]) for failure in report["failures"]} == {
            tuple(reason.split(": ")) for reason in expected[name].values()
        }

    # the render's own tests of the adapter, with pyspark installed: they run instead of skipping
    tests = run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/test_spark_batch.py"],
        cwd=base,
        env=project_env(),
        timeout=900,
    )
    assert tests.returncode == 0 and "skipped" not in tests.stdout, tests.stdout[-4000:]
    print(f"  test_spark_batch: {time.monotonic() - started:.1f} s in all")
