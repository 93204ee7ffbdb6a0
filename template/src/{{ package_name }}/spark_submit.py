"""Submit the batch-scoring Spark job to the deployed engine and wait: `python -m <package>.spark_submit`.

The manual path next to the schedule (`make spark-batch-submit ENV=<env>`): it sends the request the
schedule sends (the environment's Terraform output `spark_batch_job`, or the Spark application's own schedule
on the cluster), so a run by hand and a scheduled run are the same job. It owns only the engines' submission
APIs; what the job does is `python -m <package>.spark_batch`, in the job's image.

- `emr-serverless`: StartJobRun on the application, then GetJobRun (botocore, the caller's AWS credentials).
- `dataproc-serverless`: batches.create, then batches.get (google-auth's AuthorizedSession, the caller's
  Application Default Credentials).
- `spark-operator` (serving kubernetes): a SparkApplication made from the ScheduledSparkApplication's own
  template (deploy/kubernetes/components/spark), created and watched with kubectl (`$KUBECTL`, the caller's
  cluster credentials: make k8s-credentials).

It waits until the run ends or `--timeout` seconds pass (then it cancels the run). Exit 0: the run succeeded;
1: it failed (the engine's reason is printed) or timed out; 2: the engine refused a request or could not be
reached. `--attach <run id>` waits for a run that already exists (a scheduled one) instead of submitting one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

ENGINES = ("emr-serverless", "dataproc-serverless", "spark-operator")


@dataclass(frozen=True)
class RunState:
    """Where a run is: the engine's own state name, whether it has ended, and why it failed."""

    state: str
    ended: bool = False
    succeeded: bool = False
    reason: str = ""

    @classmethod
    def of(cls, state: str, outcomes: dict[str, bool], reason: str) -> RunState:
        """`state` of an engine whose end states are `outcomes` (state -> succeeded)."""
        return cls(state, state in outcomes, outcomes.get(state, False), reason)


class Engine(Protocol):
    def submit(self) -> str: ...
    def state(self, run_id: str) -> RunState: ...
    def cancel(self, run_id: str) -> None: ...


class EngineError(RuntimeError):
    """The engine refused a request, or could not be reached."""


