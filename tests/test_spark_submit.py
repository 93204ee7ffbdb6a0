"""`python -m <package>.spark_submit` (make spark-batch-submit) against EMR Serverless on moto.

The aws render's module submits the job the schedule submits (the request of infra/terraform/aws/spark_batch.tf,
the Terraform output `spark_batch_job`) to an EMR Serverless application on a moto server on 127.0.0.1, through a
real botocore client, waits for it and reports its state and output; a run that ends CANCELLED (`--attach`) makes
it exit 1 with the state, an application that does not exist exit 2 with the service's error. moto ends every job
run in SUCCESS at once, so the wait loop's timeout (cancel, exit 1) is checked with a run that never ends.

Not run here (no cloud): Dataproc Serverless (batches.create/get over REST with google-auth); its request is
checked statically by the gcp plan tests (infra/terraform/gcp/tests/serving_batch.tftest.hcl) and
tests/test_terraform_gcp.py.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run
from moto_server import running_moto
from terraform_hcl import RootModule

PACKAGE = "customer_churn"
REGION = "eu-west-1"
INPUT = "s3://customer-churn-data-staging/batch/input/records.csv"
OUTPUT = "s3://customer-churn-data-staging/batch/output/predictions.csv"


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[str]:
    """moto's server on a free port of 127.0.0.1; its URL."""
    with running_moto(tmp_path) as url:
        yield url


def aws_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",  # pragma: allowlist secret
        "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
    }


def terraform_request(project: Path) -> dict:
    """local.spark_job_run of the render, parsed; the keys the schedule sends."""
    module = RootModule(project / "infra" / "terraform" / "aws")
    (request,) = [block["spark_job_run"] for block in module.blocks("locals") if "spark_job_run" in block]
    return request


def job_for(project: Path, application_id: str) -> dict:
    """The Terraform output `spark_batch_job` of an environment, with this application and role."""
    request = terraform_request(project)
    driver = request["JobDriver"]["SparkSubmit"]
    return {
        "engine": "emr-serverless",
        "output": OUTPUT,
        "request": {
            **request,
            "ApplicationId": application_id,
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/customer-churn-staging-spark-job",
            "Name": "customer-churn-staging-batch",
            "JobDriver": {"SparkSubmit": {**driver, "EntryPointArguments": ["--input", INPUT, "--output", OUTPUT]}},
            "ConfigurationOverrides": {
                "MonitoringConfiguration": {
                    "S3MonitoringConfiguration": {"LogUri": "s3://customer-churn-data-staging/batch/spark-logs/"}
                }
            },
        },
    }


