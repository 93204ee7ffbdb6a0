"""Security and contract properties of the generated AWS Terraform, read from the HCL (python-hcl2).

Formatting, checkov and `terraform validate` run for every cloud in tests/test_terraform.py; this module
checks what those cannot: tags reach every resource, every bucket is hardened, the CI trust names this
repository exactly, the registry is immutable, serving resources wait for an image tag, the infrastructure
agrees with the Dockerfile (port 8000, /health) and the serving mode's files. Plans against a mocked provider
(the module's own tests/*.tftest.hcl) run in tests/test_terraform_plan.py, an apply against moto in
tests/test_terraform_apply.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from terraform_hcl import RootModule, load

SERVING_MODES = ("container", "managed", "batch", "none")
REQUIRED_TAGS = {"project", "environment", "owner", "cost_center", "managed_by"}
REFERENCE = re.compile(r"aws_s3_bucket\.(?P<name>\w+)")
# Files that exist only for some serving modes (copier.yml `_exclude`); everything else is in every render.
MODE_FILES = {
    "container": {"serving_container.tf", "monitoring_container.tf", "ecs.tf", "network.tf", "network_public.tf"},
    "managed": {"serving_managed.tf", "monitoring_managed.tf"},
    "batch": {"serving_batch.tf", "monitoring_batch.tf", "spark_batch.tf", "ecs.tf", "network.tf"},
    "none": {"serving_none.tf"},
}
COMMON_FILES = {
    "budget.tf",
    "identity.tf",
    "kms.tf",
    "locals.tf",
    "monitoring.tf",
    "outputs.tf",
    "providers.tf",
    "registry.tf",
    "storage.tf",
    "variables.tf",
    "versions.tf",
}
# Resources that cost money or need an image: created only once var.image_tag is set (contract).
SERVING_RESOURCE_TYPES = {
    "aws_lb",
    "aws_lb_listener",
    "aws_lb_target_group",
    "aws_wafv2_web_acl",
    "aws_ecs_service",
    "aws_ecs_task_definition",
    "aws_appautoscaling_target",
    "aws_sagemaker_model",
    "aws_sagemaker_endpoint_configuration",
    "aws_sagemaker_endpoint",
    "aws_scheduler_schedule",
    "aws_cloudwatch_metric_alarm",
    "aws_cloudwatch_dashboard",
    "aws_cloudwatch_event_rule",
    "aws_vpc_endpoint",
}
ALWAYS_ON_EXCEPTIONS = {("aws_vpc_endpoint", "s3")}  # the S3 gateway endpoint is free


class Module(RootModule):
    """The parsed .tf files of one rendered root module, plus its auto-loaded answers."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.answers: dict[str, Any] = load(directory / "project.auto.tfvars")

    def data(self, data_type: str, name: str) -> dict[str, Any]:
        for block in self.blocks("data"):
            if name in block.get(data_type, {}):
                return block[data_type][name]
        raise KeyError(f"data.{data_type}.{name}")

    def locals(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for block in self.blocks("locals"):
            merged.update(block)
        return merged

    def for_bucket(self, resource_type: str, bucket: str) -> list[dict[str, Any]]:
        """Companion resources (encryption, ...) of aws_s3_bucket.<bucket>, by `bucket` or `for_each`."""
        found = []
        for _, _, body in self.resources(resource_type):
            source = str(body.get("for_each", "")) or str(body.get("bucket", ""))
            match = REFERENCE.search(source)
            if match and match["name"] == bucket:
                found.append(body)
        return found


@pytest.fixture(scope="module")
def aws(render) -> dict[str, Module]:
    """The AWS module of every serving mode (monitoring on), keyed by mode."""
    return {
        mode: Module(render(cloud_provider="aws", serving=mode) / "infra" / "terraform" / "aws")
        for mode in SERVING_MODES
    }


@pytest.fixture(scope="module")
def default(aws: dict[str, Module]) -> Module:
    return aws["container"]


def _one(items: list[Any]) -> Any:
    assert len(items) == 1, f"expected exactly one, got {items}"
    return items[0]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document.get("statement", [])


@pytest.mark.parametrize("mode", SERVING_MODES)
def test_files_follow_the_serving_mode(aws: dict[str, Module], mode: str) -> None:
    present = {path.name for path in aws[mode].directory.glob("*.tf")}
    assert present == COMMON_FILES | MODE_FILES[mode]


def test_monitoring_false_drops_the_alarm_files(render) -> None:
    module = render(cloud_provider="aws", serving="container", monitoring=False) / "infra" / "terraform" / "aws"
    present = {path.name for path in module.glob("*.tf")}
    assert not {name for name in present if name.startswith("monitoring")}
    assert "serving_container.tf" in present


# orchestrator sagemaker (copier.yml `_exclude`): the pipeline's roles, and their MLflow access with tracking managed
ORCHESTRATOR_FILES = {"orchestration_sagemaker.tf"}
ORCHESTRATOR_TRACKING_FILES = {"orchestration_sagemaker_tracking.tf"}


@pytest.mark.parametrize("tracking", [{"tracking_server": "managed"}, {"experiment_tracking": "none"}], ids=str)
def test_orchestrator_sagemaker_adds_its_roles(render, tracking: dict) -> None:
    directory = render(cloud_provider="aws", orchestrator="sagemaker", **tracking) / "infra" / "terraform" / "aws"
    present = {path.name for path in directory.glob("*.tf")}
    managed = tracking.get("tracking_server") == "managed"
    expected = ORCHESTRATOR_FILES | (ORCHESTRATOR_TRACKING_FILES if managed else set())
    assert present & (ORCHESTRATOR_FILES | ORCHESTRATOR_TRACKING_FILES) == expected
    assert (directory / "tests" / "orchestration_sagemaker.tftest.hcl").is_file()
    module = Module(directory)
    roles = {name: body for _, name, body in module.resources("aws_iam_role")}
    for role in ("sagemaker_pipeline", "sagemaker_job"):
        assert roles[role]["permissions_boundary"] == "${aws_iam_policy.boundary.arn}", role
    for document in ("sagemaker_pipeline", "sagemaker_job"):
        for statement in _statements(module.data("aws_iam_policy_document", document)):
            wildcard = [action for action in statement["actions"] if action.endswith(":*") or action == "*"]
            assert not wildcard, f"{document}/{statement['sid']}: {wildcard}"
            if "iam:PassRole" in statement["actions"]:
                assert statement["resources"] == ["${aws_iam_role.sagemaker_job.arn}"]
                assert _one(statement["condition"])["values"] == ["sagemaker.amazonaws.com"]


def test_dvc_has_no_sagemaker_pipeline(default: Module) -> None:
    present = {path.name for path in default.directory.glob("*.tf")}
    assert not present & (ORCHESTRATOR_FILES | ORCHESTRATOR_TRACKING_FILES)


def test_answers_reach_the_module(render) -> None:
    project = render(cloud_provider="aws", github_org="acme-labs", region="eu-west-1", cost_center="data-science")
    answers = Module(project / "infra" / "terraform" / "aws").answers
    assert answers["github_repository"] == "acme-labs/customer-churn"
    assert answers["region"] == "eu-west-1"
    assert answers["cost_center"] == "data-science"
    backend = (project / "infra" / "terraform" / "aws" / "envs" / "staging.backend.hcl").read_text(encoding="utf-8")
    assert 'region       = "eu-west-1"' in backend


@pytest.mark.parametrize("mode", SERVING_MODES)
def test_default_tags_cover_every_resource(aws: dict[str, Module], mode: str) -> None:
    module = aws[mode]
    providers = [body for block in module.blocks("provider") for name, body in block.items() if name == "aws"]
    provider = _one(providers)
    assert "alias" not in provider, "an aliased provider would need its own default_tags"
    tags = _one(provider["default_tags"])["tags"]
    if tags == "${local.default_tags}":  # one map, which the module's terraform tests read as well
        tags = module.locals()["default_tags"]
    assert isinstance(tags, dict), f"default_tags must be a literal map or local.default_tags, not {tags!r}"
    assert tags.keys() >= REQUIRED_TAGS
    assert tags["project"] == "${var.project}" and tags["environment"] == "${var.environment}"
    # A resource-level tag with the same key would override the default for that resource.
    overriding = [
        f"{rtype}.{name}"
        for rtype, name, body in module.resources()
        if isinstance(body.get("tags"), dict) and REQUIRED_TAGS & body["tags"].keys()
    ]
    assert not overriding, f"resources override the default tags: {overriding}"


def test_every_bucket_is_encrypted_versioned_private_and_tls_only(default: Module) -> None:
    buckets = [name for _, name, _ in default.resources("aws_s3_bucket")]
    assert set(buckets) == {"project", "logs"}
    log_targets = {
        match["name"]
        for _, _, body in default.resources("aws_s3_bucket_logging")
        if (match := REFERENCE.search(str(body["target_bucket"])))
    }
    for bucket in buckets:
        encryption = _one(default.for_bucket("aws_s3_bucket_server_side_encryption_configuration", bucket))
        by_default = _one(_one(encryption["rule"])["apply_server_side_encryption_by_default"])
        if bucket in log_targets:
            # S3 server-access and ALB log delivery cannot write to SSE-KMS buckets; the skip says so.
            assert by_default["sse_algorithm"] == "AES256", bucket
        else:
            assert by_default["sse_algorithm"] == "aws:kms", bucket
            assert by_default["kms_master_key_id"] == "${aws_kms_key.main.arn}", bucket
            assert _one(default.for_bucket("aws_s3_bucket_logging", bucket))["target_bucket"]

        versioning = _one(default.for_bucket("aws_s3_bucket_versioning", bucket))
        assert _one(versioning["versioning_configuration"])["status"] == "Enabled", bucket

        public_access = _one(default.for_bucket("aws_s3_bucket_public_access_block", bucket))
        for setting in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        ):
            assert public_access[setting] is True, f"{bucket}: {setting}"

        ownership = _one(default.for_bucket("aws_s3_bucket_ownership_controls", bucket))
        assert _one(ownership["rule"])["object_ownership"] == "BucketOwnerEnforced", bucket

        lifecycle = _one(default.for_bucket("aws_s3_bucket_lifecycle_configuration", bucket))
        assert any("abort_incomplete_multipart_upload" in rule for rule in lifecycle["rule"]), bucket
        assert any("noncurrent_version_expiration" in rule for rule in lifecycle["rule"]), bucket

        policy = _one(default.for_bucket("aws_s3_bucket_policy", bucket))
        document = default.data(
            "aws_iam_policy_document", re.search(r"aws_iam_policy_document\.(\w+)", policy["policy"])[1]
        )
        assert any(
            statement.get("effect") == "Deny"
            and statement["actions"] == ["s3:*"]
            and any(
                condition["variable"] == "aws:SecureTransport" and condition["values"] == ["false"]
                for condition in statement.get("condition", [])
            )
            for statement in _statements(document)
        ), f"{bucket}: no statement denies requests without TLS"


