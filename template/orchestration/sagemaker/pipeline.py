"""The training pipeline as a SageMaker Pipelines definition, built with the SageMaker Python SDK (2.x).

Owns the wiring and nothing else. The stages, their order and their commands come from dvc.yaml through
orchestration/pipeline.py's `describe` (no stage is listed here), and each step runs the same command as
every other orchestrator, `python orchestration/pipeline.py run <stage>`, in the project's pipeline image,
with the artefacts in the project bucket (the parameter Store) under runs/<execution id>/. Which step a stage
becomes is derived from the description:

  the stage that reads params.yaml's `model`     a TrainingStep: a training job on TrainingInstanceType
  the stage that writes reports/gate.json        a ProcessingStep whose result is a PropertyFile, then a
                                                 ConditionStep on its `gate.passed`: the stages after the
                                                 gate run only when it passed; otherwise a FailStep says so
  any other stage (validate, features, ...)      a ProcessingStep on ProcessingInstanceType

Registration stays where the project does it: the gate stage promotes the model in MLflow's registry (the
`champion` alias) or models/registry.json, so there is no SageMaker ModelPackage (a second registry that would
disagree with the first).

The run's parameters are params.yaml's: one pipeline parameter per section (its JSON; an execution overrides
any of them, and `pipeline.py run` merges the override into params.yaml), plus the image, the store, the
instance types, the volume size and the tracking URI. The role the jobs run with is fixed here (the SDK takes
no parameter for it): the Terraform output `sagemaker_job_role_arn`.

Building the definition makes no AWS call: the PipelineSession needs a region, and the jobs' output paths
are given, so the SDK never looks up a default bucket. `make sagemaker-definition` runs this in
.venv-sagemaker (the SDK is not a dependency of the project) and writes orchestration/sagemaker/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GATE_REPORT = (
    "reports/gate.json"  # what the gate stage writes (orchestration/pipeline.py reads the same file)
)
TRAINING_PARAMS = "model"  # the params.yaml section of the stage that fits the model
RESULT_DIR = "/opt/ml/processing/result"  # where a processing step leaves the stage's result for the pipeline


def load_settings() -> dict[str, Any]:
    return json.loads((HERE / "settings.json").read_text(encoding="utf-8"))


def load_description(project_dir: Path = ROOT) -> dict[str, Any]:
    """orchestration/pipeline.py's description of dvc.yaml and params.yaml (the one list of stages)."""
    source = spec_from_file_location("project_pipeline", project_dir / "orchestration" / "pipeline.py")
    if source is None or source.loader is None:
        raise FileNotFoundError(f"{project_dir}/orchestration/pipeline.py is missing")
    module = module_from_spec(source)
    source.loader.exec_module(module)
    return module.describe(project_dir / "dvc.yaml", project_dir / "params.yaml")


def step_kinds(description: dict[str, Any]) -> dict[str, str]:
    """Each stage's kind of step: training, gate or processing (module docstring)."""
    kinds = {}
    for stage in description["stages"]:
        if GATE_REPORT in stage["outs"]:
            kinds[stage["name"]] = "gate"
        elif TRAINING_PARAMS in stage["params"]:
            kinds[stage["name"]] = "training"
        else:
            kinds[stage["name"]] = "processing"
    if list(kinds.values()).count("gate") != 1 or list(kinds.values()).count("training") != 1:
        raise ValueError(
            f"dvc.yaml needs exactly one stage that writes {GATE_REPORT} and one that reads params "
            f"`{TRAINING_PARAMS}`; found {kinds}"
        )
    return kinds


def after_gate(description: dict[str, Any], gate: str) -> set[str]:
    """The stages that (transitively) need the gate's outputs: they run only when the gate passed."""
    downstream: set[str] = set()
    for stage in description["stages"]:  # in order, so upstream stages are classified first
        if any(up == gate or up in downstream for up in stage["upstream"]):
            downstream.add(stage["name"])
    return downstream


