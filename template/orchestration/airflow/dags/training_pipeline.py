"""The training pipeline as an Airflow 3 DAG: one task per stage of dvc.yaml, wired in dvc.yaml's order.

Owns the wiring and nothing else. The stages, their order and their commands come from dvc.yaml, through
orchestration/pipeline.py's `describe` (no stage is listed here); the run parameters are params.yaml's,
overridable per run (the DAG's params, "Trigger DAG w/ config"); each task runs
`python orchestration/pipeline.py run <stage>`, which moves the stage's artefacts through the run's store (the
project bucket) and prints the stage's result (the gate's decision, the metrics) as the task's XCom.

Where a task runs is its execution profile, runner.json's `execution` unless the Airflow Variable
`pipeline_execution` is set in the environment (AIRFLOW_VAR_PIPELINE_EXECUTION):
  ecs         a Fargate task of the project's pipeline image (Amazon MWAA)
  cloud_run   a Cloud Run job execution of the pipeline image (Cloud Composer)
  kubernetes  a pod of the pipeline image on the AKS cluster Airflow runs on (Helm chart install)
  local       a subprocess on the Airflow worker, in the project's checkout (PIPELINE_PROJECT_DIR) with its
              .venv (PIPELINE_PYTHON); the store is PIPELINE_STORE (default .airflow/store in the checkout)
The same DAG in every profile. Only Airflow itself (and the provider of the chosen profile) is imported here,
so the file parses in a bare Airflow environment; tracking goes to MLFLOW_TRACKING_URI of the task's env.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

HERE = Path(__file__).resolve().parent
EXECUTIONS = ("ecs", "cloud_run", "kubernetes", "local")
GATE_REJECTED = 10  # orchestration/pipeline.py's exit status when the gate refuses the model


def _load_pipeline() -> dict[str, Any]:
    """The stages: pipeline.json beside the DAG in a deployed DAG folder (make airflow-bundle writes it), else
    derived from dvc.yaml and params.yaml of the checkout by orchestration/pipeline.py, the same function."""
    bundled = HERE / "pipeline.json"
    if bundled.is_file():
        return json.loads(bundled.read_text(encoding="utf-8"))
    checkout = HERE.parents[2]
    source = spec_from_file_location("project_pipeline", checkout / "orchestration" / "pipeline.py")
    if source is None or source.loader is None or not (checkout / "dvc.yaml").is_file():
        raise FileNotFoundError(
            f"neither {bundled} nor a checkout with dvc.yaml at {checkout}: deploy the bundle"
        )
    module = module_from_spec(source)
    source.loader.exec_module(module)
    return module.describe(checkout / "dvc.yaml", checkout / "params.yaml")


def _load_runner() -> dict[str, Any]:
    for path in (HERE / "runner.json", HERE.parent / "runner.json"):
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"runner.json is neither beside {HERE} nor above it: deploy it with the DAG")


PIPELINE: dict[str, Any] = _load_pipeline()
RUNNER: dict[str, Any] = _load_runner()
EXECUTION = os.environ.get("AIRFLOW_VAR_PIPELINE_EXECUTION") or RUNNER["execution"]
if EXECUTION not in EXECUTIONS:
    raise ValueError(f"pipeline_execution is {EXECUTION!r}; it must be one of {', '.join(EXECUTIONS)}")
SETTINGS: dict[str, Any] = PIPELINE.get("runner") or {}


def _as_json(params: Any) -> str:
    """The run's params.yaml sections (Airflow's ParamsDict; a run's other conf keys, such as pipeline_image,
    are not sections) as the JSON object `pipeline.py run --params-json` takes."""
    return json.dumps({key: params[key] for key in params if isinstance(params[key], dict)}, sort_keys=True)


def stage_command(stage: str) -> list[str]:
    """What the task of `stage` runs in the pipeline image (templated: the run's id, params and store)."""
    return [
        "python",
        "orchestration/pipeline.py",
        "run",
        stage,
        "--store",
        "{{ var.value.pipeline_store }}",
        "--run-id",
        "{{ run_id }}",
        "--params-json",
        "{{ params | as_json }}",
    ]


def run_locally(stage: str) -> dict[str, Any]:
    """The local execution profile: the stage's command as a subprocess in the project's checkout and venv."""
    context = get_current_context()
    project = Path(os.environ.get("PIPELINE_PROJECT_DIR") or HERE.parents[2]).resolve()
    python = os.environ.get("PIPELINE_PYTHON") or str(project / ".venv" / "bin" / "python")
    store = os.environ.get("PIPELINE_STORE") or str(project / ".airflow" / "store")
    command = [
        python,
        str(project / "orchestration" / "pipeline.py"),
        "run",
        stage,
        "--store",
        store,
        "--run-id",
        str(context["run_id"]),
        "--params-json",
        _as_json(context["params"]),
        "--project-dir",
        str(project),
    ]
    completed = subprocess.run(  # noqa: S603 - the project's own runner, no shell
        command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    lines = completed.stdout.splitlines()
    for line in lines:
        print(line)  # the task log
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result = {}
    if completed.returncode == GATE_REJECTED:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"the quality gate refused the model: {result.get('gate')}")  # no retry
    if completed.returncode != 0:
        raise RuntimeError(
            f"stage {stage} failed with exit status {completed.returncode} (its output is above)"
        )
    return result


def cloud_task(stage: str) -> Any:
    """The task of `stage` in the cloud profile: the pipeline image on the cloud's container runtime."""
    command = stage_command(stage)
    if EXECUTION == "ecs":
        from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

        return EcsRunTaskOperator(
            task_id=stage,
            cluster="{{ var.value.pipeline_ecs_cluster }}",
            task_definition="{{ var.value.pipeline_task_definition }}",
            launch_type="FARGATE",
            overrides={"containerOverrides": [{"name": RUNNER["container"], "command": command}]},
            network_configuration={
                "awsvpcConfiguration": {
                    "subnets": ["{{ var.value.pipeline_subnet_a }}", "{{ var.value.pipeline_subnet_b }}"],
                    "securityGroups": ["{{ var.value.pipeline_security_group }}"],
                    "assignPublicIp": "DISABLED",
                }
            },
            awslogs_group="{{ var.value.pipeline_log_group }}",
            awslogs_region=RUNNER["region"],
            awslogs_stream_prefix=f"pipeline/{RUNNER['container']}",
            container_name=RUNNER["container"],
            do_xcom_push=True,
        )
    if EXECUTION == "cloud_run":
        from airflow.providers.google.cloud.operators.cloud_run import CloudRunExecuteJobOperator

        return CloudRunExecuteJobOperator(
            task_id=stage,
            project_id="{{ var.value.gcp_project }}",
            region=RUNNER["region"],
            job_name="{{ var.value.pipeline_job }}",
            # the job's container command is `python`; the task gives its arguments
            overrides={"container_overrides": [{"args": command[1:]}]},
        )
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    # The pods' requests/limits: infra/terraform/azure's pipeline_cpu / pipeline_memory, set as this Variable
    # by the Helm values it outputs (airflow_helm_values): one place.
    resources = json.loads(os.environ.get("AIRFLOW_VAR_PIPELINE_RESOURCES") or "{}")
    if not resources:
        raise ValueError(
            "AIRFLOW_VAR_PIPELINE_RESOURCES is not set: "
            "apply the Helm values of `terraform output airflow_helm_values`"
        )
    return KubernetesPodOperator(
        task_id=stage,
        name=f"{RUNNER['dag_id']}-{stage}",
        namespace="{{ var.value.pipeline_namespace }}",
        # the image the run names (the Retrain workflow's build, by digest), else the environment's
        image="{{ dag_run.conf.get('pipeline_image') or var.value.pipeline_image }}",
        env_vars={
            "AZURE_STORAGE_ACCOUNT_NAME": "{{ var.value.pipeline_storage_account }}",
            "MLFLOW_TRACKING_URI": "{{ var.value.get('pipeline_tracking_uri', '') }}",
        },
        cmds=command[:1],
        arguments=command[1:],
        service_account_name=RUNNER["service_account"],
        labels={"azure.workload.identity/use": "true", "app.kubernetes.io/part-of": RUNNER["dag_id"]},
        container_resources=k8s.V1ResourceRequirements(requests=resources, limits=resources),
        get_logs=True,
        on_finish_action="delete_pod",
        do_xcom_push=False,
    )


with DAG(
    dag_id=RUNNER["dag_id"],
    description="validate -> features -> train -> evaluate -> gate, one task per stage of dvc.yaml",
    schedule=SETTINGS.get("schedule"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # the gate promotes the champion in the store: one run at a time
    default_args={
        "owner": RUNNER["owner"],
        "retries": int(SETTINGS.get("retries", 2)),
        "retry_delay": timedelta(minutes=float(SETTINGS.get("retry_delay_minutes", 5))),
        "execution_timeout": timedelta(minutes=float(SETTINGS.get("stage_timeout_minutes", 60))),
    },
    params={
        section: Param(value, type="object", description=f"params.yaml `{section}` for this run")
        for section, value in PIPELINE["params"].items()
        if isinstance(value, dict)
    },
    user_defined_filters={"as_json": _as_json},
    tags=["training", PIPELINE["package"]],
    doc_md=__doc__,
) as dag:
    tasks: dict[str, Any] = {}
    for spec in PIPELINE["stages"]:
        name = spec["name"]
        if EXECUTION == "local":
            tasks[name] = task(task_id=name)(run_locally)(name)
        else:
            tasks[name] = cloud_task(name)
        for upstream in spec["upstream"]:
            tasks[upstream] >> tasks[name]