def test_data_bucket_is_the_dvc_remote(render, default: Module) -> None:
    # buckets = merge({data = ..., models = ...}, <airflow's DAG bucket with orchestrator airflow>)
    assert 'data = "${var.project}-data-${var.environment}"' in default.locals()["buckets"]
    dvc_config = (render(cloud_provider="aws", serving="container") / ".dvc" / "config").read_text(encoding="utf-8")
    assert f"s3://{default.answers['project']}-data-staging/dvc" in dvc_config


def test_kms_key_rotates(default: Module) -> None:
    key = _one([body for _, name, body in default.resources("aws_kms_key") if name == "main"])
    assert key["enable_key_rotation"] is True
    assert key["policy"], "the key needs an explicit key policy"


def test_ci_trust_is_scoped_to_this_repository(default: Module) -> None:
    repository = default.answers["github_repository"]
    assert repository == "my-org/customer-churn"
    trust = default.data("aws_iam_policy_document", "github_trust")
    subjects_by_role = trust["for_each"]
    assert set(subjects_by_role) == {"ci", "ci-main", "ci-plan"}
    assert subjects_by_role["ci"] == ["${local.github_subject_prefix}:environment:${var.environment}"]
    assert default.locals()["github_subject_prefix"] == "repo:${var.github_repository}"
    for role, subjects in subjects_by_role.items():
        for subject in subjects:
            rendered = subject.replace("${local.github_subject_prefix}", f"repo:{repository}")
            assert rendered.startswith("repo:my-org/customer-churn:"), (role, rendered)
            assert "*" not in rendered, f"{role}: wildcard in the trusted subject {rendered}"

    statement = _one(_statements(trust))
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {condition["variable"]: condition for condition in statement["condition"]}
    audience = conditions["${local.github_oidc_host}:aud"]
    assert audience["test"] == "StringEquals" and audience["values"] == ["sts.amazonaws.com"]
    subject = conditions["${local.github_oidc_host}:sub"]
    assert subject["test"] == "StringEquals", "StringLike would allow wildcards in the subject"