def _camel(value: Any) -> Any:
    """The schedule's PascalCase request (EventBridge Scheduler's universal target) in the API's camelCase."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


class EmrServerless:
    """A job run of the EMR Serverless application (infra/terraform/aws/spark_batch.tf)."""

    ENDED: ClassVar[dict[str, bool]] = {"SUCCESS": True, "FAILED": False, "CANCELLED": False}

    def __init__(self, job: dict[str, Any]) -> None:
        import botocore.session  # only the aws render has botocore

        self.request = _camel(job["request"])
        self.application_id = self.request["applicationId"]
        self.client = botocore.session.get_session().create_client("emr-serverless")
        self.errors = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return dict(getattr(self.client, operation)(**kwargs))
        except self.errors as error:
            raise EngineError(str(error)) from error

    def submit(self) -> str:
        # the schedule's placeholder execution id becomes this submission's own idempotency token
        request = {**self.request, "clientToken": str(uuid.uuid4()), "name": f"{self.request['name']}-manual"}
        return str(self._call("start_job_run", **request)["jobRunId"])

    def state(self, run_id: str) -> RunState:
        run = self._call("get_job_run", applicationId=self.application_id, jobRunId=run_id)["jobRun"]
        state = str(run["state"])
        return RunState.of(state, self.ENDED, str(run.get("stateDetails") or ""))

    def cancel(self, run_id: str) -> None:
        self._call("cancel_job_run", applicationId=self.application_id, jobRunId=run_id)


class DataprocServerless:
    """A Dataproc Serverless batch (infra/terraform/gcp/spark_batch.tf), through the REST API."""

    API = "https://dataproc.googleapis.com/v1"
    ENDED: ClassVar[dict[str, bool]] = {"SUCCEEDED": True, "FAILED": False, "CANCELLED": False}

    def __init__(self, job: dict[str, Any]) -> None:
        import google.auth  # only the gcp render has google-auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        self.session = AuthorizedSession(credentials)
        self.parent = str(job["parent"])
        self.request = job["request"]

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self.session.request(method, url, timeout=60, **kwargs)
        if response.status_code >= 400:
            raise EngineError(f"{method} {url}: HTTP {response.status_code} {response.text[:2000]}")
        return dict(response.json())

    def submit(self) -> str:
        # a batch id of our own: a retried request (same requestId) never starts a second batch
        batch_id = f"manual-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        params = {"batchId": batch_id, "requestId": batch_id}
        self._call("POST", f"{self.API}/{self.parent}/batches", params=params, json=self.request)
        return batch_id

    def state(self, run_id: str) -> RunState:
        batch = self._call("GET", f"{self.API}/{self.parent}/batches/{run_id}")
        state = str(batch.get("state", "PENDING"))
        return RunState.of(state, self.ENDED, str(batch.get("stateMessage", "")))

    def cancel(self, run_id: str) -> None:
        batch = self._call("GET", f"{self.API}/{self.parent}/batches/{run_id}")
        self._call("POST", f"{self.API}/{batch['operation']}:cancel")


class SparkOperator:
    """A SparkApplication of the cluster's Spark Operator, from its ScheduledSparkApplication's template."""

    ENDED: ClassVar[dict[str, bool]] = {"COMPLETED": True, "FAILED": False, "SUBMISSION_FAILED": False}

    def __init__(self, job: dict[str, Any]) -> None:
        self.kubectl = os.environ.get("KUBECTL") or "kubectl"
        self.namespace = str(job["namespace"])
        self.schedule = str(job["schedule"])

    def _kubectl(self, *args: str, stdin: str | None = None) -> str:
        command = [self.kubectl, "--namespace", self.namespace, *args]
        try:
            result = subprocess.run(  # noqa: S603 - kubectl with a fixed argument list, no shell
                command, input=stdin, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EngineError(f"{' '.join(command)}: {error}") from error
        if result.returncode != 0:
            raise EngineError(f"{' '.join(command)}: {result.stderr.strip()[:2000]}")
        return result.stdout

    def _get(self, kind: str, name: str) -> dict[str, Any]:
        try:
            return dict(json.loads(self._kubectl("get", kind, name, "--output", "json")))
        except ValueError as error:
            raise EngineError(f"kubectl get {kind} {name}: not JSON ({error})") from error

    def submit(self) -> str:
        scheduled = self._get("scheduledsparkapplication", self.schedule)
        name = f"{self.schedule}-manual-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        application = {
            "apiVersion": scheduled["apiVersion"],
            "kind": "SparkApplication",
            "metadata": {"name": name, "labels": scheduled["metadata"].get("labels", {})},
            "spec": scheduled["spec"]["template"],
        }
        self._kubectl("create", "--filename", "-", stdin=json.dumps(application))
        return name

    def state(self, run_id: str) -> RunState:
        application = self._get("sparkapplication", run_id).get("status", {}).get("applicationState", {})
        state = str(application.get("state") or "NEW")
        return RunState.of(state, self.ENDED, str(application.get("errorMessage", "")))

    def cancel(self, run_id: str) -> None:
        self._kubectl("delete", "sparkapplication", run_id, "--wait=false")


def engine_for(job: dict[str, Any]) -> Engine:
    engines: dict[str, Callable[[dict[str, Any]], Engine]] = {
        "emr-serverless": EmrServerless,
        "dataproc-serverless": DataprocServerless,
        "spark-operator": SparkOperator,
    }
    return engines[job["engine"]](job)


def wait(
    engine: Engine, run_id: str, timeout: float, interval: float, clock: Callable[[], float] = time.monotonic
) -> RunState:
    """Poll until the run ends; past `timeout` seconds, cancel it and say so."""
    deadline = clock() + timeout
    last = ""
    while True:
        current = engine.state(run_id)
        if current.state != last:
            print(f"{run_id}: {current.state}", flush=True)
            last = current.state
        if current.ended:
            return current
        if clock() >= deadline:
            engine.cancel(run_id)
            late = f"still {current.state} after {timeout:.0f} s, cancelled"
            return RunState(current.state, ended=True, succeeded=False, reason=late)
        time.sleep(interval)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="spark_submit", description=__doc__.splitlines()[0])
    parser.add_argument("--job", type=Path, required=True, help="JSON of Terraform's spark_batch_job output")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait, then cancel the run")
    parser.add_argument("--interval", type=float, default=15, help="seconds between two looks at the run")
    parser.add_argument("--attach", metavar="RUN_ID", help="wait for this run instead of submitting one")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        job = json.loads(args.job.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"cannot read the job {args.job}: {error}", file=sys.stderr)
        return 2
    if not isinstance(job, dict) or job.get("engine") not in ENGINES:
        print(f"{args.job} is not a spark_batch_job (engine one of {', '.join(ENGINES)})", file=sys.stderr)
        return 2
    try:
        engine = engine_for(job)
        run_id = args.attach or engine.submit()
        if not args.attach:
            print(f"submitted {run_id} to {job['engine']}", flush=True)
        result = wait(engine, run_id, args.timeout, args.interval)
    except EngineError as error:
        print(f"{job['engine']}: {error}", file=sys.stderr)
        return 2
    output = job.get("output", "the job's --output")
    if result.succeeded:
        print(f"{run_id}: {result.state}; predictions in {output} (report: {output}.validation.json)")
        return 0
    reason = result.reason or "no reason given"
    print(f"{run_id}: {result.state}: {reason}; see {output}.validation.json", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