def submit(project: Path, job: dict, tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "spark-batch-job.json"
    path.write_text(json.dumps(job), encoding="utf-8")
    command = [sys.executable, "-m", f"{PACKAGE}.spark_submit", "--job", str(path), "--timeout", "60"]
    env = {**aws_env(url), "PYTHONPATH": str(project / "src")}
    return run([*command, "--interval", "0.2", *extra], cwd=project, timeout=120, env=env)


def test_emr_serverless_job_is_submitted_waited_for_and_reported(render, moto: str, tmp_path: Path) -> None:
    import botocore.session

    project = render(cloud_provider="aws", serving="batch")
    assert (project / "src" / PACKAGE / "spark_submit.py").is_file()
    client = botocore.session.Session().create_client(
        "emr-serverless",
        region_name=REGION,
        endpoint_url=moto,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # pragma: allowlist secret
    )
    application = client.create_application(name="customer-churn-staging-batch", releaseLabel="emr-7.5.0", type="SPARK")
    job = job_for(project, application["applicationId"])

    submitted = submit(project, job, tmp_path, moto)
    assert submitted.returncode == 0, submitted.stderr
    assert "submitted " in submitted.stdout and f"SUCCESS; predictions in {OUTPUT}" in submitted.stdout
    (listed,) = client.list_job_runs(applicationId=application["applicationId"])["jobRuns"]
    run_ = client.get_job_run(applicationId=application["applicationId"], jobRunId=listed["id"])["jobRun"]
    # The schedule's request, in the API's shape: the same entry point, arguments, role and logs.
    assert run_["jobDriver"]["sparkSubmit"]["entryPoint"] == "local:///opt/app/score.py"
    assert run_["jobDriver"]["sparkSubmit"]["entryPointArguments"] == ["--input", INPUT, "--output", OUTPUT]
    assert run_["executionRole"].endswith(":role/customer-churn-staging-spark-job")
    assert run_["name"] == "customer-churn-staging-batch-manual"

    # A run that ended without success: exit 1 with its state.
    started = client.start_job_run(
        applicationId=application["applicationId"],
        clientToken="scheduled-run",
        executionRoleArn=job["request"]["ExecutionRoleArn"],
        jobDriver={"sparkSubmit": {"entryPoint": "local:///opt/app/score.py"}},
    )
    client.cancel_job_run(applicationId=application["applicationId"], jobRunId=started["jobRunId"])
    attached = submit(project, job, tmp_path, moto, "--attach", started["jobRunId"])
    assert attached.returncode == 1, attached.stdout + attached.stderr
    assert f"{started['jobRunId']}: CANCELLED" in attached.stderr

    # The engine refuses: exit 2 with the service's own error.
    missing = submit(project, job_for(project, "00000000000000000"), tmp_path, moto)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "emr-serverless: " in missing.stderr and "ResourceNotFound" in missing.stderr


def test_the_submitted_request_is_the_schedules(render) -> None:
    """The test's job has the keys Terraform's request has, so the module sends what the schedule sends."""
    project = render(cloud_provider="aws", serving="batch")
    request = terraform_request(project)
    assert set(request) == set(job_for(project, "x")["request"])
    outputs = (project / "infra" / "terraform" / "aws" / "spark_batch.tf").read_text(encoding="utf-8")
    assert 'engine  = "emr-serverless"' in outputs and "request = local.spark_job_run" in outputs
    gcp = (render(cloud_provider="gcp", serving="batch") / "infra" / "terraform" / "gcp").joinpath("spark_batch.tf")
    assert 'engine  = "dataproc-serverless"' in gcp.read_text(encoding="utf-8")


def test_a_job_file_that_is_not_a_spark_job_is_refused(render, tmp_path: Path) -> None:
    project = render(cloud_provider="aws", serving="batch")
    path = tmp_path / "job.json"
    path.write_text("null", encoding="utf-8")
    command = [sys.executable, "-m", f"{PACKAGE}.spark_submit", "--job", str(path)]
    result = run(command, cwd=project, env={**os.environ, "PYTHONPATH": str(project / "src")})
    assert result.returncode == 2 and "is not a spark_batch_job" in result.stderr


def test_a_run_past_the_timeout_is_cancelled_and_fails(render, monkeypatch) -> None:
    """The wait loop's own logic, with a run that never leaves RUNNING and a clock that moves 10 s a look."""
    project = render(cloud_provider="aws", serving="batch")
    monkeypatch.syspath_prepend(str(project / "src"))
    spark_submit = importlib.import_module(f"{PACKAGE}.spark_submit")
    monkeypatch.setattr(spark_submit.time, "sleep", lambda _seconds: None)

    class NeverEnds:
        cancelled: list[str] = []  # noqa: RUF012 - one instance

        def state(self, run_id: str):
            return spark_submit.RunState("RUNNING")

        def cancel(self, run_id: str) -> None:
            self.cancelled.append(run_id)

    ticks = iter(range(0, 1000, 10))
    engine = NeverEnds()
    result = spark_submit.wait(engine, "run-1", timeout=30, interval=1, clock=lambda: next(ticks))
    assert engine.cancelled == ["run-1"]
    assert (result.ended, result.succeeded) == (True, False)
    assert result.reason == "still RUNNING after 30 s, cancelled"
