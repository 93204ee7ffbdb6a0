"""orchestrator sagemaker: the SageMaker Pipelines definition follows dvc.yaml, and submit.py upserts and starts it.

The SageMaker Python SDK never enters the template's or the project's dependencies: the tests install it (and moto's
server) once into a venv under the user's cache directory, keyed by the pins below, and run the generator and
submit.py in that interpreter as subprocesses, as `make sagemaker-definition` runs them in .venv-sagemaker.

- The definition is built offline: dummy credentials, every AWS endpoint pointed at a closed port of 127.0.0.1 (an
  AWS call would fail the build), and its structure is asserted against `orchestration/pipeline.py describe`:
  steps in dvc.yaml's order, step types, image, role, the gate's condition, the parameters.
- A stage added to dvc.yaml appears in the regenerated definition (after the gate: inside the condition).
- submit.py runs against moto's server on 127.0.0.1: CreatePipeline / UpdatePipeline, StartPipelineExecution with the
  run's parameters, DescribePipelineExecution. moto runs no step (an execution is "Succeeded" at once, with no
  gate or metrics in the store) and has no ListPipelineExecutionSteps (a 500, which submit.py reports as "no step
  list"); what the steps do is the stage runner's, tested with the other orchestrators.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from conftest import run
from moto_server import running_moto
from tool_venvs import tool_venv

SDK_PINS = ("sagemaker==2.257.7", "moto[server]==5.2.6")
SDK_PYTHON = "3.11"
ANSWERS = {"cloud_provider": "aws", "orchestrator": "sagemaker", "tracking_server": "managed"}
ROLE = "arn:aws:iam::123456789012:role/customer-churn-staging-sagemaker-job"
PIPELINE_ROLE = "arn:aws:iam::123456789012:role/customer-churn-staging-sagemaker-pipeline"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/customer-churn-pipeline@sha256:" + "ab" * 32
STORE = "s3://customer-churn-data-staging/pipeline"
KMS = "arn:aws:kms:us-east-1:123456789012:key/0f0f0f0f-0000-4000-8000-000000000000"
TRACKING = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/customer-churn-staging-mlflow"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def offline_env(endpoint: str) -> dict[str, str]:
    """Dummy credentials and one endpoint for every AWS service: nothing of the machine's AWS setup is used."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            "NO_PROXY": "127.0.0.1",
        }
    )
    return env


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """The SageMaker Python SDK and moto's server, installed once per cache (never in a lock file)."""
    return tool_venv("sagemaker", SDK_PYTHON, SDK_PINS) / "bin" / "python"


def generate(python: Path, project: Path, **extra: str) -> dict:
    """`make sagemaker-definition`'s command, offline; the definition it wrote."""
    output = project / "orchestration" / "sagemaker" / "pipeline.json"
    output.unlink(missing_ok=True)
    started = time.monotonic()
    result = run(
        [
            str(python),
            "orchestration/sagemaker/pipeline.py",
            "--role-arn",
            ROLE,
            "--image",
            IMAGE,
            "--store",
            STORE,
            "--kms-key-arn",
            KMS,
            "--tracking-uri",
            TRACKING,
        ],
        cwd=project,
        env=offline_env(f"http://127.0.0.1:{_closed_port()}"),
        timeout=300,
    )
    assert result.returncode == 0, f"the definition could not be built offline:\n{result.stdout}\n{result.stderr}"
    print(f"  definition built in {time.monotonic() - started:.1f} s")
    return json.loads(output.read_text(encoding="utf-8"))


def describe(python: Path, project: Path) -> dict:
    result = run([str(python), "orchestration/pipeline.py", "describe"], cwd=project)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def project(render: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("sagemaker") / "project"
    shutil.copytree(render(**ANSWERS), copy)
    return copy


@pytest.fixture(scope="module")
def built(project: Path, sdk_python: Path) -> tuple[dict, dict]:
    return generate(sdk_python, project), describe(sdk_python, project)


def _parameter(definition: dict, name: str) -> dict:
    return next(p for p in definition["Parameters"] if p["Name"] == name)


def test_steps_follow_dvc_yaml(built: tuple[dict, dict], project: Path) -> None:
    definition, description = built
    stages = [stage["name"] for stage in description["stages"]]
    assert stages == list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])
    steps = definition["Steps"]
    # every stage before and including the gate at the top level, in dvc.yaml's order, then the gate's condition
    assert [step["Name"] for step in steps] == [*stages, "GatePassed"]
    kinds = {step["Name"]: step["Type"] for step in steps}
    assert kinds == {**dict.fromkeys(stages, "Processing"), "train": "Training", "GatePassed": "Condition"}
    upstream = {stage["name"]: set(stage["upstream"]) for stage in description["stages"]}
    for step in steps[:-1]:
        assert set(step.get("DependsOn") or []) == upstream[step["Name"]], step["Name"]


