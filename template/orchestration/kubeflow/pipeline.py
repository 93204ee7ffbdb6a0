"""The training pipeline as a Kubeflow Pipelines 2 pipeline: one component per stage of dvc.yaml.

Owns the wiring and nothing else. The stages, their order and their commands come from dvc.yaml, through
orchestration/pipeline.py's `describe`: no stage is listed here, so a stage added to dvc.yaml is a component
after `make kubeflow-compile`, and `check` fails on the committed training_pipeline.yaml until then. Every
component runs `python orchestration/pipeline.py run <stage>` with the run's parameters (the pipeline
parameter `params`: params.yaml's sections as JSON, overridable per run), moves the stage's artefacts through
the run's store (the parameter `store`: the project bucket's prefix), tracks to the parameter `tracking_uri`
and writes the stage's result (the gate's decision, the metrics) to its output `result`; the pipeline's
outputs are those results by stage.

Where a component runs is its execution profile:
  cluster  a container of the pipeline image (Vertex AI Pipelines, or Kubeflow Pipelines on EKS / AKS), with
           the retries and the timeout of params.yaml `orchestration` and runner.json's resources; this is
           what `compile` writes to training_pipeline.yaml
  local    a subprocess of kfp.local's SubprocessRunner (which runs lightweight Python components only),
           running the same command in the project's checkout (PIPELINE_PROJECT_DIR) with its .venv
           (PIPELINE_PYTHON)
The same pipeline function, stages and parameters in both. kfp lives in .venv-kfp (`make kubeflow-venv`),
never in the project's uv.lock; this file imports nothing of the project but orchestration/pipeline.py.

    python orchestration/kubeflow/pipeline.py compile [--output FILE]
    python orchestration/kubeflow/pipeline.py check      (exit 1 when training_pipeline.yaml is stale)
    python orchestration/kubeflow/pipeline.py run-local [--store DIR] [--run-id ID] [--params-json '{...}']
"""

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from kfp import compiler, dsl

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]
COMPILED = HERE / "training_pipeline.yaml"
PROFILES = ("cluster", "local")
GATE_REJECTED = 10  # orchestration/pipeline.py's exit status when the gate refuses the model
TIMED_OUT = 124  # coreutils `timeout`, the cluster container's stage timeout


def _load_runner_module() -> ModuleType:
    """orchestration/pipeline.py of the checkout: the one description of the stages and their runner."""
    source = spec_from_file_location("project_pipeline", CHECKOUT / "orchestration" / "pipeline.py")
    if source is None or source.loader is None:
        raise FileNotFoundError(f"{CHECKOUT / 'orchestration' / 'pipeline.py'} is missing")
    module = module_from_spec(source)
    source.loader.exec_module(module)
    return module


RUNNER_MODULE = _load_runner_module()
PIPELINE: dict[str, Any] = RUNNER_MODULE.describe(CHECKOUT / "dvc.yaml", CHECKOUT / "params.yaml")
RUNNER: dict[str, Any] = json.loads((HERE / "runner.json").read_text(encoding="utf-8"))
SETTINGS: dict[str, Any] = PIPELINE.get("runner") or {}
RETRIES = int(SETTINGS.get("retries", 2))
RETRY_DELAY_SECONDS = int(float(SETTINGS.get("retry_delay_minutes", 5)) * 60)
TIMEOUT_SECONDS = int(float(SETTINGS.get("stage_timeout_minutes", 60)) * 60)
# The run's parameters travel as one JSON string (params.yaml's sections): a KFP struct parameter is a
# protobuf Struct, whose numbers are all doubles (max_iter 1000 would reach the stage as 1000.0).
DEFAULT_PARAMS = json.dumps(PIPELINE["params"], sort_keys=True)


