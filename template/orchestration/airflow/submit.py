"""Start one run of the training DAG on the project's Airflow, wait for it, and report what it decided.

Owns the client side of a run: trigger the DAG `<project>-training` with the run's parameters, poll it until
it ends or the timeout passes, and read the gate's decision and the evaluation's metrics (the `gate` and
`evaluate` tasks' XComs; the run's folder in the pipeline store when a task failed before it could push one,
which is how a refused model ends). PIPELINE_IMAGE, when set, is the image the run's stages use (the run's
conf `pipeline_image`). The last line it prints is one JSON object, the same for every orchestrator's submit:

    {"runner": ..., "run_id": ..., "url": ..., "state": "succeeded" | "failed" | "timed_out",
     "gate": {...}, "metrics": {...}}

`python orchestration/pipeline.py summary` renders it as Markdown for the job summary. Exit status (the same
for every orchestrator's submit.py): 0 when the run reached the gate's decision (accepted or refused: both are
decisions), 1 when it failed, 3 when it did not end in time, 2 when it could not be started or followed.

Where the Airflow is (runner.json's `cloud`, or --platform):
  mwaa      Amazon MWAA (aws): the Airflow REST API through MWAA's InvokeRestApi, signed with SigV4 by the
            caller's IAM identity (needs airflow:InvokeRestApi on the environment). The environment is
            MWAA_ENVIRONMENT. No web-login token and no network path to the private webserver are needed.
  composer  Cloud Composer 3 (gcp): the environment's Airflow REST API (AIRFLOW_API_URL, Composer's
            airflow_uri) with a Google OAuth access token of the caller's credentials (Application Default
            Credentials).
  api       any Airflow 3 API server (azure: the Helm chart's on the AKS cluster; none: a local one) at
            AIRFLOW_API_URL with a JWT: AIRFLOW_API_TOKEN, or AIRFLOW_API_USERNAME / AIRFLOW_API_PASSWORD
            exchanged at /auth/token.
Only the standard library at import time; botocore (aws) and google-auth (gcp) are the project's own
dependencies on those clouds, imported for their platform only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLATFORMS = {"aws": "mwaa", "gcp": "composer", "azure": "api", "none": "api"}
TERMINAL = {"success": "succeeded", "failed": "failed"}
REQUEST_TIMEOUT = 30  # seconds per API call: one slow answer must not eat the run's timeout


class SubmitError(RuntimeError):
    """The API refused a request, or the run cannot be followed."""


# ----------------------------------------------------------------------------------------------------------
# The three ways to reach the Airflow REST API (v2, Airflow 3): one method, request(method, path, body)
# ----------------------------------------------------------------------------------------------------------
class RestApi:
    """An Airflow 3 API server at base_url, with a bearer token (a JWT, or Google's access token)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    @classmethod
    def airflow(cls, base_url: str) -> RestApi:
        token = os.environ.get("AIRFLOW_API_TOKEN", "")
        if not token:
            username = os.environ.get("AIRFLOW_API_USERNAME", "")
            password = os.environ.get("AIRFLOW_API_PASSWORD", "")
            if not (username and password):
                raise SubmitError(
                    "no credentials for the Airflow API: set AIRFLOW_API_TOKEN, or AIRFLOW_API_USERNAME and "
                    "AIRFLOW_API_PASSWORD (a user of the Airflow environment allowed to trigger the DAG)"
                )
            answer = _http(
                "POST", f"{base_url.rstrip('/')}/auth/token", {"username": username, "password": password}
            )
            token = answer.get("access_token", "")
            if not token:
                raise SubmitError(f"{base_url}/auth/token returned no access_token")
        return cls(base_url, token)

    @classmethod
    def composer(cls, base_url: str) -> RestApi:
        import google.auth
        import google.auth.transport.requests

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        credentials.refresh(google.auth.transport.requests.Request())
        return cls(base_url, credentials.token)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return _http(method, f"{self.base_url}/api/v2{path}", body, token=self.token)

    def ui_url(self, path: str) -> str:
        return f"{self.base_url}{path}"


class MwaaApi:
    """Amazon MWAA's InvokeRestApi: the environment's Airflow REST API, authorised by IAM."""

    def __init__(self, environment: str, region: str | None) -> None:
        import botocore.session

        self.environment = environment
        self.client = botocore.session.get_session().create_client("mwaa", region_name=region)
        try:
            webserver = self.client.get_environment(Name=environment)["Environment"].get("WebserverUrl", "")
        except Exception:
            webserver = ""
        self.webserver = f"https://{webserver}" if webserver else ""

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        arguments: dict[str, Any] = {"Name": self.environment, "Path": path, "Method": method}
        if body is not None:
            arguments["Body"] = body
        try:
            answer = self.client.invoke_rest_api(**arguments)
        except self.client.exceptions.RestApiClientException as error:
            raise SubmitError(f"{method} {path}: {error.response.get('RestApiResponse') or error}") from error
        except self.client.exceptions.RestApiServerException as error:
            raise SubmitError(f"{method} {path}: the Airflow API failed: {error}") from error
        return answer.get("RestApiResponse") or {}

    def ui_url(self, path: str) -> str:
        return f"{self.webserver}{path}" if self.webserver else ""


def _http(method: str, url: str, body: dict[str, Any] | None, token: str = "") -> dict[str, Any]:
    if not url.startswith(("https://", "http://")):
        raise SubmitError(f"{url} is not an http(s) URL")
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    # http(s) only (checked above): no file:// or custom scheme reaches urlopen
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        raise SubmitError(f"{method} {url}: HTTP {error.code} {detail}") from error
    except (urllib.error.URLError, TimeoutError) as error:
        raise SubmitError(f"{method} {url}: {error}") from error
    return json.loads(text) if text else {}


# ----------------------------------------------------------------------------------------------------------
# One run: trigger, poll, collect
# ----------------------------------------------------------------------------------------------------------
def _xcom(api: Any, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    """A stage's result, the last line `pipeline.py run` printed (a dict, or its JSON text on ECS)."""
    path = f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{task_id}/xcomEntries/return_value"
    try:
        value = api.request("GET", path).get("value")
    except SubmitError:
        return {}  # the task failed before it pushed one
    if isinstance(value, str):
        try:
            value = json.loads(value.strip().splitlines()[-1]) if value.strip() else {}
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _from_store(store: str, run_id: str) -> dict[str, Any]:
    """gate.json and metrics.json of the run's folder in the pipeline store (pipeline.py's Store, results)."""
    source = spec_from_file_location("project_pipeline", HERE.parent / "pipeline.py")
    if source is None or source.loader is None:
        return {}
    pipeline = module_from_spec(source)
    source.loader.exec_module(pipeline)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="submit-") as tmp:
        workdir = Path(tmp)
        runs = pipeline.Store(os.path.expandvars(store), run_id)
        for stage, path in (("gate", "reports/gate.json"), ("evaluate", "reports/metrics.json")):
            if runs.pull(path, workdir, persist=False):
                results.update(pipeline.stage_result(stage, workdir, 0))
    return results


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def submit(
    api: Any,
    *,
    runner: str,
    dag_id: str,
    params: dict[str, Any],
    timeout_minutes: float | None,
    poll_seconds: float,
    store: str | None,
) -> tuple[dict[str, Any], list[str]]:
    """The run's result (the JSON every submit.py prints) and the tasks that failed."""
    dag = api.request("GET", f"/dags/{_q(dag_id)}")
    if dag.get("is_paused"):
        raise SubmitError(f"the DAG {dag_id} is paused: a run would wait forever; unpause it in Airflow")
    run_id = f"submit__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}_{os.getpid()}"
    if os.environ.get("GITHUB_RUN_ID"):
        run_id = f"github__{os.environ['GITHUB_RUN_ID']}_{os.environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    started = api.request(
        "POST",
        f"/dags/{_q(dag_id)}/dagRuns",
        {"dag_run_id": run_id, "logical_date": None, "conf": params, "note": "started by submit.py"},
    )
    run_id = started.get("dag_run_id", run_id)
    url = api.ui_url(f"/dags/{_q(dag_id)}/runs/{_q(run_id)}")
    print(f"started {dag_id} run {run_id} {url}".rstrip(), flush=True)
    if timeout_minutes is None:
        return {"runner": runner, "run_id": run_id, "url": url}, []

    deadline = time.monotonic() + timeout_minutes * 60
    state, airflow_state = "timed_out", started.get("state", "queued")
    while True:
        if airflow_state in TERMINAL:
            state = TERMINAL[airflow_state]
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(max(0.0, min(poll_seconds, deadline - time.monotonic())))
        airflow_state = api.request("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}").get("state", "")
        print(f"  {datetime.now(UTC):%H:%M:%S} {airflow_state}", flush=True)

    tasks = api.request("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances").get(
        "task_instances", []
    )
    failed = sorted(t["task_id"] for t in tasks if t.get("state") in ("failed", "upstream_failed"))
    results = {**_xcom(api, dag_id, run_id, "evaluate"), **_xcom(api, dag_id, run_id, "gate")}
    if store and ("gate" not in results or "metrics" not in results):
        results = {**_from_store(store, run_id), **results}
    gate, metrics = results.get("gate") or {}, results.get("metrics") or {}
    # The gate refusing the model fails its task on purpose (exit status 10, no retry): that run reached a
    # decision. Any other failed task, or a refusal no report confirms, is a failure.
    if state == "failed" and failed == ["gate"] and gate.get("passed") is False:
        state = "succeeded"
    result = {
        "runner": runner,
        "run_id": run_id,
        "url": url,
        "state": state,
        "gate": gate,
        "metrics": metrics,
    }
    return result, failed