def build(
    description: dict[str, Any],
    settings: dict[str, Any],
    *,
    role_arn: str,
    image_uri: str,
    store: str,
    kms_key_arn: str,
    tracking_uri: str = "",
) -> Any:
    """The SageMaker Pipeline (SDK object) of the description."""
    import boto3
    from sagemaker.estimator import Estimator
    from sagemaker.processing import ProcessingOutput, Processor
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.parameters import ParameterInteger, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep

    # No SDK defaults file and no telemetry: the definition depends on this repository only, and building it
    # sends nothing anywhere.
    session = PipelineSession(
        boto_session=boto3.Session(region_name=settings["region"]),
        sagemaker_config={
            "SchemaVersion": "1.0",
            "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
        },
    )
    runner = description.get("runner") or {}
    sections = {name: value for name, value in description["params"].items() if isinstance(value, dict)}
    run_params = {
        name: ParameterString(name=name, default_value=json.dumps(value)) for name, value in sections.items()
    }
    image = ParameterString(name="Image", default_value=image_uri)
    store_param = ParameterString(name="Store", default_value=store)
    processing_type = ParameterString(
        name="ProcessingInstanceType", default_value=settings["processing_instance_type"]
    )
    training_type = ParameterString(
        name="TrainingInstanceType", default_value=settings["training_instance_type"]
    )
    volume_size = ParameterInteger(name="VolumeSizeGB", default_value=int(settings["volume_size_gb"]))
    tracking = ParameterString(name="MlflowTrackingUri", default_value=tracking_uri)
    parameters = [*run_params.values(), image, store_param, processing_type, training_type, volume_size]
    environment: dict[str, Any] = {}
    if (description["params"].get("tracking") or {}).get("backend") == "mlflow":
        parameters.append(tracking)
        environment["MLFLOW_TRACKING_URI"] = tracking

    # --params-json: the sections' parameters joined into one JSON object
    pieces: list[Any] = []
    for index, (name, parameter) in enumerate(run_params.items()):
        pieces += [("{" if index == 0 else ", ") + json.dumps(name) + ": ", parameter]
    params_json = Join(on="", values=[*pieces, "}"]) if pieces else "{}"
    run_folder = Join(on="/", values=[store_param, "runs", ExecutionVariables.PIPELINE_EXECUTION_ID])
    timeout = int(float(runner.get("stage_timeout_minutes", 60)) * 60)
    attempts = max(1, int(runner.get("retries", 2)) + 1)
    retry = [
        # SageMaker's own faults and capacity, never the stage's failure (the same code fails the same way)
        StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
            max_attempts=attempts,
            interval_seconds=int(float(runner.get("retry_delay_minutes", 5)) * 60),
        ),
        SageMakerJobStepRetryPolicy(
            failure_reason_types=[
                SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
            ],
            max_attempts=attempts,
            interval_seconds=int(float(runner.get("retry_delay_minutes", 5)) * 60),
        ),
    ]
    tags = [{"Key": key, "Value": value} for key, value in settings["tags"].items()]

    def command(stage: str, *extra: Any) -> list[Any]:
        return [
            "python",
            "orchestration/pipeline.py",
            "run",
            stage,
            "--store",
            store_param,
            "--run-id",
            ExecutionVariables.PIPELINE_EXECUTION_ID,
            "--params-json",
            params_json,
            *extra,
        ]

    kinds = step_kinds(description)
    gate = next(name for name, kind in kinds.items() if kind == "gate")
    conditional = after_gate(description, gate)
    steps: dict[str, Any] = {}
    gate_result = PropertyFile(name="GateResult", output_name="result", path="result.json")
    for stage in description["stages"]:
        name, kind = stage["name"], kinds[stage["name"]]
        depends = [up for up in stage["upstream"] if up != gate]
        base_job = f"{settings['pipeline_name']}-{name}"[:30].rstrip("-_")
        if kind == "training":
            estimator = Estimator(
                image_uri=image,
                role=role_arn,
                instance_count=1,
                instance_type=training_type,
                volume_size=volume_size,
                volume_kms_key=kms_key_arn,
                output_kms_key=kms_key_arn,
                max_run=timeout,
                # the stage writes its outputs to the store itself; SageMaker's model.tar.gz of /opt/ml/model
                # is empty and lands beside the run's artefacts
                output_path=Join(on="/", values=[run_folder, "sagemaker", name]),
                container_entry_point=command(name)[:4],
                container_arguments=command(name)[4:],
                environment=environment,
                base_job_name=base_job,
                tags=tags,
                sagemaker_session=session,
                disable_profiler=True,
            )
            steps[name] = TrainingStep(
                name=name, step_args=estimator.fit(), depends_on=depends or None, retry_policies=retry
            )
            continue
        processor = Processor(
            role=role_arn,
            image_uri=image,
            instance_count=1,
            instance_type=processing_type,
            volume_size_in_gb=volume_size,
            volume_kms_key=kms_key_arn,
            output_kms_key=kms_key_arn,
            max_runtime_in_seconds=timeout,
            entrypoint=command(name)[:4],
            env=environment,
            base_job_name=base_job,
            tags=tags,
            sagemaker_session=session,
        )
        arguments = command(name)[4:]
        outputs = []
        if kind == "gate":
            # a refusal is the gate's answer, not a failed job: exit 0, and the ConditionStep reads the result
            arguments += ["--result-file", f"{RESULT_DIR}/result.json", "--gate-refusal-exit", "0"]
            outputs = [
                ProcessingOutput(
                    output_name="result",
                    source=RESULT_DIR,
                    destination=Join(on="/", values=[run_folder, "sagemaker", name]),
                )
            ]
        steps[name] = ProcessingStep(
            name=name,
            step_args=processor.run(arguments=arguments, outputs=outputs or None),
            property_files=[gate_result] if kind == "gate" else None,
            depends_on=depends or None,
            retry_policies=retry,
        )
    passed = ConditionEquals(
        left=JsonGet(step_name=gate, property_file=gate_result, json_path="gate.passed"), right=True
    )
    refused = FailStep(
        name="GateRefused",
        error_message=Join(
            on="",
            values=["the quality gate refused the model: ", run_folder, "/", GATE_REPORT, " has its reasons"],
        ),
    )
    check = ConditionStep(
        name="GatePassed",
        conditions=[passed],
        if_steps=[steps[name] for name in steps if name in conditional],
        else_steps=[refused],
        depends_on=[gate],
    )
    top_level = [steps[name] for name in steps if name not in conditional]
    return Pipeline(
        name=settings["pipeline_name"],
        parameters=parameters,
        steps=[*top_level, check],
        sagemaker_session=session,
    )


