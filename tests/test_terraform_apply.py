"""The AWS root module applied, re-planned and destroyed against moto's server mode on 127.0.0.1.

Static checks and mocked plans (tests/test_terraform_plan.py) cannot see what only an apply shows: a missing
dependency between two resources, an argument the API refuses, an attribute that never settles (a perpetual diff).
For the container, batch and managed modes, with staging's values and an image deployed (batch with tracking_server
self_hosted, so the MLflow server of tracking_server.tf is applied too: ECS, load balancer, Aurora, NAT gateway,
Secrets Manager), this test:

1. starts `moto_server` on a free port of 127.0.0.1 (nothing else is contacted: every endpoint of the provider is
   pointed at it by an override file only this test writes, in a copy of the render);
2. `terraform apply` must succeed; every resource that carries tags must carry the provider's default tags;
3. a second `terraform plan -detailed-exitcode` must exit 0 (no change: no perpetual diff);
4. `terraform destroy` must succeed and leave no resource in the state; then the server is stopped.

Each mode also carries an orchestrator, so every orchestrator's AWS module is applied once without a row of its
own: container carries kubeflow (the IRSA role of the pipeline's pods) and the feature store (the DynamoDB online
table); managed carries sagemaker (experiment_tracking none: its pipeline and job roles); batch carries airflow.
SageMaker's managed MLflow (tracking_server managed) is not applied: moto has no CreateMlflowTrackingServer; its
mocked plans (tests/tracking_sagemaker.tftest.hcl) cover it. Nor is MWAA: moto has no CreateEnvironment of MWAA, so
orchestration_airflow.tf is applied without a pipeline image, which is when the environment, its requirements and
startup objects, the pipeline's task definition and their endpoints wait (everything else of it is applied: the
DAG bucket, the roles and their policies, the security groups; moto's plain HTTP would also meet the bucket's
TLS-only policy on an upload); its mocked plans (tests/orchestration_airflow.tftest.hcl) cover the rest. What moto
cannot model is listed in EMULATOR_EXCEPTIONS (resource address -> what the test's copy changes, and why); nothing
else is changed or skipped. The provider binary comes from the local mirror (TF_PLUGIN_DIR).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto_server import running_moto
from terraform_hcl import RootModule, module_copy
from test_terraform_plan import PLUGIN_DIR, TERRAFORM, plugin_cache, provider_available

pytestmark = pytest.mark.slow

MODES = ("container", "batch", "managed")
# What a row must have applied for the answers it carries: each orchestrator's roles (and network), the self-hosted
# tracking server's core.
ORCHESTRATOR_RESOURCES = {
    "airflow": {
        "aws_iam_role.airflow",
        "aws_iam_role_policy.airflow",
        "aws_iam_role.pipeline_task",
        "aws_iam_role_policy.pipeline_task",
        "aws_security_group.airflow",
    },
    "kubeflow": {"aws_iam_role.pipeline[0]"},
    "sagemaker": {
        "aws_iam_role.sagemaker_pipeline",
        "aws_iam_role.sagemaker_job",
        "aws_iam_role_policy.sagemaker_pipeline",
        "aws_iam_role_policy.sagemaker_job",
    },
}
TRACKING_SERVER_RESOURCES = {
    "aws_rds_cluster.tracking[0]",
    "aws_ecs_service.tracking[0]",
    "aws_lb.tracking[0]",
    "aws_nat_gateway.tracking[0]",
    "aws_s3_bucket.tracking[0]",
    "aws_ecs_task_definition.tracking[0]",
}
REQUIRED_TAGS = {"project", "environment", "owner", "cost_center", "managed_by"}
IMAGE_DIGEST = "sha256:" + "c0ffee" * 10 + "c0ff"
IMAGE_TAG = "0123456789abcdef0123456789abcdef01234567"
REGION = "us-east-1"
# Services the module uses (provider `endpoints` names). A service missing here would reach real AWS and fail on the
# fake credentials: the apply fails instead of silently leaving 127.0.0.1.
SERVICES = (
    "acm", "appautoscaling", "budgets", "cloudwatch", "dynamodb", "ec2", "ecr", "ecs", "elbv2", "events", "iam", "kms",
    "logs", "rds", "s3", "sagemaker", "scheduler", "secretsmanager", "sns", "sts", "wafv2",
)  # fmt: skip
# Emulator limits: resource address -> (HCL the test's override file puts in that resource, why). Everything here is
# a gap of moto 5.x against the real API, found by this test; the module itself is applied unchanged otherwise.
_NOT_CREATED = "count = 0"
EMULATOR_EXCEPTIONS: dict[str, tuple[str, str]] = {
    "aws_budgets_budget.monthly": (
        _NOT_CREATED,
        "moto's Budgets has no DescribeSubscribersForNotification, which the provider reads after each create "
        "(it retries the 500 until its timeout); the mocked plans assert the budget instead",
    ),
    "aws_flow_log.main": (
        _NOT_CREATED,
        "moto's CreateFlowLogs looks the ARN's whole resource part (`<bucket>/vpc/`) up as a bucket name, so an S3 "
        "destination with a key prefix, which AWS accepts, is refused",
    ),
    "aws_appautoscaling_target.api": (
        _NOT_CREATED,
        "moto's Application Auto Scaling has no ListTagsForResource, which the provider calls to read a target's "
        "tags; the mocked plans assert the bounds instead",
    ),
    "aws_appautoscaling_policy.api_cpu": (_NOT_CREATED, "needs aws_appautoscaling_target.api (above)"),
    "aws_appautoscaling_policy.api_requests": (_NOT_CREATED, "needs aws_appautoscaling_target.api (above)"),
    "aws_appautoscaling_target.endpoint": (
        _NOT_CREATED,
        "moto's Application Auto Scaling has no ListTagsForResource (as aws_appautoscaling_target.api)",
    ),
    "aws_appautoscaling_policy.endpoint_invocations": (
        _NOT_CREATED,
        "needs aws_appautoscaling_target.endpoint (above)",
    ),
    "aws_ecs_service.api": (
        "wait_for_steady_state = false\n  lifecycle {\n    ignore_changes = [desired_count, "
        "availability_zone_rebalancing, enable_ecs_managed_tags, health_check_grace_period_seconds]\n  }",
        "moto's ECS never starts tasks, so a service never reaches a steady state (the service is still created), "
        "and DescribeServices returns no availabilityZoneRebalancing, enableECSManagedTags or "
        "healthCheckGracePeriodSeconds (desired_count is ignored by the module itself)",
    ),
    "aws_sagemaker_model.api": (
        "lifecycle {\n    ignore_changes = [enable_network_isolation, vpc_config]\n  }",
        "moto's DescribeModel returns no EnableNetworkIsolation and an empty VpcConfig, which would replace the model",
    ),
    "aws_sagemaker_endpoint_configuration.api": (
        "lifecycle {\n    ignore_changes = [data_capture_config, production_variants]\n  }",
        "moto's DescribeEndpointConfig returns an empty DataCaptureConfig and variants without their defaults",
    ),
    "aws_sagemaker_endpoint.api": (
        "lifecycle {\n    ignore_changes = [deployment_config]\n  }",
        "moto's DescribeEndpoint returns no DeploymentConfig (blue/green policy and rollback alarm)",
    ),
    "aws_s3_bucket.logs": (
        "force_destroy = true",
        "moto, like S3, writes the data and model buckets' access logs into it, and the module keeps a log bucket "
        "that holds logs on destroy (force_destroy = false) on purpose",
    ),
    "aws_kms_key.main": (
        "lifecycle {\n    ignore_changes = [rotation_period_in_days]\n  }",
        "moto's GetKeyRotationStatus returns no RotationPeriodInDays, so the 365 days always look unset",
    ),
    "aws_ecs_service.tracking": (
        "wait_for_steady_state = false\n  lifecycle {\n    ignore_changes = [desired_count, "
        "availability_zone_rebalancing, enable_ecs_managed_tags, health_check_grace_period_seconds]\n  }",
        "moto's ECS never starts tasks (as aws_ecs_service.api)",
    ),
    "aws_rds_cluster.tracking": (
        "lifecycle {\n    ignore_changes = [scaling_configuration]\n  }",
        "moto's DescribeDBClusters returns a Serverless v1 ScalingConfiguration for every cluster, which the module "
        "(Serverless v2, serverlessv2_scaling_configuration) never sets",
    ),
    "aws_rds_cluster_instance.tracking": (
        "lifecycle {\n    ignore_changes = [performance_insights_enabled, performance_insights_kms_key_id, "
        "performance_insights_retention_period]\n  }",
        "moto's DescribeDBInstances does not return the Performance Insights settings it was given",
    ),
    "aws_s3_bucket_notification.tracking": (
        "lifecycle {\n    ignore_changes = [eventbridge]\n  }",
        "moto's GetBucketNotificationConfiguration drops the (empty) EventBridgeConfiguration it stored",
    ),
    "aws_s3_bucket_notification.project": (
        "lifecycle {\n    ignore_changes = [eventbridge]\n  }",
        "moto's GetBucketNotificationConfiguration drops the (empty) EventBridgeConfiguration it stored",
    ),
}
# Security-group rules that reference another group or a prefix list: moto returns them without their description.
RULE_DESCRIPTION_GAP = (
    "moto's DescribeSecurityGroupRules returns no description for a rule that references a group or prefix list"
)
RULES_REFERENCING_GROUPS = (
    "aws_vpc_security_group_egress_rule.alb_to_tasks",
    "aws_vpc_security_group_ingress_rule.api_tasks_from_alb",
    "aws_vpc_security_group_egress_rule.api_tasks_to_endpoints",
    "aws_vpc_security_group_egress_rule.api_tasks_to_s3",
    "aws_vpc_security_group_egress_rule.api_tasks_to_dynamodb",
    "aws_vpc_security_group_egress_rule.batch_tasks_to_endpoints",
    "aws_vpc_security_group_egress_rule.batch_tasks_to_s3",
    "aws_vpc_security_group_ingress_rule.airflow_self",
    "aws_vpc_security_group_egress_rule.airflow_self",
    "aws_vpc_security_group_egress_rule.airflow_to_endpoints",
    "aws_vpc_security_group_egress_rule.airflow_to_s3",
    "aws_vpc_security_group_egress_rule.pipeline_tasks_to_endpoints",
    "aws_vpc_security_group_egress_rule.pipeline_tasks_to_s3",
    "aws_vpc_security_group_egress_rule.tracking_alb_to_proxy",
    "aws_vpc_security_group_ingress_rule.tracking_task_from_alb",
    "aws_vpc_security_group_egress_rule.tracking_task_to_db",
    "aws_vpc_security_group_ingress_rule.tracking_db_from_task",
)
for _address in RULES_REFERENCING_GROUPS:
    EMULATOR_EXCEPTIONS[_address] = ("lifecycle {\n    ignore_changes = [description]\n  }", RULE_DESCRIPTION_GAP)

APPLY_TIMEOUT = 420
STEP_TIMEOUT = 300


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[str]:
    """A fresh moto server on 127.0.0.1 (AWS managed policies loaded, as the CI roles attach two); its URL."""
    with running_moto(tmp_path, env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}) as url:
        yield url


def _declared(module: RootModule) -> set[str]:
    return {f"{rtype}.{name}" for rtype, name, _ in module.resources()}


def _override(url: str, exceptions: dict[str, tuple[str, str]]) -> str:
    endpoints = "\n".join(f'    {service:<14} = "{url}"' for service in SERVICES)
    provider = f"""# Written by tests/test_terraform_apply.py into its copy of the render: never part of a project.
