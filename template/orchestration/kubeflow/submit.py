"""Submit the compiled pipeline to the cloud's Kubeflow Pipelines; with --wait, report how the run ended.

Owns the submission and the wait, nothing of the pipeline: it sends training_pipeline.yaml (`make
kubeflow-compile`; a stale one is refused) with the pipeline image of this commit in place of the compiled
placeholder, the run's id, store and parameters (params.yaml's sections merged with --params-json), then polls
the run until it ends or --timeout-minutes pass (a run still going then is cancelled: training must not
outlive the workflow that waits for it). The last line it prints is one JSON object, which the Retrain
workflow puts in its job summary:

    {"runner": "kubeflow", "run_id": ..., "url": ..., "state": "succeeded"|"failed"|"timed_out"|"running",
     "gate": {...}, "metrics": {...}}

with the gate's decision and the evaluation's metrics read from the run's store (a refused gate's report is
there too). Exit status (the same for every orchestrator's submit.py): 0 when the run reached the gate's
decision (accepted, or refused: the refusal fails the gate's component, but that is a decision) or was
submitted without --wait, 1 failed, 3 timed out, 2 a configuration error.

Where, by runner.json's `platform`:
  vertex  Vertex AI Pipelines (google-cloud-aiplatform PipelineJob) in GCP_PROJECT and runner.json's region,
          run as PIPELINE_SERVICE_ACCOUNT, pipeline root PIPELINE_ROOT (default: <store>/pipeline-root)
  kfp     the Kubeflow Pipelines API of the organisation's cluster: KFP_HOST, KFP_TOKEN (a bearer token of the
          profile's service account), KFP_NAMESPACE (the profile), KFP_EXPERIMENT (default: the pipeline name)
Both need PIPELINE_IMAGE (the pipeline image by digest), PIPELINE_STORE (the project bucket's prefix) and,
with MLflow tracking, MLFLOW_TRACKING_URI (the tracking server, every stage's parameter tracking_uri).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipeline  # orchestration/kubeflow/pipeline.py beside this file

# The platforms' run states that end a run, as this script reports them (anything else: still going).
TERMINAL = {
    "vertex": {
        "PIPELINE_STATE_SUCCEEDED": "succeeded",
        "PIPELINE_STATE_FAILED": "failed",
        "PIPELINE_STATE_CANCELLED": "failed",
    },
    "kfp": {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELED": "failed", "SKIPPED": "failed"},
}
EXIT = {"succeeded": 0, "running": 0, "failed": 1, "timed_out": 3}


class SubmitError(RuntimeError):
    """What the submission needs is missing: the message says which setting."""


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name) or default
    if not value:
        raise SubmitError(f"{name} is not set (README.md, Running on Kubeflow)")
    return value


def with_image(compiled: Path, image: str, target: Path) -> Path:
    """The compiled pipeline with every component's image set to this commit's pipeline image."""
    spec = yaml.safe_load(compiled.read_text(encoding="utf-8"))
    for executor in spec["deploymentSpec"]["executors"].values():
        executor["container"]["image"] = image
    target.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return target


def wait_for(
    poll: Callable[[], str],
    platform: str,
    *,
    timeout_seconds: float,
    interval_seconds: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll the run's state until it ends ("succeeded" / "failed") or the timeout passes ("timed_out")."""
    deadline = clock() + timeout_seconds
    while True:
        raw = poll()
        state = TERMINAL[platform].get(raw.rsplit(".", 1)[-1])
        if state is not None:
            return state
        if clock() >= deadline:
            return "timed_out"
        print(f"run state {raw}; checking again in {interval_seconds:.0f} s", file=sys.stderr, flush=True)
        sleep(min(interval_seconds, max(deadline - clock(), 0.0)))


def submit_vertex(
    package: Path, arguments: dict[str, Any], run_id: str
) -> tuple[Callable[[], str], Any, str]:
    from google.cloud import aiplatform

    store = arguments["store"]
    job = aiplatform.PipelineJob(
        display_name=pipeline.RUNNER["pipeline_name"],
        template_path=str(package),
        job_id=run_id,
        pipeline_root=setting("PIPELINE_ROOT", f"{store}/pipeline-root"),
        parameter_values=arguments,
        enable_caching=False,
        project=setting("GCP_PROJECT", os.environ.get("GOOGLE_CLOUD_PROJECT")),
        location=pipeline.RUNNER["region"],
        labels={"pipeline": pipeline.RUNNER["pipeline_name"]},
    )
    job.submit(service_account=setting("PIPELINE_SERVICE_ACCOUNT"))
    return (lambda: str(job.state)), job.cancel, job._dashboard_uri()  # the console link


