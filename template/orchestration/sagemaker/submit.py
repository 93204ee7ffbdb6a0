"""Upsert the SageMaker pipeline and start one execution (what the Retrain workflow runs for sagemaker).

Owns the hand-off to SageMaker Pipelines and nothing else: it reads the definition `make sagemaker-definition`
wrote (orchestration/sagemaker/pipeline.json), creates or updates the pipeline with it, starts an execution
with the run's parameters (params.yaml sections given by --params-json override the definition's defaults, key
by key, when the steps merge them into params.yaml), and with --wait polls the execution until it ends or the
timeout passes. The gate's decision and the evaluation's metrics come from the run's folder in the store
(reports/gate.json, reports/metrics.json under runs/<execution id>/), where the steps left them.

Its last line of output is one JSON object: runner, run_id, url, state (succeeded | failed | timed_out |
started), gate, metrics. Exit status (the same for every orchestrator's submit.py): 0 when the run reached the
gate's decision (accepted, or refused: the GateRefused step fails the execution, but that is a decision) or
was started without --wait, 1 when it failed, 3 on timeout (the execution is stopped), 2 when the inputs are
wrong.

Only botocore (a dependency of every aws project), with the caller's AWS credentials; AWS_ENDPOINT_URL is
honoured, as by every AWS SDK.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

HERE = Path(__file__).resolve().parent
FINISHED = {"Succeeded": "succeeded", "Failed": "failed", "Stopped": "failed"}


class SubmitError(RuntimeError):
    """The pipeline could not be upserted or started with what was given."""


def console_url(region: str, pipeline: str, execution_arn: str) -> str:
    execution = execution_arn.rsplit("/", 1)[-1]
    return (
        f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
        f"#/pipelines/{pipeline}/executions/{execution}"
    )


def execution_parameters(
    definition: dict[str, Any], override: dict[str, Any], extra: dict[str, str]
) -> list[dict]:
    """The parameters of this execution: params.yaml sections (JSON) and named settings, checked against the
    definition so that a misspelt section fails here and not inside a job."""
    declared = {parameter["Name"] for parameter in definition.get("Parameters", [])}
    values: dict[str, str] = {}
    for section, value in override.items():
        if section not in declared:
            raise SubmitError(
                f"--params-json names {section!r}, which is no params.yaml section of the pipeline "
                f"(its parameters: {', '.join(sorted(declared))})"
            )
        values[section] = json.dumps(value)
    for name, value in extra.items():
        if name not in declared:
            raise SubmitError(f"the pipeline has no parameter {name!r}")
        values[name] = str(value)
    return [{"Name": name, "Value": value} for name, value in values.items()]


def upsert(client: Any, name: str, definition: str, role_arn: str, tags: list[dict]) -> str:
    """Update the pipeline when it exists (found by name, not by an error code), else create it."""
    summaries = client.list_pipelines(PipelineNamePrefix=name).get("PipelineSummaries", [])
    if any(summary["PipelineName"] == name for summary in summaries):
        response = client.update_pipeline(PipelineName=name, PipelineDefinition=definition, RoleArn=role_arn)
    else:
        response = client.create_pipeline(
            PipelineName=name,
            PipelineDefinition=definition,
            RoleArn=role_arn,
            ClientRequestToken=uuid.uuid4().hex,
            Tags=tags,
        )
    return response["PipelineArn"]


def read_report(s3: Any, store: str, run_id: str, path: str) -> dict[str, Any] | None:
    bucket, _, prefix = store.removeprefix("s3://").partition("/")
    key = "/".join(part for part in (prefix.rstrip("/"), "runs", run_id, path) if part)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        return None
    return json.loads(body)


def wait(client: Any, execution_arn: str, timeout_minutes: float, poll_seconds: float) -> str:
    deadline = time.monotonic() + timeout_minutes * 60
    seen: set[tuple[str, str]] = set()
    while True:
        status = client.describe_pipeline_execution(PipelineExecutionArn=execution_arn)[
            "PipelineExecutionStatus"
        ]
        try:
            steps = client.list_pipeline_execution_steps(
                PipelineExecutionArn=execution_arn, SortOrder="Ascending"
            )
        except ClientError as error:  # the progress lines only: the execution's status decides
            print(f"  (no step list: {error.response.get('Error', {}).get('Code', error)})", flush=True)
            steps = {}
        for step in steps.get("PipelineExecutionSteps", []):
            key = (step["StepName"], step.get("StepStatus", ""))
            if key not in seen:
                seen.add(key)
                reason = f": {step['FailureReason']}" if step.get("FailureReason") else ""
                print(f"  {step['StepName']}: {step.get('StepStatus')}{reason}", flush=True)
        if status in FINISHED:
            return FINISHED[status]
        if time.monotonic() >= deadline:
            client.stop_pipeline_execution(PipelineExecutionArn=execution_arn)
            return "timed_out"
        time.sleep(poll_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--definition",
        type=Path,
        default=HERE / "pipeline.json",
        help="the definition `make sagemaker-definition` wrote",
    )
    parser.add_argument("--params-json", default="{}", help="params.yaml sections to override for this run")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another pipeline parameter for this run (e.g. TrainingInstanceType=ml.m5.2xlarge)",
    )
    parser.add_argument(
        "--role-arn",
        default=os.environ.get("SAGEMAKER_PIPELINE_ROLE_ARN", ""),
        help="the role SageMaker Pipelines runs the pipeline with (output sagemaker_pipeline_role_arn)",
    )
    parser.add_argument("--wait", action="store_true", help="poll the execution until it ends")
    parser.add_argument(
        "--timeout-minutes", type=float, default=180, help="with --wait: stop the run after this"
    )
    parser.add_argument("--poll-seconds", type=float, default=30)
    args = parser.parse_args(argv)

    settings = json.loads((HERE / "settings.json").read_text(encoding="utf-8"))
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or settings["region"]
    name = settings["pipeline_name"]
    try:
        if not args.role_arn:
            raise SubmitError(
                "set --role-arn or SAGEMAKER_PIPELINE_ROLE_ARN (Terraform output sagemaker_pipeline_role_arn)"
            )
        if not args.definition.is_file():
            raise SubmitError(f"{args.definition} is missing: run `make sagemaker-definition` first")
        text = args.definition.read_text(encoding="utf-8")
        definition = json.loads(text)
        override = json.loads(args.params_json)
        if not isinstance(override, dict):
            raise SubmitError("--params-json must be a JSON object of params.yaml sections")
        extra = dict(item.split("=", 1) for item in args.parameter if "=" in item)
        if len(extra) != len(args.parameter):
            raise SubmitError("--parameter takes NAME=VALUE")
        parameters = execution_parameters(definition, override, extra)
        defaults = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}
        store = str(extra.get("Store") or defaults.get("Store") or "")
        session = botocore.session.get_session()
        client = session.create_client("sagemaker", region_name=region)
        s3 = session.create_client("s3", region_name=region)
        tags = [{"Key": key, "Value": value} for key, value in settings["tags"].items()]
        upsert(client, name, text, args.role_arn, tags)
        execution_arn = client.start_pipeline_execution(
            PipelineName=name,
            PipelineParameters=parameters,
            PipelineExecutionDisplayName=f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"[:82],
            ClientRequestToken=uuid.uuid4().hex,
        )["PipelineExecutionArn"]
    except (SubmitError, json.JSONDecodeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: SageMaker refused the pipeline or its execution: {error}", file=sys.stderr)
        return 2

    run_id = execution_arn.rsplit("/", 1)[-1]
    url = console_url(region, name, execution_arn)
    print(f"started {execution_arn}\n  {url}", flush=True)
    state = "started"
    if args.wait:
        state = wait(client, execution_arn, args.timeout_minutes, args.poll_seconds)
    gate = read_report(s3, store, run_id, "reports/gate.json") if state != "started" else None
    metrics = read_report(s3, store, run_id, "reports/metrics.json") if state != "started" else None
    result = {
        "runner": "sagemaker",
        "run_id": run_id,
        "url": url,
        "state": state,
        "gate": {key: (gate or {}).get(key) for key in ("passed", "promoted", "candidate_version", "reasons")}
        if gate
        else {},
        "metrics": (metrics or {}).get("model") or {},
    }
    if state == "failed" and gate is not None and gate.get("passed") is False:
        # the GateRefused step fails the execution, but the run reached its decision: not a failed run
        result["state"] = state = "succeeded"
        print("the quality gate refused the model: the champion stays (result.gate.reasons)", file=sys.stderr)
    elif state == "failed":
        print(
            "error: the run failed; its failed step and reason are listed above, its logs in "
            f"CloudWatch (/aws/sagemaker/ProcessingJobs, /aws/sagemaker/TrainingJobs): {url}",
            file=sys.stderr,
        )
    elif state == "timed_out":
        print(
            f"error: the run did not finish within {args.timeout_minutes:g} minutes and was stopped: {url}",
            file=sys.stderr,
        )
    print(json.dumps(result, sort_keys=True), flush=True)
    return {"succeeded": 0, "started": 0, "failed": 1, "timed_out": 3}[state]


if __name__ == "__main__":
    sys.exit(main())