terraform {{
  backend "local" {{}}
}}

provider "aws" {{
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  # The account id comes from moto's STS (GetCallerIdentity), as from AWS: ARNs and the key policy need it.
  skip_requesting_account_id = false
  s3_use_path_style          = true

  endpoints {{
{endpoints}
  }}
}}
"""
    resources = []
    for address, (body, reason) in exceptions.items():
        rtype, name = address.split(".")
        resources.append(f'# {reason}\nresource "{rtype}" "{name}" {{\n  {body}\n}}\n')
    return provider + "\n" + "\n".join(resources)


def _terraform(
    args: list[str], cwd: Path, env: dict[str, str], timeout: int
) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        [TERRAFORM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return result, time.monotonic() - started


def _certificate(url: str) -> str:
    """An ACM certificate in moto for the HTTPS listener (the load balancer refuses an ARN ACM does not know)."""
    import boto3

    acm = boto3.client(
        "acm", endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    return acm.request_certificate(DomainName="churn.example.com", ValidationMethod="DNS")["CertificateArn"]


def _oidc_variable(url: str) -> str:
    """The load balancer's OIDC login (api_auth's default): its client secret lives in Secrets Manager, as in use."""
    import boto3

    secrets = boto3.client(
        "secretsmanager", endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    arn = secrets.create_secret(Name="churn-oidc-client", SecretString="not-a-real-client-secret")["ARN"]
    login = "https://login.example.com"
    return (
        f'oidc={{issuer="{login}", authorization_endpoint="{login}/authorize", token_endpoint="{login}/token", '
        f'user_info_endpoint="{login}/userinfo", client_id="model-api", client_secret_arn="{arn}"}}'
    )


def _kubeflow_variable(url: str) -> str:
    """The IAM OIDC provider of the EKS cluster whose Kubeflow runs the pipeline (orchestration_kubeflow.tf)."""
    import boto3

    iam = boto3.client(
        "iam", endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    arn = iam.create_open_id_connect_provider(
        Url="https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E",
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
    )["OpenIDConnectProviderArn"]
    return f"-var=kubeflow_oidc_provider_arn={arn}"


def _tracking_variables(url: str) -> list[str]:
    """The self-hosted tracking server's settings (tracking_server.tf): its OIDC secrets in Secrets Manager."""
    import boto3

    secrets = boto3.client(
        "secretsmanager", endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    client = secrets.create_secret(Name="mlflow-oidc-client", SecretString="not-a-real-client-secret")["ARN"]
    cookie = secrets.create_secret(Name="mlflow-oidc-cookie", SecretString="not-a-real-cookie-secret")["ARN"]
    certificate = _certificate(url)
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/{}@" + IMAGE_DIGEST
    return [
        f'-var=tracking_oidc={{issuer="https://login.example.com", client_id="mlflow", client_secret_arn="{client}", '
        f'cookie_secret_arn="{cookie}", email_domains=["example.com"]}}',
        f"-var=tracking_server_image={image.format('mlflow')}",
        f"-var=tracking_proxy_image={image.format('oauth2-proxy')}",
        f"-var=tracking_certificate_arn={certificate}",
        "-var=tracking_domain=mlflow.example.com",
        '-var=tracking_allowed_ingress_cidrs=["0.0.0.0/0"]',
    ]


def _resources(state: dict) -> list[dict]:
    def walk(module: dict) -> Iterator[dict]:
        yield from module.get("resources", [])
        for child in module.get("child_modules", []):
            yield from walk(child)

    return [r for r in walk(state.get("values", {}).get("root_module", {})) if r["mode"] == "managed"]


@pytest.mark.parametrize("mode", MODES)
def test_apply_replan_destroy_against_moto(render, mode: str, moto: str, tmp_path: Path) -> None:
    if TERRAFORM is None or not provider_available("aws"):
        pytest.skip(f"terraform and hashicorp/aws not available offline (looked in {PLUGIN_DIR})")
    # batch also carries the self-hosted tracking server (the network it shares with the batch job included) and
    # orchestrator airflow; container orchestrator kubeflow and the feature store; managed orchestrator sagemaker
    # (which needs MLflow managed or off).
    tracking = {"tracking_server": "self_hosted"} if mode == "batch" else {}
    kubeflow = feast = mode == "container"
    answers: dict[str, str] = {"serving": mode}
    if mode == "batch":
        answers.update(orchestrator="airflow")
    elif mode == "container":
        answers.update(orchestrator="kubeflow", feature_store="feast")
    elif mode == "managed":
        answers.update(orchestrator="sagemaker", experiment_tracking="none")
    project = render(cloud_provider="aws", **answers, **tracking)
    workdir = module_copy(project / "infra" / "terraform" / "aws", tmp_path / "project")
    module = RootModule(workdir)
    exceptions = {address: why for address, why in EMULATOR_EXCEPTIONS.items() if address in _declared(module)}
    (workdir / "emulator_override.tf").write_text(_override(moto, exceptions), encoding="utf-8")

    env = {
        **os.environ,
        "TF_PLUGIN_CACHE_DIR": str(plugin_cache(tmp_path.parent)),
        "TF_IN_AUTOMATION": "true",
        "TF_INPUT": "false",
        # No credentials or profile of the machine may reach the provider; nothing but 127.0.0.1 is configured.
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_PROXY": "127.0.0.1",
    }
    env.pop("AWS_PROFILE", None)
    variables = ["-var-file=envs/staging.tfvars", f"-var=image_tag={IMAGE_TAG}", f"-var=image_digest={IMAGE_DIGEST}"]
    if mode == "container":
        variables += [f"-var=certificate_arn={_certificate(moto)}", f"-var={_oidc_variable(moto)}"]
    if tracking:
        variables += _tracking_variables(moto)
    if kubeflow:
        variables.append(_kubeflow_variable(moto))
    common = ["-input=false", "-no-color", "-parallelism=30"]
    timings: dict[str, float] = {}

    init, timings["init"] = _terraform(
        ["init", "-input=false", "-no-color", f"-plugin-dir={PLUGIN_DIR}"], workdir, env, STEP_TIMEOUT
    )
    assert init.returncode == 0, init.stdout + init.stderr

    apply, timings["apply"] = _terraform(["apply", "-auto-approve", *common, *variables], workdir, env, APPLY_TIMEOUT)
    assert apply.returncode == 0, f"{mode}: apply against moto failed:\n{apply.stdout[-6000:]}\n{apply.stderr[-6000:]}"

    show, _ = _terraform(["show", "-json"], workdir, env, STEP_TIMEOUT)
    assert show.returncode == 0, show.stderr
    applied = _resources(json.loads(show.stdout))
    untagged = [
        f"{r['address']}: {sorted(REQUIRED_TAGS - (r['values'].get('tags_all') or {}).keys())}"
        for r in applied
        if "tags_all" in r["values"] and not (r["values"].get("tags_all") or {}).keys() >= REQUIRED_TAGS
    ]
    assert not untagged, f"{mode}: resources without the default tags: {untagged}"
    tagged = [r for r in applied if "tags_all" in r["values"]]
    assert tagged, f"{mode}: no applied resource carries tags_all: the tag check would prove nothing"
    if kubeflow:
        (role,) = [r for r in applied if r["address"] == "aws_iam_role.pipeline[0]"]
        trust = json.loads(role["values"]["assume_role_policy"])["Statement"][0]
        assert trust["Principal"]["Federated"].endswith(
            "oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E"
        )

    plan, timings["plan"] = _terraform(["plan", "-detailed-exitcode", *common, *variables], workdir, env, STEP_TIMEOUT)
    assert plan.returncode == 0, (
        f"{mode}: the plan right after the apply is not empty (exit {plan.returncode}: 2 = changes, a perpetual "
        f"diff; 1 = error):\n{plan.stdout[-8000:]}\n{plan.stderr[-4000:]}"
    )

    destroy, timings["destroy"] = _terraform(
        ["destroy", "-auto-approve", *common, *variables], workdir, env, APPLY_TIMEOUT
    )
    assert destroy.returncode == 0, f"{mode}: destroy failed:\n{destroy.stdout[-6000:]}\n{destroy.stderr[-6000:]}"
    remaining, _ = _terraform(["state", "list"], workdir, env, STEP_TIMEOUT)
    assert remaining.stdout.strip() == "", f"{mode}: still in the state after destroy:\n{remaining.stdout}"

    if feast:
        tables = [r for r in applied if r["type"] == "aws_dynamodb_table"]
        assert [r["values"]["name"] for r in tables] == ["customer-churn-staging.customers"], tables
        table = tables[0]["values"]
        assert table["hash_key"] == "entity_id" and table["billing_mode"] == "PAY_PER_REQUEST", table
        assert table["point_in_time_recovery"][0]["enabled"] is True, table
        assert table["server_side_encryption"][0]["enabled"] is True, table

    created = {r["address"] for r in applied}
    expected = ORCHESTRATOR_RESOURCES[answers["orchestrator"]] | (TRACKING_SERVER_RESOURCES if tracking else set())
    assert expected <= created, f"{mode}: resources of its answers not applied: {sorted(expected - created)}"

    print(
        f"{mode}: {len(applied)} resources applied ({len(tagged)} tagged), "
        + ", ".join(f"{step} {seconds:.1f}s" for step, seconds in timings.items())
        + f"; emulator exceptions: {sorted(exceptions)}"
    )