# ----------------------------------------------------------------------------------------------------------
# The components: one per stage, in the profile's form
# ----------------------------------------------------------------------------------------------------------
def cluster_component(stage: str) -> Any:
    """A container of the pipeline image running the stage (submit.py sets this commit's image)."""

    def component(params: str, store: str, run_id: str, tracking_uri: str, result: dsl.OutputPath(str)):
        return dsl.ContainerSpec(
            image=RUNNER["image"],
            command=[
                "env",
                f"MLFLOW_TRACKING_URI={tracking_uri}",  # the run's tracking server (a pipeline parameter)
                "timeout",
                f"{TIMEOUT_SECONDS}s",
                "python",
                "orchestration/pipeline.py",
                "run",
                stage,
            ],
            args=["--store", store, "--run-id", run_id, "--params-json", params, "--result-file", result],
        )

    component.__name__ = stage
    return dsl.container_component(component)


def run_stage_here(
    stage: str,
    params: str,
    store: str,
    run_id: str,
    tracking_uri: str,
    timeout_seconds: int,
    result: dsl.OutputPath(str),
) -> None:
    """The local profile's component: the stage's command as a subprocess in the checkout and its venv."""
    import os
    import subprocess

    project = os.environ["PIPELINE_PROJECT_DIR"]
    python = os.environ.get("PIPELINE_PYTHON") or os.path.join(project, ".venv", "bin", "python")
    command = [python, os.path.join(project, "orchestration", "pipeline.py"), "run", stage, "--store", store]
    command += ["--run-id", run_id, "--params-json", params, "--project-dir", project]
    env = {**os.environ, **({"MLFLOW_TRACKING_URI": tracking_uri} if tracking_uri else {})}
    completed = subprocess.run(  # noqa: S603 - the project's own runner, no shell
        [*command, "--result-file", result], cwd=project, env=env, timeout=timeout_seconds, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"stage {stage} failed with exit status {completed.returncode} (its output is above)"
        )


def local_component(stage: str) -> Any:
    component = dsl.component(run_stage_here, base_image="python:3.12-slim", install_kfp_package=False)
    component.component_spec.name = stage
    return component


# ----------------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------------
def build(profile: str = "cluster") -> Any:
    """The pipeline of dvc.yaml's stages, with components of the execution profile."""
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}: one of {', '.join(PROFILES)}")
    stages = [stage["name"] for stage in PIPELINE["stages"]]
    outputs = NamedTuple("Outputs", [(name, str) for name in stages])

    def training_pipeline(run_id: str, store: str, params: str = DEFAULT_PARAMS, tracking_uri: str = ""):
        tasks: dict[str, Any] = {}
        for spec in PIPELINE["stages"]:
            name = spec["name"]
            if profile == "cluster":
                task = cluster_component(name)(
                    params=params, store=store, run_id=run_id, tracking_uri=tracking_uri
                )
            else:
                task = local_component(name)(
                    stage=name,
                    params=params,
                    store=store,
                    run_id=run_id,
                    tracking_uri=tracking_uri,
                    timeout_seconds=TIMEOUT_SECONDS,
                )
            task.set_display_name(name)
            task.set_caching_options(False)  # a stage reads the run's store and the champion: never cached
            task.after(*(tasks[upstream] for upstream in spec["upstream"]))
            if name != "gate":  # the gate's refusal is a decision: retrying it decides the same
                task.set_retry(num_retries=RETRIES, backoff_duration=f"{RETRY_DELAY_SECONDS}s")
            if name == "train" and profile == "cluster":
                _size(task, RUNNER["train_resources"])
            elif profile == "cluster":
                _size(task, RUNNER["stage_resources"])
            tasks[name] = task
        return outputs(**{name: tasks[name].outputs["result"] for name in stages})

    training_pipeline.__annotations__["return"] = outputs
    return dsl.pipeline(
        name=RUNNER["pipeline_name"],
        description="validate -> features -> train -> evaluate -> gate, one component per stage of dvc.yaml",
    )(training_pipeline)


def _size(task: Any, resources: dict[str, Any]) -> None:
    """Requests equal to limits (a stage gets what it asks for, and no more), and the train accelerator."""
    task.set_cpu_request(str(resources["cpu"])).set_cpu_limit(str(resources["cpu"]))
    task.set_memory_request(str(resources["memory"])).set_memory_limit(str(resources["memory"]))
    if resources.get("accelerator") and int(resources.get("accelerator_count") or 0) > 0:
        task.set_accelerator_type(resources["accelerator"]).set_accelerator_limit(
            int(resources["accelerator_count"])
        )