def submit_kfp(package: Path, arguments: dict[str, Any], run_id: str) -> tuple[Callable[[], str], Any, str]:
    import kfp

    host = setting("KFP_HOST")
    namespace = setting("KFP_NAMESPACE")
    client = kfp.Client(host=host, existing_token=setting("KFP_TOKEN"), namespace=namespace)
    run = client.create_run_from_pipeline_package(
        str(package),
        arguments=arguments,
        run_name=run_id,
        experiment_name=os.environ.get("KFP_EXPERIMENT") or pipeline.RUNNER["pipeline_name"],
        namespace=namespace,
        pipeline_root=os.environ.get("PIPELINE_ROOT") or f"{arguments['store']}/pipeline-root",
        enable_caching=False,
        service_account=os.environ.get("KFP_SERVICE_ACCOUNT") or pipeline.RUNNER["service_account"],
    )
    return (
        lambda: str(client.get_run(run.run_id).state),
        lambda: client.terminate_run(run.run_id),
        f"{host.rstrip('/')}/#/runs/details/{run.run_id}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wait", action="store_true", help="wait for the run to end and report it")
    parser.add_argument(
        "--timeout-minutes", type=float, default=120.0, help="with --wait: then cancel the run"
    )
    parser.add_argument("--params-json", default="{}", help="the run's overrides of params.yaml sections")
    parser.add_argument("--run-id", default=None, help="default: <pipeline>-<UTC time>")
    args = parser.parse_args(argv)
    platform = pipeline.RUNNER["platform"]
    try:
        if platform not in TERMINAL:
            raise SubmitError(
                f"runner.json's platform is {platform!r}: run it with `make kubeflow-run-local`"
            )
        override = json.loads(args.params_json)
        if not isinstance(override, dict):
            raise SubmitError("--params-json must be a JSON object of params.yaml sections")
        run_id = args.run_id or pipeline.new_run_id()
        store = setting("PIPELINE_STORE").rstrip("/")
        arguments = {
            "run_id": run_id,
            "store": store,
            "params": json.dumps(
                pipeline.RUNNER_MODULE.merge(pipeline.PIPELINE["params"], override), sort_keys=True
            ),
            "tracking_uri": os.environ.get("MLFLOW_TRACKING_URI", ""),
        }
        if pipeline.PIPELINE["params"].get("tracking", {}).get("backend") == "mlflow":
            setting("MLFLOW_TRACKING_URI")  # a stage in a container cannot track to a local store
        image = setting("PIPELINE_IMAGE")
        stale = pipeline.stale_reason()
        if stale:
            raise SubmitError(stale)
        with tempfile.TemporaryDirectory(prefix="kfp-submit-") as tmp:
            package = with_image(pipeline.COMPILED, image, Path(tmp) / "training_pipeline.yaml")
            submit = submit_vertex if platform == "vertex" else submit_kfp
            try:
                poll, cancel, url = submit(package, arguments, run_id)
            except Exception as error:  # the client's own errors: credentials, permissions, the endpoint
                raise SubmitError(
                    f"{platform} refused or could not take the run: {type(error).__name__}: {error}"
                ) from error
    except (SubmitError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"submitted {run_id}: {url}", file=sys.stderr, flush=True)
    state = "running"
    if args.wait:
        state = wait_for(poll, platform, timeout_seconds=args.timeout_minutes * 60)
        if state == "timed_out":
            cancel()
            print(
                f"error: the run did not end within {args.timeout_minutes:g} minutes: cancelled",
                file=sys.stderr,
            )
        elif state == "failed":
            print(f"the run failed; its logs: {url} (docs/runbooks/kubeflow.md)", file=sys.stderr)
    result = pipeline.summary(store=store, run_id=run_id, state=state, url=url)
    if state == "failed" and (result.get("gate") or {}).get("passed") is False:
        # the gate's refusal fails its component, but the run reached its decision: not a failed run
        result["state"] = "succeeded"
        print("the quality gate refused the model: the champion stays (result.gate.reasons)", file=sys.stderr)
    print(json.dumps(result, sort_keys=True), flush=True)
    return EXIT[result["state"]]


if __name__ == "__main__":
    sys.exit(main())
