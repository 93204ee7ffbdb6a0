"""serving=kubernetes: the kustomize manifests of deploy/kubernetes/, checked offline on every render that has them.

For each render of the matrix with serving=kubernetes (every cloud, KServe on and off):
- `kubectl kustomize` builds both overlays, and `make k8s-manifests` builds the release CD applies (the overlay
  plus the image, the cloud identities, the host and the batch URIs, given here instead of read from Terraform);
- every object validates against the Kubernetes schemas of KUBERNETES_VERSION (kubernetes-validate, strict: no
  unknown fields), the InferenceService and the PodMonitor against their CRD schemas vendored in tests/schemas/;
- checkov's Kubernetes policies find nothing on the release manifests (one checkov process for all renders; any
  inline skip is a `checkov.io/skip<n>: <check>=<reason>` annotation whose reason is a sentence);
- invariants: selectors match the pods, autoscaling bounds, probes on routes the app has, requests and limits,
  the image CD builds, shutdown and thread settings consistent with the service and the Dockerfile, the scrape job
  the alert rules select, the Terraform's workload identities trusting exactly these service accounts;
- the rollback logic of the Makefile (`make k8s-rollback`) against a stand-in kubectl that records its calls.
The Terraform side has its own mocked-provider plans, infra/terraform/<cloud>/tests/serving_kubernetes.tftest.hcl,
which tests/test_terraform_plan.py runs with the other test files of each module.

No cluster is reachable here: applying, the rollout itself and the smoke test through a real Service are not run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import CLOUDS, RENDER_MATRIX, combo_id, run, tool

# The cluster version the manifests are validated against (stated once here and in the generated
# deploy/kubernetes/README.md): the oldest minor version still in standard support on EKS, GKE and AKS.
KUBERNETES_VERSION = "1.32"
SCHEMAS = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): SCHEMAS / "kserve-v0.20.0-inferenceservice-v1beta1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): SCHEMAS / "prometheus-operator-v0.93.0-podmonitor-v1.json",
    ("sparkoperator.k8s.io/v1beta2", "ScheduledSparkApplication"): SCHEMAS
    / "spark-operator-v2.5.2-scheduledsparkapplication-v1beta2.json",
}
ENVIRONMENTS = ("staging", "production")
SLUG = "customer-churn"
PACKAGE = "customer_churn"
KUBERNETES_COMBOS = [answers for answers in RENDER_MATRIX if answers["serving"] == "kubernetes"]
# What CD passes to `make k8s-manifests` (there read from `terraform output` of the environment).
IMAGE_TAG = "0123456789abcdef0123456789abcdef01234567"
IMAGE_DIGEST = "sha256:" + "ab" * 32
IDENTITIES = {
    "aws": ("arn:aws:iam::123456789012:role/{name}-k8s-server", "arn:aws:iam::123456789012:role/{name}-k8s-batch"),
    "gcp": (
        "{id}-run@customer-churn-stg.iam.gserviceaccount.com",
        "{id}-batch@customer-churn-stg.iam.gserviceaccount.com",
    ),
    "azure": ("00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"),
}
REPOSITORIES = {
    "aws": "123456789012.dkr.ecr.us-east-1.amazonaws.com/customer-churn",
    "gcp": "us-central1-docker.pkg.dev/customer-churn-stg/customer-churn/customer-churn",
    "azure": "customerchurnstgabc123.azurecr.io/customer-churn",
}
ANNOTATIONS = {
    "aws": "eks.amazonaws.com/role-arn",
    "gcp": "iam.gke.io/gcp-service-account",
    "azure": "azure.workload.identity/client-id",
}
BUCKET_SCHEMES = {"aws": "s3://", "gcp": "gs://", "azure": "az://"}
SERVER = {"app.kubernetes.io/name": SLUG, "app.kubernetes.io/component": "server"}
BATCH = {"app.kubernetes.io/name": SLUG, "app.kubernetes.io/component": "batch"}
CHECKOV_SKIP = re.compile(r"^checkov\.io/skip\d+$")
MIN_REASON_WORDS = 5


def test_the_matrix_renders_kubernetes_on_every_cloud_with_and_without_kserve() -> None:
    clouds = {answers["cloud_provider"] for answers in KUBERNETES_COMBOS}
    assert clouds == set(CLOUDS) - {"none"}, f"serving=kubernetes renders: {KUBERNETES_COMBOS}"
    assert {answers["kserve"] for answers in KUBERNETES_COMBOS} == {False, True}
    assert {answers["monitoring"] for answers in KUBERNETES_COMBOS} == {False, True}
    assert not [a for a in RENDER_MATRIX if a["kserve"] and a["serving"] != "kubernetes"], "kserve without kubernetes"


def documents(text: str) -> list[dict]:
    return [document for document in yaml.safe_load_all(text) if document]


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict], kind: str, name: str = SLUG) -> dict:
    (found,) = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"].startswith(name)]
    return found


def pod_specs(objects: list[dict]) -> Iterator[tuple[str, dict, dict]]:
    """(owner, pod labels, pod spec) of every workload, the InferenceService's predictor included."""
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield obj["kind"], spec["template"]["metadata"]["labels"], spec["template"]["spec"]
        elif obj["kind"] == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
            yield obj["kind"], template["metadata"]["labels"], template["spec"]
        elif obj["kind"] == "InferenceService":
            yield obj["kind"], spec["predictor"]["labels"], spec["predictor"]


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are used: {selector}"
    return selector["matchLabels"].items() <= labels.items()