def compile_pipeline(output: Path = COMPILED) -> Path:
    compiler.Compiler().compile(build("cluster"), package_path=str(output))
    return output


def stale_reason(committed: Path = COMPILED) -> str | None:
    """Why the committed training_pipeline.yaml is not what dvc.yaml, params.yaml and runner.json make."""
    if not committed.is_file():
        return f"{committed.relative_to(CHECKOUT)} is missing: run `make kubeflow-compile` and commit it"
    with tempfile.TemporaryDirectory(prefix="kfp-compile-") as tmp:
        fresh = compile_pipeline(Path(tmp) / committed.name).read_text(encoding="utf-8")
    if fresh != committed.read_text(encoding="utf-8"):
        return (
            f"{committed.relative_to(CHECKOUT)} is stale (dvc.yaml, params.yaml or runner.json changed "
            "since it was compiled): run `make kubeflow-compile` and commit it"
        )
    return None


# ----------------------------------------------------------------------------------------------------------
# A run's summary, from the run's store (where every stage's reports are, a refused gate's too)
# ----------------------------------------------------------------------------------------------------------
def summary(*, store: str, run_id: str, state: str, url: str | None) -> dict[str, Any]:
    """The line train.yml reports: the run, its state, the gate's decision and the evaluation's metrics."""
    result: dict[str, Any] = {"runner": "kubeflow", "run_id": run_id, "url": url, "state": state}
    runs = RUNNER_MODULE.Store(os.path.expandvars(store), run_id)
    with tempfile.TemporaryDirectory(prefix="kfp-summary-") as tmp:
        for stage, report in (("gate", "reports/gate.json"), ("evaluate", "reports/metrics.json")):
            found = runs.pull(report, Path(tmp), persist=False)
            stage_result = RUNNER_MODULE.stage_result(stage, Path(tmp), 0) if found else {}
            result["gate" if stage == "gate" else "metrics"] = stage_result.get(
                "gate" if stage == "gate" else "metrics", {}
            )
    return result


def new_run_id() -> str:
    return f"{RUNNER['pipeline_name']}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def run_local(*, store: Path, run_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """The same pipeline in the local profile, on kfp.local's SubprocessRunner (no container, no network)."""
    from kfp import local

    os.environ.setdefault("PIPELINE_PROJECT_DIR", str(CHECKOUT))
    store.mkdir(parents=True, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(store.parent / "pipeline-root"),
        raise_on_error=False,
    )
    run = build("local")(
        run_id=run_id,
        store=str(store),
        params=json.dumps(params, sort_keys=True),
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", ""),  # unset: the checkout's local store
    )
    failed = any(not value for value in (run.outputs or {}).values()) if run.outputs else True
    return summary(store=str(store), run_id=run_id, state="failed" if failed else "succeeded", url=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    compile_cmd = commands.add_parser("compile", help="write the cluster profile's IR YAML")
    compile_cmd.add_argument("--output", type=Path, default=COMPILED)
    commands.add_parser("check", help="fail when the committed IR YAML is not a fresh compile")
    local_cmd = commands.add_parser("run-local", help="run the pipeline here with kfp.local (local profile)")
    local_cmd.add_argument("--store", type=Path, default=CHECKOUT / ".kfp" / "store")
    local_cmd.add_argument("--run-id", default=None, help="default: <pipeline>-<UTC time>")
    local_cmd.add_argument("--params-json", default="{}", help="the run's overrides of params.yaml sections")
    args = parser.parse_args(argv)
    if args.command == "compile":
        print(f"compiled {compile_pipeline(args.output)}")
        return 0
    if args.command == "check":
        reason = stale_reason()
        print(
            f"error: {reason}" if reason else f"{COMPILED.name} is current",
            file=sys.stderr if reason else sys.stdout,
        )
        return 1 if reason else 0
    override = json.loads(args.params_json)
    if not isinstance(override, dict):
        print("error: --params-json must be a JSON object of params.yaml sections", file=sys.stderr)
        return 2
    params = RUNNER_MODULE.merge(PIPELINE["params"], override)
    result = run_local(store=args.store.resolve(), run_id=args.run_id or new_run_id(), params=params)
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0 if result["state"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