def test_every_job_runs_the_stage_runner_in_the_pipeline_image(built: tuple[dict, dict]) -> None:
    definition, _ = built
    assert _parameter(definition, "Image")["DefaultValue"] == IMAGE
    assert _parameter(definition, "Store")["DefaultValue"] == STORE
    for step in definition["Steps"][:-1]:
        arguments, name = step["Arguments"], step["Name"]
        assert arguments["RoleArn"] == ROLE, name
        assert arguments["Environment"]["MLFLOW_TRACKING_URI"] == {"Get": "Parameters.MlflowTrackingUri"}
        if step["Type"] == "Training":
            spec = arguments["AlgorithmSpecification"]
            image, entrypoint, args = spec["TrainingImage"], spec["ContainerEntrypoint"], spec["ContainerArguments"]
            assert arguments["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
            assert arguments["ResourceConfig"]["VolumeKmsKeyId"] == KMS
        else:
            spec = arguments["AppSpecification"]
            image, entrypoint, args = spec["ImageUri"], spec["ContainerEntrypoint"], spec["ContainerArguments"]
            cluster = arguments["ProcessingResources"]["ClusterConfig"]
            assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
            assert cluster["VolumeKmsKeyId"] == KMS
        assert image == {"Get": "Parameters.Image"}, name
        assert entrypoint == ["python", "orchestration/pipeline.py", "run", name]
        assert args[:4] == [
            "--store",
            {"Get": "Parameters.Store"},
            "--run-id",
            {"Get": "Execution.PipelineExecutionId"},
        ]
        assert args[4] == "--params-json"


def test_the_gate_decides_through_its_result_file(built: tuple[dict, dict]) -> None:
    definition, _ = built
    gate = next(step for step in definition["Steps"] if step["Name"] == "gate")
    args = gate["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert args[-4:] == ["--result-file", "/opt/ml/processing/result/result.json", "--gate-refusal-exit", "0"]
    assert gate["PropertyFiles"] == [
        {"PropertyFileName": "GateResult", "OutputName": "result", "FilePath": "result.json"}
    ]
    (output,) = gate["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "result" and output["S3Output"]["LocalPath"] == "/opt/ml/processing/result"
    condition = definition["Steps"][-1]
    assert condition["DependsOn"] == ["gate"]
    (check,) = condition["Arguments"]["Conditions"]
    assert check["Type"] == "Equals" and check["RightValue"] is True
    assert check["LeftValue"] == {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.gate.PropertyFiles.GateResult"}, "Path": "gate.passed"}
    }
    assert [step["Type"] for step in condition["Arguments"]["ElseSteps"]] == ["Fail"]
    # registration is the gate stage's (MLflow's registry): no SageMaker model package anywhere
    assert "RegisterModel" not in json.dumps(definition) and "ModelPackage" not in json.dumps(definition)


def test_parameters_are_params_yaml_and_the_runner_settings(built: tuple[dict, dict], project: Path) -> None:
    definition, description = built
    settings = json.loads((project / "orchestration" / "sagemaker" / "settings.json").read_text())
    sections = {name: value for name, value in description["params"].items() if isinstance(value, dict)}
    for name, value in sections.items():
        parameter = _parameter(definition, name)
        assert parameter["Type"] == "String" and json.loads(parameter["DefaultValue"]) == value
    assert "orchestration" not in {p["Name"] for p in definition["Parameters"]}
    assert _parameter(definition, "TrainingInstanceType")["DefaultValue"] == settings["training_instance_type"]
    assert _parameter(definition, "ProcessingInstanceType")["DefaultValue"] == settings["processing_instance_type"]
    assert _parameter(definition, "VolumeSizeGB") == {
        "Name": "VolumeSizeGB",
        "Type": "Integer",
        "DefaultValue": settings["volume_size_gb"],
    }
    # --params-json is every section's parameter joined into one JSON object (pipeline.py run merges it)
    validate = definition["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"][5]["Std:Join"]
    joined = [v if isinstance(v, str) else json.dumps(sections[v["Get"].split(".")[1]]) for v in validate["Values"]]
    assert json.loads("".join(joined)) == sections
    runner = description["runner"]
    retries = definition["Steps"][0]["RetryPolicies"]
    assert {policy["MaxAttempts"] for policy in retries} == {runner["retries"] + 1}
    assert definition["Steps"][0]["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] == (
        runner["stage_timeout_minutes"] * 60
    )


def test_a_stage_added_to_dvc_yaml_reaches_the_definition(project: Path, sdk_python: Path, tmp_path: Path) -> None:
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    dvc = yaml.safe_load((copy / "dvc.yaml").read_text())
    package = dvc["stages"]["train"]["cmd"].split()[2].split(".")[0]
    dvc["stages"]["explain"] = {
        "cmd": f"python -m {package}.stages.explain --model-dir models",
        "deps": ["models/model.joblib", "data/processed/test.parquet"],
        "outs": [{"reports/explanations.json": {"cache": False}}],
    }
    dvc["stages"]["publish"] = {
        "cmd": f"python -m {package}.stages.publish",
        "deps": ["reports/gate.json", "models/metadata.json"],
        "outs": [{"reports/published.json": {"cache": False}}],
    }
    (copy / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    definition = generate(sdk_python, copy)
    top = {step["Name"]: step for step in definition["Steps"]}
    assert top["explain"]["Type"] == "Processing"
    assert set(top["explain"]["DependsOn"]) == {"features", "train"}
    # after the gate: runs only when the gate passed
    assert "publish" not in top
    (inside,) = top["GatePassed"]["Arguments"]["IfSteps"]
    assert inside["Name"] == "publish" and inside["Type"] == "Processing"
    assert inside["Arguments"]["AppSpecification"]["ContainerEntrypoint"][-1] == "publish"


@pytest.fixture
def moto_server(sdk_python: Path, tmp_path: Path) -> Iterator[str]:
    """moto of the SDK's venv (its pinned version) on 127.0.0.1."""
    with running_moto(tmp_path, server=sdk_python.parent / "moto_server") as url:
        yield url


CLIENT = """
import json, sys, botocore.session
session = botocore.session.get_session()
sagemaker = session.create_client("sagemaker", region_name="us-east-1")
if sys.argv[1] == "bucket":
    session.create_client("s3", region_name="us-east-1").create_bucket(Bucket=sys.argv[2])
else:
    arns = [e["PipelineExecutionArn"] for e in
            sagemaker.list_pipeline_executions(PipelineName=sys.argv[2])["PipelineExecutionSummaries"]]
    print(json.dumps({
        "definition": sagemaker.describe_pipeline(PipelineName=sys.argv[2])["PipelineDefinition"],
        "role": sagemaker.describe_pipeline(PipelineName=sys.argv[2])["RoleArn"],
        "parameters": {arn: sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)[
            "PipelineParameters"] for arn in arns},
    }))
"""


def test_submit_upserts_and_starts_on_moto(
    built: tuple[dict, dict], project: Path, sdk_python: Path, moto_server: str, tmp_path: Path
) -> None:
    env = offline_env(moto_server)
    settings = json.loads((project / "orchestration" / "sagemaker" / "settings.json").read_text())
    bucket = STORE.removeprefix("s3://").split("/")[0]
    assert run([str(sdk_python), "-c", CLIENT, "bucket", bucket], cwd=project, env=env).returncode == 0
    submit = [str(sdk_python), "orchestration/sagemaker/submit.py", "--role-arn", PIPELINE_ROLE]

    refused = run([*submit, "--params-json", '{"modle": {"max_depth": 3}}'], cwd=project, env=env)
    assert refused.returncode == 2 and "'modle', which is no params.yaml section" in refused.stderr

    started = time.monotonic()
    first = run(
        [
            *submit,
            "--params-json",
            '{"model": {"max_depth": 3}}',
            "--parameter",
            "TrainingInstanceType=ml.m5.2xlarge",
            "--wait",
            "--timeout-minutes",
            "2",
            "--poll-seconds",
            "1",
        ],
        cwd=project,
        env=env,
    )
    print(f"  upsert + start + wait on moto in {time.monotonic() - started:.1f} s")
    assert first.returncode == 0, first.stdout + first.stderr
    result = json.loads(first.stdout.splitlines()[-1])
    assert result["runner"] == "sagemaker" and result["state"] == "succeeded"
    assert result["url"].endswith(f"#/pipelines/{settings['pipeline_name']}/executions/{result['run_id']}")
    # moto runs no step: nothing reached the store, so there is no gate decision or metric to report
    assert result["gate"] == {} and result["metrics"] == {}

    # the pipeline exists now: a changed definition updates it (update_pipeline), and a second execution starts
    changed = json.loads(json.dumps(built[0]))
    _parameter(changed, "ProcessingInstanceType")["DefaultValue"] = "ml.c5.xlarge"
    (tmp_path / "changed.json").write_text(json.dumps(changed))
    second = run([*submit, "--definition", str(tmp_path / "changed.json")], cwd=project, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert json.loads(second.stdout.splitlines()[-1])["state"] == "started"

    state = run([str(sdk_python), "-c", CLIENT, "state", settings["pipeline_name"]], cwd=project, env=env)
    assert state.returncode == 0, state.stderr
    seen = json.loads(state.stdout)
    assert json.loads(seen["definition"]) == changed
    assert seen["role"] == PIPELINE_ROLE
    parameters = sorted(seen["parameters"].values(), key=len, reverse=True)
    assert len(parameters) == 2
    assert {p["Name"]: p["Value"] for p in parameters[0]} == {
        "model": '{"max_depth": 3}',
        "TrainingInstanceType": "ml.m5.2xlarge",
    }
    assert parameters[1] == []