def test_no_long_lived_credentials(aws: dict[str, Module]) -> None:
    for mode, module in aws.items():
        forbidden = [
            f"{rtype}.{name}"
            for rtype, name, _ in module.resources()
            if rtype in {"aws_iam_access_key", "aws_iam_user", "aws_iam_user_policy", "aws_iam_user_login_profile"}
        ]
        assert not forbidden, f"{mode}: {forbidden}"


def test_registry_is_immutable_scanned_and_encrypted(default: Module) -> None:
    repository = _one([body for _, _, body in default.resources("aws_ecr_repository")])
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert _one(repository["image_scanning_configuration"])["scan_on_push"] is True
    encryption = _one(repository["encryption_configuration"])
    assert encryption["encryption_type"] == "KMS" and encryption["kms_key"] == "${aws_kms_key.main.arn}"
    assert [body for _, _, body in default.resources("aws_ecr_lifecycle_policy")]


@pytest.mark.parametrize("mode", SERVING_MODES)
def test_serving_resources_wait_for_an_image_tag(aws: dict[str, Module], mode: str) -> None:
    module = aws[mode]
    assert module.locals()["serving_enabled"] == '${var.image_tag != ""}'
    ungated = [
        f"{rtype}.{name}"
        for rtype, name, body in module.resources()
        if rtype in SERVING_RESOURCE_TYPES
        and (rtype, name) not in ALWAYS_ON_EXCEPTIONS
        and "local.serving_enabled" not in str(body.get("count", "")) + str(body.get("for_each", ""))
    ]
    assert not ungated, f"{mode}: created before an image is deployed: {ungated}"