def k8s_manifests(project: Path, cloud: str, environment: str, **overrides: str) -> Path:
    """Run `make k8s-manifests` as CD does, with the Terraform outputs given on the command line."""
    name, service_account_id = f"{SLUG}-{environment}", f"{SLUG}-{'stg' if environment == 'staging' else 'prd'}"
    server, batch = (value.format(name=name, id=service_account_id) for value in IDENTITIES[cloud])
    scheme = BUCKET_SCHEMES[cloud]
    bucket = "data" if cloud == "azure" else f"{SLUG}-data-{environment}"
    variables = {
        "ENV": environment,
        "IMAGE_TAG": IMAGE_TAG,
        "IMAGE_DIGEST": IMAGE_DIGEST,
        "K8S_IMAGE_REPOSITORY": REPOSITORIES[cloud],
        "K8S_HOST": f"churn.{environment}.example.org",
        "K8S_SERVER_IDENTITY": server,
        "K8S_BATCH_IDENTITY": batch,
        "K8S_BATCH_INPUT_URI": f"{scheme}{bucket}/batch/input/records.csv",
        "K8S_BATCH_OUTPUT_URI": f"{scheme}{bucket}/batch/output/predictions.csv",
        "K8S_INFERENCE_LOG_URI": f"{scheme}{bucket}/inference/",
        **({"K8S_STORAGE_ACCOUNT": "customerchurnstgabc123"} if cloud == "azure" else {}),
        **overrides,
    }
    result = run(
        ["make", "--no-print-directory", "k8s-manifests", *(f"{k}={v}" for k, v in variables.items())], project
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return project / "build" / "kubernetes" / environment / "manifests.yaml"


_releases: dict[tuple[str, str], list[dict]] = {}


@pytest.fixture(params=KUBERNETES_COMBOS, ids=combo_id)
def combo(request: pytest.FixtureRequest, render) -> tuple[dict, Path]:
    return request.param, render(**request.param)


def release(answers: dict, project: Path, environment: str) -> list[dict]:
    """The objects CD applies to `environment` (built once per render and environment)."""
    key = (str(project), environment)
    if key not in _releases:
        _releases[key] = documents(k8s_manifests(project, answers["cloud_provider"], environment).read_text())
    return _releases[key]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_overlays_build_with_kustomize(combo: tuple[dict, Path], environment: str) -> None:
    answers, project = combo
    result = run([tool("kubectl"), "kustomize", f"deploy/kubernetes/{environment}"], project)
    assert result.returncode == 0, result.stderr
    objects = documents(result.stdout)
    kinds = sorted(obj["kind"] for obj in objects)
    print(f"{combo_id(answers)} {environment}: {len(objects)} objects: {kinds}")
    assert {obj["metadata"]["namespace"] for obj in objects} == {f"{SLUG}-{environment}"}
    expected = {"ServiceAccount", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy", "Ingress", "CronJob"}
    expected |= {"InferenceService"} if answers["kserve"] else {"Deployment", "Service", "HorizontalPodAutoscaler"}
    expected |= {"PodMonitor"} if answers["monitoring"] else set()
    assert set(kinds) == expected
    # The committed overlay is a template for the release: the image and the host are still placeholders.
    assert f"image: {SLUG}\n" in result.stdout
    assert release(answers, project, environment), "make k8s-manifests built nothing"


@functools.cache
def crd_validator(path: Path) -> jsonschema.protocols.Validator:
    """One compiled validator per vendored schema (the InferenceService schema is 600 kB)."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


def unknown_fields(value: object, schema: dict, path: str = "") -> list[str]:
    """Fields a structural CRD schema does not declare: the API server prunes them, `kubectl apply` (strict field
    validation) refuses them, and a typo would silently change nothing."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict) and "properties" in schema:
        found = []
        for key, item in value.items():
            if key in schema["properties"]:
                found += unknown_fields(item, schema["properties"][key], f"{path}.{key}")
            elif "additionalProperties" not in schema:
                found.append(f"{path}.{key}")
        return found
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        return [
            f
            for key, item in value.items()
            for f in unknown_fields(item, schema["additionalProperties"], f"{path}.{key}")
        ]
    if isinstance(value, list) and "items" in schema:
        return [f for i, item in enumerate(value) for f in unknown_fields(item, schema["items"], f"{path}[{i}]")]
    return []


def validate(obj: dict) -> None:
    crd = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if crd is None:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return
    # A custom resource: the CRD's schema covers spec/status; metadata is the API server's ObjectMeta.
    validator = crd_validator(crd)
    validator.validate(obj)
    body = {key: item for key, item in obj.items() if key not in ("apiVersion", "kind", "metadata")}
    unknown = unknown_fields(body, validator.schema)
    if unknown:
        raise jsonschema.ValidationError(f"fields the CRD does not declare: {unknown}")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", obj["metadata"]["name"]), obj["metadata"]["name"]


def test_every_object_validates_against_the_cluster_schemas(combo: tuple[dict, Path]) -> None:
    answers, project = combo
    objects = [obj for environment in ENVIRONMENTS for obj in release(answers, project, environment)]
    objects += documents((project / "deploy/kubernetes/namespaces.yaml").read_text())
    errors = []
    for obj in objects:
        try:
            validate(obj)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message} at {list(error.absolute_path)}")
    assert not errors, "\n".join(errors)


def test_a_wrong_field_fails_the_schema_checks() -> None:
    """The validators reject what a typo produces, for built-in kinds and for the custom resources."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "a", "imagePullPolcy": "Always"}]}}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    isvc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "x"}}
    with pytest.raises(jsonschema.ValidationError):
        validate({**isvc, "spec": {"predictor": {"scaleMetric": "gpu"}}})
    with pytest.raises(jsonschema.ValidationError, match="minReplica"):
        validate({**isvc, "spec": {"predictor": {"minReplica": 2}}})
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "x"}}
    with pytest.raises(jsonschema.ValidationError):
        validate({**monitor, "spec": {"podMetricsEndpoints": [{"port": 8000}]}})
    spark = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "ScheduledSparkApplication",
        "metadata": {"name": "x"},
    }
    template = {"type": "Python", "sparkVersion": "4.0.4", "mainApplicationFile": "local:///a.py"}
    template |= {"driver": {"cores": 1}, "executor": {"cores": 1}}
    validate({**spark, "spec": {"schedule": "0 6 * * *", "template": template}})
    with pytest.raises(jsonschema.ValidationError, match="serviceAcount"):
        driver = {"cores": 1, "serviceAcount": "x"}
        validate({**spark, "spec": {"schedule": "0 6 * * *", "template": {**template, "driver": driver}}})


def spark_release(answers: dict, project: Path, environment: str) -> list[dict]:
    """The objects CD applies with batch_engine = "spark" (the Terraform output make k8s-manifests reads)."""
    key = (str(project), f"{environment}-spark")
    if key not in _releases:
        path = k8s_manifests(project, answers["cloud_provider"], environment, K8S_BATCH_ENGINE="spark")
        _releases[key] = documents(path.read_text())
    return _releases[key]


# The object store's Hadoop connector the Spark image carries, and what Spark's configuration says of it.
SPARK_CONNECTORS = {
    "aws": ("HADOOP_CONNECTOR=org.apache.hadoop:hadoop-aws:3.4.1", "spark.hadoop.fs.s3a.aws.credentials.provider"),
    "gcp": ("GCS_CONNECTOR_VERSION=3.0.9", "spark.hadoop.fs.gs.impl"),
    "azure": (
        "HADOOP_CONNECTOR=org.apache.hadoop:hadoop-azure:3.4.1",
        "spark.hadoop.fs.azure.account.oauth2.token.file",
    ),
}


@pytest.mark.parametrize("cloud", sorted(set(CLOUDS) - {"none"}))
def test_spark_batch_replaces_the_cronjob_as_the_batch_identity(render, cloud: str) -> None:
    """batch_engine = "spark": one Spark application on the Spark Operator instead of the CronJob, on the same
    schedule, settings and cloud identity; only its driver may create pods, only its own pods reach it."""
    answers = next(a for a in KUBERNETES_COMBOS if a["cloud_provider"] == cloud)
    project = render(**answers)
    dockerfile = (project / "Dockerfile.spark").read_text()
    (spark_version,) = re.findall(r"^FROM spark:([0-9.]+)-scala[^@\s]+@sha256:[0-9a-f]{64}$", dockerfile, re.M)
    assert "WORKDIR /opt/app" in dockerfile and "> score.py" in dockerfile  # the application's local:// file
    lint = run([tool("hadolint"), "--failure-threshold", "info", "Dockerfile.spark"], project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for environment in ENVIRONMENTS:
        container = release(answers, project, environment)
        objects = spark_release(answers, project, environment)
        namespace = f"{SLUG}-{environment}"
        assert not by_kind(objects, "CronJob")
        cronjob = one(container, "CronJob", f"{SLUG}-batch")
        app = one(objects, "ScheduledSparkApplication", f"{SLUG}-batch")
        for obj in objects:
            validate(obj)
            assert obj["metadata"]["namespace"] == namespace, obj["kind"]
            assert obj["metadata"]["labels"]["environment"] == environment, obj["kind"]
        assert app["spec"]["schedule"] == cronjob["spec"]["schedule"]
        assert app["spec"]["concurrencyPolicy"] == "Forbid"
        template = app["spec"]["template"]
        assert template["image"] == f"{REPOSITORIES[cloud]}:{IMAGE_TAG}-spark"
        assert template["sparkVersion"] == spark_version
        assert (template["type"], template["mainApplicationFile"]) == ("Python", "local:///opt/app/score.py")
        assert template["restartPolicy"] == {"type": "Never"}
        connector, setting = SPARK_CONNECTORS[cloud]
        assert f"ARG {connector}" in dockerfile and setting in template["sparkConf"]
        assert "deps" not in template  # nothing is downloaded when a run starts
        settings = one(objects, "ConfigMap", f"{SLUG}-batch")
        assert settings["data"]["BATCH_INPUT_URI"].startswith(BUCKET_SCHEMES[cloud])
        pods = {role: template[role] for role in ("driver", "executor")}
        for role, pod in pods.items():
            assert pod["serviceAccount"] == f"{SLUG}-batch", role
            assert pod["envFrom"] == [{"configMapRef": {"name": settings["metadata"]["name"]}}], role
            assert pod["labels"].items() >= BATCH.items(), role
            assert (pod["labels"].get("azure.workload.identity/use") == "true") == (cloud == "azure"), role
            assert pod["securityContext"]["readOnlyRootFilesystem"] and pod["podSecurityContext"]["runAsNonRoot"]
        # the driver creates the executors; the executors never call the API
        assert pods["driver"]["template"]["spec"]["automountServiceAccountToken"] is True
        assert pods["executor"]["template"]["spec"]["automountServiceAccountToken"] is False
        role, binding = one(objects, "Role", f"{SLUG}-spark"), one(objects, "RoleBinding", f"{SLUG}-spark")
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{SLUG}-batch", "namespace": namespace}]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        granted = {resource for rule in role["rules"] for resource in rule["resources"]}
        assert granted == {"pods", "services", "configmaps", "persistentvolumeclaims"}
        assert all("*" not in rule["verbs"] + rule["apiGroups"] for rule in role["rules"])
        # only the application's own pods reach its driver and executors
        policies = [
            policy
            for policy in by_kind(objects, "NetworkPolicy")
            if selects(policy["spec"]["podSelector"], pods["driver"]["labels"])
        ]
        sources = [peer for policy in policies for rule in policy["spec"].get("ingress", []) for peer in rule["from"]]
        assert sources
        assert all(set(peer) == {"podSelector"} and selects(peer["podSelector"], BATCH) for peer in sources)
        # the service's objects are the container release's
        assert [o for o in objects if o["kind"] == "Deployment"] == [o for o in container if o["kind"] == "Deployment"]


SPARK_OUTPUT = "gs://customer-churn-data-staging/batch/output/predictions.csv"
FAKE_SPARK_OPERATOR = """#!/bin/sh
# Stand-in kubectl before a Spark Operator: `get scheduledsparkapplication` answers with the release's object
# ($STATE.scheduled), `create` keeps what it is given ($STATE.created), each `get sparkapplication` answers with the
# next state of $STATE.states (the last one stays), `delete` is only recorded.
echo "$*" >> "$STATE.calls"
case "$*" in
  *" get scheduledsparkapplication "*) cat "$STATE.scheduled" ;;
  *" create --filename -"*) cat > "$STATE.created" ;;
  *" get sparkapplication "*)
    state="$(head -n 1 "$STATE.states")"
    if [ "$(wc -l < "$STATE.states")" -gt 1 ]; then sed -i 1d "$STATE.states"; fi
    printf '{"status": {"applicationState": {"state": "%s", "errorMessage": "%s"}}}' "$state" "$ERROR" ;;
  *" delete sparkapplication "*) ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""