def definition(pipeline: Any) -> dict[str, Any]:
    return json.loads(pipeline.definition())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=HERE / "pipeline.json")
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    parser.add_argument(
        "--role-arn",
        default=os.environ.get("SAGEMAKER_JOB_ROLE_ARN", ""),
        help="the role the jobs run with (Terraform output sagemaker_job_role_arn)",
    )
    parser.add_argument(
        "--image",
        default=os.environ.get("PIPELINE_IMAGE", ""),
        help="default of the parameter Image: the pipeline image by digest",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("PIPELINE_STORE", ""),
        help="default of the parameter Store: s3://<bucket>/<prefix> of the runs' artefacts",
    )
    parser.add_argument(
        "--kms-key-arn",
        default=os.environ.get("SAGEMAKER_KMS_KEY_ARN", ""),
        help="the project key that encrypts the jobs' volumes and outputs",
    )
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", ""),
        help="default of the parameter MlflowTrackingUri",
    )
    args = parser.parse_args(argv)
    missing = [flag for flag in ("role_arn", "image", "store", "kms_key_arn") if not getattr(args, flag)]
    if missing:
        print(
            f"error: set {', '.join('--' + m.replace('_', '-') for m in missing)} (or their environment "
            "variables: README.md, Running on SageMaker Pipelines)",
            file=sys.stderr,
        )
        return 2
    if not args.store.startswith("s3://"):
        print(f"error: --store must be an s3:// URI, not {args.store!r}", file=sys.stderr)
        return 2
    pipeline = build(
        load_description(args.project_dir.resolve()),
        load_settings(),
        role_arn=args.role_arn,
        image_uri=args.image,
        store=args.store.rstrip("/"),
        kms_key_arn=args.kms_key_arn,
        tracking_uri=args.tracking_uri,
    )
    args.output.write_text(json.dumps(definition(pipeline), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