def test_container_matches_the_dockerfile(render, default: Module) -> None:
    dockerfile = (render(cloud_provider="aws", serving="container") / "Dockerfile").read_text(encoding="utf-8")
    exposed = int(re.search(r"^EXPOSE (\d+)", dockerfile, re.MULTILINE)[1])
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.+)$", dockerfile, re.MULTILINE | re.DOTALL)[1]

    values = default.locals()
    assert values["container_port"] == exposed == 8000
    # The container's own check is liveness (/health); the load balancer routes only to ready tasks (/ready: the
    # model is loaded), so a task without a usable model gets no traffic and the circuit breaker sees it fail.
    assert "/health" in healthcheck
    assert values["health_path"] == "/ready"

    target_group = _one([body for _, _, body in default.resources("aws_lb_target_group")])
    assert target_group["port"] == "${local.container_port}"
    assert _one(target_group["health_check"])["path"] == "${local.health_path}"
    task = _one([body for _, _, body in default.resources("aws_ecs_task_definition")])
    definition = task["container_definitions"]
    assert "containerPort = local.container_port" in definition
    assert 'name = "PORT", value = tostring(local.container_port)' in definition


def test_https_only_in_front_of_the_service(default: Module) -> None:
    listeners = {name: body for _, name, body in default.resources("aws_lb_listener")}
    assert listeners["https"]["protocol"] == "HTTPS" and listeners["https"]["port"] == 443
    assert listeners["https"]["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    redirect = _one(_one(listeners["http_redirect"]["default_action"])["redirect"])
    assert redirect["protocol"] == "HTTPS" and redirect["status_code"] == "HTTP_301"
    balancer = _one([body for _, _, body in default.resources("aws_lb")])
    assert balancer["drop_invalid_header_fields"] is True
    assert balancer["enable_deletion_protection"] == "${local.is_production}"
    service = _one([body for _, _, body in default.resources("aws_ecs_service")])
    breaker = _one(service["deployment_circuit_breaker"])
    assert breaker["enable"] is True and breaker["rollback"] is True
    assert _one(service["network_configuration"])["assign_public_ip"] is False


def test_sagemaker_serves_the_image_on_8080(aws: dict[str, Module]) -> None:
    module = aws["managed"]
    model = _one([body for _, _, body in module.resources("aws_sagemaker_model")])
    assert model["enable_network_isolation"] is True
    assert _one(model["primary_container"])["environment"]["PORT"] == "${tostring(local.sagemaker_port)}"
    assert module.locals()["sagemaker_port"] == 8080
    config = _one([body for _, _, body in module.resources("aws_sagemaker_endpoint_configuration")])
    assert config["kms_key_arn"] == "${aws_kms_key.main.arn}"


def test_batch_job_runs_the_batch_command(aws: dict[str, Module]) -> None:
    module = aws["batch"]
    task = _one([body for _, _, body in module.resources("aws_ecs_task_definition")])
    definition = task["container_definitions"]
    assert 'entryPoint = ["python", "-m", "${var.package_name}.batch"]' in definition
    assert 'name = "BATCH_INPUT_URI"' in definition and 'name = "BATCH_OUTPUT_URI"' in definition
    assert module.answers["package_name"] == "customer_churn"
    schedule = _one([body for _, _, body in module.resources("aws_scheduler_schedule")])
    assert schedule["kms_key_arn"] == "${aws_kms_key.main.arn}"


@pytest.mark.parametrize("mode", ["container", "managed", "batch"])
def test_alarms_notify_the_alert_topic(aws: dict[str, Module], mode: str) -> None:
    alarms = {name: body for _, name, body in aws[mode].resources("aws_cloudwatch_metric_alarm")}
    paging = {name: body for name, body in alarms.items() if name != "endpoint_deployment_guard"}
    assert paging, f"{mode}: no alarms"
    for name, alarm in paging.items():
        assert alarm["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"], name
    topic = _one([body for _, _, body in aws[mode].resources("aws_sns_topic")])
    assert topic["kms_master_key_id"] == "${aws_kms_key.main.arn}"


def test_makefile_drives_this_module(render) -> None:
    makefile = (render(cloud_provider="aws", serving="container") / "Makefile").read_text(encoding="utf-8")
    assert "TF_DIR := infra/terraform/aws" in makefile
    for target in ("infra-init", "infra-plan", "infra-apply", "deploy"):
        assert re.search(rf"^{target}:.*## ", makefile, re.MULTILINE), target
    assert "-backend-config=envs/$(ENV).backend.hcl" in makefile
    assert '-var-file=envs/$(ENV).tfvars -var "image_tag=$(IMAGE_TAG)"' in makefile


def test_orchestrator_airflow_adds_mwaa_and_the_pipeline_task(render) -> None:
    """MWAA, its DAG bucket and roles, and the pipeline's Fargate task (orchestration_airflow.tf), with the ECS
    cluster and the private network they need even when nothing is served."""
    module = Module(
        render(cloud_provider="aws", serving="none", orchestrator="airflow") / "infra" / "terraform" / "aws"
    )
    present = {path.name for path in module.directory.glob("*.tf")}
    assert present == COMMON_FILES | MODE_FILES["none"] | {"orchestration_airflow.tf", "ecs.tf", "network.tf"}
    assert module.answers["orchestrator"] == "airflow"
    waits = {
        f"{rtype}.{name}": str(body.get("count", "")) + str(body.get("for_each", ""))
        for rtype, name, body in module.resources()
        if rtype in {"aws_mwaa_environment", "aws_ecs_task_definition", "aws_vpc_endpoint"}
        and name not in {"s3", "interface"}
    }
    assert waits and all("local.pipeline_enabled" in gate for gate in waits.values()), waits
    (task,) = [body for rtype, name, body in module.resources("aws_ecs_task_definition") if name == "pipeline"]
    assert (task["cpu"], task["memory"]) == ("${var.pipeline_task_cpu}", "${var.pipeline_task_memory}")
    policy = module.data("aws_iam_policy_document", "airflow")
    actions = {action for statement in _statements(policy) for action in statement["actions"]}
    assert not any("*" in action for action in actions), actions
    assert "ecs:RunTask" in actions and "iam:PassRole" in actions
    default = render(cloud_provider="aws", serving="none") / "infra" / "terraform" / "aws"
    assert not (default / "orchestration_airflow.tf").exists()
    assert "orchestrator" not in load(default / "project.auto.tfvars")