@pytest.mark.parametrize(
    ("states", "error", "timeout", "code", "said"),
    [
        (["SUBMITTED", "RUNNING", "COMPLETED"], "", 60, 0, f"COMPLETED; predictions in {SPARK_OUTPUT}"),
        (["RUNNING", "FAILED"], "driver container failed with ExitCode: 1", 60, 1, "FAILED: driver container failed"),
        (["RUNNING"], "", 0, 1, f"still RUNNING after 0 s, cancelled; see {SPARK_OUTPUT}.validation.json"),
    ],
    ids=["completed", "failed", "timed-out"],
)
def test_spark_batch_submit_runs_the_schedules_template_and_waits(
    render, tmp_path: Path, states: list[str], error: str, timeout: int, code: int, said: str
) -> None:
    """`make spark-batch-submit` on the cluster: one SparkApplication whose spec is the schedule's template (valid
    for the operator's schema), waited for until it ends; a failure exits 1 with the operator's reason, a run past
    the timeout is deleted. kubectl is a stand-in: no cluster or Spark Operator can run here."""
    answers = next(a for a in KUBERNETES_COMBOS if a["cloud_provider"] == "gcp")
    project = render(**answers)
    (scheduled,) = by_kind(spark_release(answers, project, "staging"), "ScheduledSparkApplication")
    state = tmp_path / "operator"
    Path(f"{state}.scheduled").write_text(json.dumps(scheduled))
    Path(f"{state}.states").write_text("\n".join(states) + "\n")
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_SPARK_OPERATOR)
    kubectl.chmod(0o755)
    variables = [f"KUBECTL={kubectl}", "RUN=", "SPARK_INTERVAL=0", f"SPARK_TIMEOUT={timeout}"]
    variables.append(f"K8S_BATCH_OUTPUT_URI={SPARK_OUTPUT}")  # else read from `terraform output`
    environment = {
        **os.environ,
        "STATE": str(state),
        "ERROR": error,
        "PYTHONPATH": str(project / "src"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = run(
        ["make", "--no-print-directory", "spark-batch-submit", "ENV=staging", *variables], project, env=environment
    )
    # make fails with its own code; the module's message says which failure it was
    assert (result.returncode == 0) == (code == 0), result.stdout + result.stderr
    assert said in result.stdout + result.stderr

    created = json.loads(Path(f"{state}.created").read_text())
    assert created["kind"] == "SparkApplication" and created["spec"] == scheduled["spec"]["template"]
    assert re.fullmatch(rf"{SLUG}-batch-manual-\d{{8}}-\d{{6}}", created["metadata"]["name"])
    template_schema = crd_validator(CRD_SCHEMAS[(scheduled["apiVersion"], scheduled["kind"])]).schema
    jsonschema.validate(created["spec"], template_schema["properties"]["spec"]["properties"]["template"])
    calls = Path(f"{state}.calls").read_text().splitlines()
    assert all(call.startswith(f"--namespace {SLUG}-staging ") for call in calls), calls
    deleted = [call for call in calls if " delete sparkapplication " in call]
    assert deleted == (
        [f"--namespace {SLUG}-staging delete sparkapplication {created['metadata']['name']} --wait=false"]
        if timeout == 0
        else []
    )


def test_an_unknown_batch_engine_is_refused(render) -> None:
    answers = next(a for a in KUBERNETES_COMBOS if a["cloud_provider"] == "aws")
    project = render(**answers)
    command = ["make", "--no-print-directory", "k8s-manifests", "ENV=staging", f"IMAGE_TAG={IMAGE_TAG}"]
    result = run([*command, "K8S_BATCH_ENGINE=flink"], project)
    assert result.returncode != 0 and "batch_engine is container or spark, not 'flink'" in result.stderr


def test_checkov_finds_nothing_on_the_release_manifests(render, tmp_path: Path) -> None:
    """checkov's Kubernetes policies on what CD applies, every render and environment in one checkov process."""
    seen: set[str] = set()
    for answers in KUBERNETES_COMBOS:
        project = render(**answers)
        sources = [
            (environment, k8s_manifests(project, answers["cloud_provider"], environment).read_text())
            for environment in ENVIRONMENTS
        ]
        spark = k8s_manifests(project, answers["cloud_provider"], "production", K8S_BATCH_ENGINE="spark")
        sources.append(("production-spark", spark.read_text()))
        sources.append(("namespaces", (project / "deploy/kubernetes/namespaces.yaml").read_text()))
        for label, text in sources:
            digest = hashlib.sha256(text.encode()).hexdigest()[:12]
            if digest not in seen:
                seen.add(digest)
                (tmp_path / f"{combo_id(answers)}-{label}-{digest}.yaml").write_text(text)
    skips = [
        (path.name, obj["kind"], value)
        for path in sorted(tmp_path.glob("*.yaml"))
        for obj in documents(path.read_text())
        for key, value in obj["metadata"].get("annotations", {}).items()
        if CHECKOV_SKIP.match(key)
    ]
    unexplained = [skip for skip in skips if len(skip[2].partition("=")[2].split()) < MIN_REASON_WORDS]
    assert not unexplained, f"checkov skips without a reason: {unexplained}"

    result = run(
        [tool("checkov"), "-d", str(tmp_path), "--framework", "kubernetes", "--skip-download", "--quiet", "-o", "json"],
        tmp_path,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summary = {key: sum(r.get("summary", {}).get(key, 0) for r in reports) for key in ("passed", "failed", "skipped")}
    print(f"checkov kubernetes on {len(seen)} manifest files: {summary}, inline skips: {skips}")
    failed = [
        f"{check['check_id']} {check['resource']} ({Path(check['file_path']).name}): {check['check_name']}"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    parsing_errors = [error for report in reports for error in report.get("results", {}).get("parsing_errors", [])]
    assert not parsing_errors, f"checkov could not parse {parsing_errors}"
    assert summary["passed"] > 100, f"checkov checked almost nothing: {summary}"
    assert not failed, f"{len(failed)} failed checkov checks:\n" + "\n".join(failed)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_selectors_match_the_pods(combo: tuple[dict, Path], environment: str) -> None:
    answers, project = combo
    objects = release(answers, project, environment)
    pods = {owner: labels for owner, labels, _ in pod_specs(objects)}
    server = pods["InferenceService" if answers["kserve"] else "Deployment"]
    assert SERVER.items() <= server.items() and BATCH.items() <= pods["CronJob"].items()
    if not answers["kserve"]:
        deployment = one(objects, "Deployment")
        assert deployment["spec"]["selector"]["matchLabels"] == SERVER
        service = one(objects, "Service")
        assert service["spec"]["selector"] == SERVER
        assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert selects(one(objects, "PodDisruptionBudget")["spec"]["selector"], server)
    assert not selects(one(objects, "PodDisruptionBudget")["spec"]["selector"], pods["CronJob"])
    policies = {obj["metadata"]["name"]: obj for obj in by_kind(objects, "NetworkPolicy")}
    assert selects(policies[SLUG]["spec"]["podSelector"], server)
    assert selects(policies[f"{SLUG}-batch"]["spec"]["podSelector"], pods["CronJob"])
    assert "ingress" not in policies[f"{SLUG}-batch"]["spec"], "nothing may connect to the batch job"
    sources = [
        (peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], rule["ports"])
        for rule in policies[SLUG]["spec"]["ingress"]
        for peer in rule["from"]
    ]
    expected = ["ingress-nginx", "monitoring"] if answers["monitoring"] else ["ingress-nginx"]
    assert [namespace for namespace, _ in sources] == expected
    port_of = {"ingress-nginx": "http", "monitoring": "metrics"}  # the scraper reaches the metrics port only
    assert all(ports == [{"port": port_of[namespace], "protocol": "TCP"}] for namespace, ports in sources)
    if answers["monitoring"]:
        assert selects(one(objects, "PodMonitor")["spec"]["selector"], server)
    for owner, labels, spec in pod_specs(objects):
        account = spec["serviceAccountName"]
        assert account == (f"{SLUG}-batch" if owner == "CronJob" else SLUG)
        assert any(sa["metadata"]["name"] == account for sa in by_kind(objects, "ServiceAccount"))
        assert ("azure.workload.identity/use" in labels) == (answers["cloud_provider"] == "azure"), owner


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_autoscaling_bounds(combo: tuple[dict, Path], environment: str) -> None:
    answers, project = combo
    objects = release(answers, project, environment)
    if answers["kserve"]:
        predictor = one(objects, "InferenceService")["spec"]["predictor"]
        low, high = predictor["minReplicas"], predictor["maxReplicas"]
        assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("cpu", 70)
        assert one(objects, "InferenceService")["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    else:
        hpa = one(objects, "HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": SLUG}
        assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]
        low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
        assert "replicas" not in one(objects, "Deployment")["spec"], "the HPA owns the replica count"
    assert 1 <= low <= high
    if environment == "production":
        assert low >= 2, "production keeps two pods, so a node drain or a zone outage leaves one serving"
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def app_routes(project: Path) -> set[str]:
    source = (project / "src" / PACKAGE / "serving" / "app.py").read_text(encoding="utf-8")
    routes = set(re.findall(r'add_api_route\(\s*"(/[^"]*)"', source))
    assert {"/health", "/ready", "/predict"} <= routes, routes
    assert "/metrics" not in routes, "/metrics is served on METRICS_PORT, not among the app's routes"
    return routes


def containers(spec: dict) -> list[dict]:
    return spec["containers"] + spec.get("initContainers", [])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_pods_follow_the_service_and_the_dockerfile(combo: tuple[dict, Path], environment: str) -> None:
    answers, project = combo
    objects = release(answers, project, environment)
    routes = app_routes(project)
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    server_main = (project / "src" / PACKAGE / "serving" / "__main__.py").read_text(encoding="utf-8")
    (drain,) = map(int, re.findall(r"timeout_graceful_shutdown=(\d+)", server_main))
    image_threads = dict(re.findall(r"\b([A-Z]+_NUM_THREADS)=(\d+)", dockerfile))
    assert image_threads, "the Dockerfile pins no thread pool"
    # The image CD builds: <the environment's image repository>:<the commit>@<the digest the image job pushed>.
    image = f"{REPOSITORIES[answers['cloud_provider']]}:{IMAGE_TAG}@{IMAGE_DIGEST}"

    for owner, _, spec in pod_specs(objects):
        assert spec["automountServiceAccountToken"] is False, owner
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] and pod_security["runAsUser"] == 10001, owner
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        mounts = {volume["name"]: volume for volume in spec["volumes"]}
        for container in containers(spec):
            where = f"{owner}/{container['name']}"
            assert container["image"] == image, where
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= resources.get(kind, {}).keys(), f"{where}: {kind}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"] == {"drop": ["ALL"]} and security["runAsNonRoot"] is True, where
            (tmp,) = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
            assert "emptyDir" in mounts[tmp["name"]], f"{where}: /tmp must be a writable emptyDir"
            env = {item["name"]: item for item in container.get("env", [])}
            for variable, value in image_threads.items():
                assert env[variable]["value"] == value, f"{where}: {variable} differs from the Dockerfile's"
        if owner == "CronJob":
            (batch,) = spec["containers"]
            assert batch["command"] == ["python", "-m", f"{PACKAGE}.batch"]
            assert "--group batch" in dockerfile, "the CronJob runs the batch command: the image needs its group"
            continue
        (server,) = spec["containers"]
        assert server["name"] == ("kserve-container" if owner == "InferenceService" else "app")
        ports = [(port["name"], port["containerPort"]) for port in server["ports"]]
        assert ports == [("http", 8000), ("metrics", 9100)], "the service's port, then the metrics port"
        assert "EXPOSE 8000 9100" in dockerfile
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert server[probe]["httpGet"]["path"] in routes, f"{owner}: {probe} on a route the app lacks"
            assert server[probe]["httpGet"]["port"] in ("http", 8000)
        assert server["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert server["livenessProbe"]["httpGet"]["path"] == "/health"
        pre_stop = server["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop > 0 and spec["terminationGracePeriodSeconds"] >= pre_stop + drain, (
            f"{owner}: grace period {spec['terminationGracePeriodSeconds']}s < preStop {pre_stop}s + drain {drain}s"
        )
        workers = {item["name"]: item for item in server["env"]}["WEB_CONCURRENCY"]["valueFrom"]["resourceFieldRef"]
        assert workers == {"containerName": server["name"], "resource": "limits.cpu", "divisor": "1"}
        zones = [c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert zones and selects(zones[0]["labelSelector"], SERVER)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_cloud_values_reach_the_release(combo: tuple[dict, Path], environment: str) -> None:
    answers, project = combo
    cloud = answers["cloud_provider"]
    objects = release(answers, project, environment)
    annotation = ANNOTATIONS[cloud]
    accounts = {
        sa["metadata"]["name"]: sa["metadata"].get("annotations", {}) for sa in by_kind(objects, "ServiceAccount")
    }
    assert set(accounts) == {SLUG, f"{SLUG}-batch"}
    assert accounts[SLUG][annotation] != accounts[f"{SLUG}-batch"][annotation], "one cloud identity per workload"
    ingress = one(objects, "Ingress")
    host = f"churn.{environment}.example.org"
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [host]
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": f"{SLUG}-tls"}]
    backend = f"{SLUG}-predictor" if answers["kserve"] else SLUG
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert {path["backend"]["service"]["name"] for path in paths} == {backend}
    assert {path["path"] for path in paths} <= app_routes(project), "/metrics stays in the cluster"
    (batch_config,) = [cm for cm in by_kind(objects, "ConfigMap") if cm["metadata"]["name"].startswith(f"{SLUG}-batch")]
    assert all(
        batch_config["data"][key].startswith(BUCKET_SCHEMES[cloud]) for key in ("BATCH_INPUT_URI", "BATCH_OUTPUT_URI")
    )
    assert ("AZURE_STORAGE_ACCOUNT_NAME" in batch_config["data"]) == (cloud == "azure")
    (settings,) = [cm for cm in by_kind(objects, "ConfigMap") if cm["metadata"]["name"].startswith(f"{SLUG}-settings")]
    assert settings["data"]["APP_ENV"] == environment
    # Internal by default: the class of the internal controller, unless Terraform's ingress_class says otherwise.
    assert ingress["spec"]["ingressClassName"] == "nginx-internal"
    assert settings["data"]["AUTH_MODE"] == "none", "the service's auth mode is set where the boundary is known"
    # The log shipper uploads the sampled inference log to the prefix drift reads, with the pod's workload identity
    # (the server's service account is the one bound to the cloud identity that may write there: Terraform).
    bucket = "data" if cloud == "azure" else f"{SLUG}-data-{environment}"
    assert settings["data"]["INFERENCE_LOG_URI"] == f"{BUCKET_SCHEMES[cloud]}{bucket}/inference/"
    assert ("AZURE_STORAGE_ACCOUNT_NAME" in settings["data"]) == (cloud == "azure")
    assert int(settings["data"]["INFERENCE_LOG_MAX_BYTES"]) < 256 * 1024 * 1024, "the backlog fits the pod's /tmp"


def test_a_public_ingress_is_an_explicit_choice(render, tmp_path: Path) -> None:
    answers = KUBERNETES_COMBOS[0]
    project = render(**answers)
    copy = tmp_path / "project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build", ".venv"))
    manifests = k8s_manifests(copy, answers["cloud_provider"], "production", K8S_INGRESS_CLASS="nginx")
    public = documents(manifests.read_text())
    assert one(public, "Ingress")["spec"]["ingressClassName"] == "nginx"
    with pytest.raises(AssertionError, match="unexpected characters"):
        k8s_manifests(copy, answers["cloud_provider"], "production", K8S_INGRESS_CLASS="nginx; rm -rf /")
    terraform = project / "infra" / "terraform" / answers["cloud_provider"]
    variables = (terraform / "serving_kubernetes.tf").read_text(encoding="utf-8")
    assert re.search(r'variable "ingress_class" \{[^}]*default\s*=\s*"nginx-internal"', variables)


def test_release_refuses_to_build_without_a_host(render) -> None:
    answers = KUBERNETES_COMBOS[0]
    project = render(**answers)
    with pytest.raises(AssertionError, match="service_domain is empty"):
        k8s_manifests(project, answers["cloud_provider"], "staging", K8S_HOST="", K8S_STORAGE_ACCOUNT="x")
    with pytest.raises(AssertionError, match="unexpected characters"):
        k8s_manifests(project, answers["cloud_provider"], "staging", K8S_HOST="churn.example.org'; rm -rf /")


def test_kserve_serves_the_same_image_as_a_custom_predictor(render) -> None:
    answers = next(answers for answers in KUBERNETES_COMBOS if answers["kserve"])
    project = render(**answers)
    objects = release(answers, project, "production")
    isvc = one(objects, "InferenceService")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    (container,) = isvc["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container" and container["image"].endswith(f":{IMAGE_TAG}@{IMAGE_DIGEST}")
    assert not by_kind(objects, "Deployment") and not by_kind(objects, "HorizontalPodAutoscaler")
    assert not [svc for svc in by_kind(objects, "Service")], "KServe creates the predictor's Service"
    # Deployment and predictor keep the same pod settings: the variant differs only in who owns the pods.
    base = yaml.safe_load((project / "deploy/kubernetes/base/deployment.yaml").read_text())["spec"]["template"]["spec"]
    predictor = isvc["spec"]["predictor"]
    for key in ("securityContext", "terminationGracePeriodSeconds", "automountServiceAccountToken"):
        assert predictor[key] == base[key], key
    (app,) = base["containers"]
    for key in ("resources", "securityContext", "lifecycle", "volumeMounts"):
        assert container[key] == app[key], key


def test_scrape_job_is_the_one_the_alert_rules_select(render) -> None:
    answers = next(answers for answers in KUBERNETES_COMBOS if answers["monitoring"])
    project = render(**answers)
    slo = yaml.safe_load((project / "monitoring/slo.yaml").read_text())
    rules = (project / "monitoring/prometheus/rules/slo.rules.yml").read_text()
    monitor = one(release(answers, project, "staging"), "PodMonitor")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")  # the internal port, not "http"
    relabel = {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"] if r.get("action") == "replace"}
    assert relabel["job"] == slo["scrape_job"]
    assert f'up{{job="{slo["scrape_job"]}"}}' in rules


def test_workload_identities_trust_exactly_these_service_accounts(render) -> None:
    """The Terraform of each cloud names the same namespace and service accounts as the manifests."""
    for cloud in sorted(set(CLOUDS) - {"none"}):
        answers = next(answers for answers in KUBERNETES_COMBOS if answers["cloud_provider"] == cloud)
        project = render(**answers)
        module = (project / f"infra/terraform/{cloud}/serving_kubernetes.tf").read_text()
        assert "kubernetes_namespace = local.name" in module, cloud  # <project>-<environment>, as the overlays
        assert re.search(r'server\s*=\s*var\.project\n\s*batch\s*=\s*"\$\{var\.project\}-batch"', module), cloud
        subject = {
            "aws": '"system:serviceaccount:${local.kubernetes_namespace}:${each.value}"',
            "gcp": '"serviceAccount:${local.workload_pool}[${local.kubernetes_namespace}/${each.value}]"',
            "azure": '"system:serviceaccount:${local.kubernetes_namespace}:${each.value}"',
        }[cloud]
        assert subject in module, cloud
        for environment in ENVIRONMENTS:
            overlay = yaml.safe_load((project / f"deploy/kubernetes/{environment}/kustomization.yaml").read_text())
            assert overlay["namespace"] == f"{SLUG}-{environment}"


FAKE_KUBECTL = """#!/bin/sh
# Stand-in kubectl: records each call, answers `get ... jsonpath` with the image in $STATE, and moves it like
# `rollout undo` (to $UNDO_TO) and `set image` would. The batch job is a Spark application when $STATE.spark exists.
echo "$*" >> "$STATE.calls"
case "$*" in
  *" get scheduledsparkapplication/"*) test -e "$STATE.spark" ;;
  *" get "*) cat "$STATE" ;;
  *"rollout undo"*) cp "$STATE.undo" "$STATE" ;;
  *"set image deployment/"*) printf '%s' "${*##*app=}" > "$STATE" ;;
esac
"""


SPARK_ROLLBACK = (
    "patch scheduledsparkapplication/customer-churn-batch --type merge"
    ' --patch {"spec": {"template": {"image": "old-spark"}}}'
)


@pytest.mark.parametrize(
    ("serving", "undo_to", "spark", "expected"),
    [
        ("new", "old", False, ["rollout undo", "rollout status", "set image cronjob/customer-churn-batch batch=old"]),
        ("old", "older", False, ["set image cronjob/customer-churn-batch batch=old"]),
        (
            "new",
            "older",
            False,
            ["rollout undo", "rollout status", "set image deployment", "rollout status", "set image cronjob"],
        ),
        ("new", "old", True, ["rollout undo", "rollout status", SPARK_ROLLBACK]),
    ],
    ids=["undo", "nothing-to-undo", "undo-overshoots", "spark-batch"],
)
def test_rollback_returns_to_the_previous_image(
    render, tmp_path: Path, serving: str, undo_to: str, spark: bool, expected: list[str]
) -> None:
    """`make k8s-rollback`: undo only what this run changed, and end on PREVIOUS_IMAGE whatever undo did; the batch
    job follows, as a CronJob (set image) or a Spark application (its image, <previous>-spark)."""
    answers = next(answers for answers in KUBERNETES_COMBOS if not answers["kserve"])
    project = render(**answers)
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    state = tmp_path / "image"
    state.write_text(serving)
    (tmp_path / "image.undo").write_text(undo_to)
    if spark:
        (tmp_path / "image.spark").touch()
    result = run(
        ["make", "--no-print-directory", "k8s-rollback", "ENV=production", "PREVIOUS_IMAGE=old", f"KUBECTL={kubectl}"],
        project,
        env={**os.environ, "STATE": str(state)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [line for line in (tmp_path / "image.calls").read_text().splitlines() if " get " not in line]
    assert len(calls) == len(expected), calls
    for call, fragment in zip(calls, expected, strict=True):
        assert call.startswith(f"--namespace {SLUG}-production ") and fragment in call, (call, fragment)
    assert state.read_text() == "old"