def main(argv: list[str] | None = None) -> int:
    runner_file = HERE / "runner.json"
    settings = json.loads(runner_file.read_text(encoding="utf-8")) if runner_file.is_file() else {}
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wait",
        action="store_true",
        help="wait for the run to end and print its result (without it: start it only)",
    )
    parser.add_argument("--timeout-minutes", type=float, default=180, help="give up waiting after this long")
    parser.add_argument("--poll-seconds", type=float, default=30, help="how often to ask for the run's state")
    parser.add_argument("--params-json", help="the run's parameters: params.yaml sections to override")
    parser.add_argument(
        "--platform",
        choices=sorted(set(PLATFORMS.values())),
        default=PLATFORMS.get(settings.get("cloud", "none")),
    )
    parser.add_argument("--dag-id", default=settings.get("dag_id"))
    parser.add_argument(
        "--store",
        default=os.environ.get("PIPELINE_STORE"),
        help="the pipeline store (s3:// gs:// az:// or a directory): where a refused gate's report is read",
    )
    args = parser.parse_args(argv)

    try:
        params = json.loads(args.params_json) if args.params_json else {}
        if not isinstance(params, dict):
            raise SubmitError("--params-json must be a JSON object of params.yaml sections")
        if os.environ.get("PIPELINE_IMAGE"):
            # The image of this run's stages (the pods of the kubernetes profile read it; ECS and Cloud Run
            # run the revision `make pipeline-image` registered with it).
            params["pipeline_image"] = os.environ["PIPELINE_IMAGE"]
        if not args.dag_id:
            raise SubmitError(f"no --dag-id and no {runner_file}")
        if args.platform == "mwaa":
            environment = os.environ.get("MWAA_ENVIRONMENT", "")
            if not environment:
                raise SubmitError("MWAA_ENVIRONMENT is not set (terraform output airflow_environment)")
            api: Any = MwaaApi(environment, os.environ.get("AWS_REGION") or settings.get("region"))
        else:
            base_url = os.environ.get("AIRFLOW_API_URL", "")
            if not base_url:
                raise SubmitError("AIRFLOW_API_URL is not set (terraform output airflow_uri)")
            api = RestApi.composer(base_url) if args.platform == "composer" else RestApi.airflow(base_url)
        result, failed = submit(
            api,
            runner=f"airflow-{args.platform}",
            dag_id=args.dag_id,
            params=params,
            timeout_minutes=args.timeout_minutes if args.wait else None,
            poll_seconds=args.poll_seconds,
            store=args.store,
        )
    except (SubmitError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.wait and result["state"] == "failed":
        print(f"error: the run failed in {', '.join(failed) or 'Airflow'}: {result['url']}", file=sys.stderr)
    elif args.wait and result["state"] == "timed_out":
        print(
            f"error: the run did not end within {args.timeout_minutes:g} minutes; it goes on in Airflow: "
            f"{result['url']}",
            file=sys.stderr,
        )
    if not args.wait:
        return 0  # started only: its id and URL are above
    print(json.dumps(result, sort_keys=True), flush=True)
    return {"succeeded": 0, "failed": 1, "timed_out": 3}[result["state"]]


if __name__ == "__main__":
    sys.exit(main())
