"""Structure and security properties of the generated GCP Terraform, for every serving mode.

`terraform validate` needs the Google provider, which is not available offline, so these tests parse the HCL
(python-hcl2) and check what validate would catch about references, plus the properties the platform promises:
labels, hardened buckets, CI identity pinned to the repository, serving gated on an image tag, probes.
Formatting and checkov run for every cloud in tests/test_terraform.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from terraform_hcl import RootModule, load

SERVING_MODES = ("container", "managed", "batch", "none")
CONTRACT_OUTPUTS = {
    "data_bucket",
    "model_bucket",
    "image_repository",
    "service_url",
    "workload_identity_provider",
    "ci_service_account",
}
PLAN_SERVICE_ACCOUNT = "${google_service_account.ci_plan[0].member}"
# Everything the pull-request plan identity may hold: read the project, its IAM policies and the state, and bill API
# calls to the project. Any role that deploys, pushes, acts as another identity or reads data objects is missing.
PLAN_ROLES = {
    "roles/viewer",
    "roles/iam.securityReviewer",
    "roles/serviceusage.serviceUsageConsumer",
    "roles/storage.objectViewer",
}
REQUIRED_LABELS = {"project", "environment", "owner", "cost_center"}
# Resources created only once an image tag is deployed (contract: the first apply bootstraps the rest).
SERVING_RESOURCE_TYPES = {
    "google_cloud_run_v2_service",
    "google_cloud_run_v2_service_iam_member",
    "google_cloud_run_v2_job",
    "google_cloud_run_v2_job_iam_member",
    "google_cloud_scheduler_job",
    "google_vertex_ai_endpoint",
    "google_monitoring_alert_policy",
    "google_monitoring_dashboard",
}


class Module(RootModule):
    """The parsed .tf files of one rendered root module."""

    def resource(self, resource_type: str, name: str) -> dict[str, Any]:
        matches = [body for rtype, rname, body in self.resources(resource_type) if rname == name]
        assert len(matches) == 1, f"expected one {resource_type}.{name}, found {len(matches)}"
        return matches[0]

    def declared(self, kind: str) -> set[str]:
        """Names of variables/outputs, or resource/data addresses (type.name)."""
        if kind in ("variable", "output"):
            return {name for block in self.blocks(kind) for name in block}
        return {f"{rtype}.{name}" for block in self.blocks(kind) for rtype, names in block.items() for name in names}

    def locals(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for block in self.blocks("locals"):
            duplicated = merged.keys() & block.keys()
            assert not duplicated, f"locals defined twice: {duplicated}"
            merged.update(block)
        return merged

    def tfvars(self, relative: str) -> dict[str, Any]:
        return load(self.directory / relative)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.fixture(scope="module", params=[*SERVING_MODES, "batch+airflow"])
def module(request, render) -> Module:
    """Every serving mode, and batch with orchestrator airflow (Composer and the pipeline job)."""
    serving, _, orchestrator = request.param.partition("+")
    project = render(cloud_provider="gcp", serving=serving, orchestrator=orchestrator or "dvc")
    return Module(project / "infra" / "terraform" / "gcp")


@pytest.fixture(scope="module")
def container(render) -> Module:
    return Module(render(cloud_provider="gcp", serving="container") / "infra" / "terraform" / "gcp")


@pytest.mark.parametrize("serving", SERVING_MODES)
@pytest.mark.parametrize("monitoring", [True, False])
def test_only_the_files_of_the_chosen_mode_are_rendered(render, serving: str, monitoring: bool) -> None:
    project = render(cloud_provider="gcp", serving=serving, monitoring=monitoring)
    directory = project / "infra" / "terraform" / "gcp"
    mode_files = {p.name for p in directory.glob("*.tf") if p.name.startswith(("serving_", "monitoring_"))}
    expected = {f"serving_{serving}.tf"}
    if monitoring and serving != "none":
        expected.add(f"monitoring_{serving}.tf")
    assert mode_files == expected
    assert (directory / "project.auto.tfvars").is_file()
    assert not list(directory.rglob("*.jinja"))


def test_every_reference_resolves(module: Module) -> None:
    variables = module.declared("variable")
    local_names = set(module.locals())
    resources = module.declared("resource")
    data_sources = module.declared("data")
    missing: set[str] = set()
    for parsed in module.files.values():
        for text in _strings(parsed):
            missing |= {f"var.{n}" for n in set(re.findall(r"\bvar\.(\w+)", text)) - variables}
            missing |= {f"local.{n}" for n in set(re.findall(r"\blocal\.(\w+)", text)) - local_names}
            data_refs = set(re.findall(r"\bdata\.(google_\w+\.\w+)", text))
            missing |= {f"data.{ref}" for ref in data_refs - data_sources}
            without_data = re.sub(r"\bdata\.google_\w+\.\w+", "", text)
            missing |= set(re.findall(r"(?<![\w.])(google_\w+\.\w+)", without_data)) - resources
    assert not missing, f"undefined references: {sorted(missing)}"


def test_kubeflow_pipeline_identity_is_least_privilege(render) -> None:
    """orchestrator kubeflow: the Vertex pipeline service account reaches the pipeline/ prefix and its image only."""
    module = Module(render(cloud_provider="gcp", orchestrator="kubeflow") / "infra" / "terraform" / "gcp")
    test_every_reference_resolves(module)
    test_no_keys_and_no_basic_write_roles(module)
    store = module.resource("google_storage_bucket_iam_member", "pipeline_store")
    assert store["role"] == "roles/storage.objectUser"
    assert "/objects/${local.pipeline_prefix}" in store["condition"][0]["expression"]
    assert module.locals()["pipeline_prefix"] == "pipeline/"
    act_as = module.resource("google_service_account_iam_member", "pipeline_act_as")
    assert act_as["service_account_id"] == "${google_service_account.pipeline.name}"
    assert set(act_as["for_each"]) == {"pipeline", "ci"}
    roles = module.resource("google_project_iam_member", "pipeline")["for_each"]
    assert "roles/aiplatform.user" in roles and not [r for r in roles if "admin" in r.lower()]
    reader = module.resource("google_artifact_registry_repository_iam_member", "pipeline_pulls_image")
    assert reader["role"] == "roles/artifactregistry.reader"


def test_outputs_follow_the_contract(module: Module) -> None:
    outputs = [name for block in module.blocks("output") for name in block]
    assert set(outputs) >= CONTRACT_OUTPUTS
    assert len(outputs) == len(set(outputs)), "an output is defined twice"


def test_tfvars_set_only_declared_variables(module: Module) -> None:
    variables = module.declared("variable")
    for relative in ("project.auto.tfvars", "envs/staging.tfvars", "envs/production.tfvars"):
        assert set(module.tfvars(relative)) <= variables, relative
    required = {name for block in module.blocks("variable") for name, body in block.items() if "default" not in body}
    for env in ("staging", "production"):
        provided = set(module.tfvars("project.auto.tfvars")) | set(module.tfvars(f"envs/{env}.tfvars"))
        assert required - {"image_tag"} <= provided, f"{env} leaves required variables unset"


def test_every_resource_is_labelled(module: Module) -> None:
    (provider,) = [block["google"] for block in module.blocks("provider")]
    assert provider["default_labels"] == "${local.labels}"
    labels = module.locals()["labels"]
    assert set(labels) >= REQUIRED_LABELS
    for key in REQUIRED_LABELS:
        assert labels[key] == f"${{var.{key}}}", key
    # Monitoring resources take user_labels, which default_labels does not reach.
    for rtype in ("google_monitoring_alert_policy", "google_monitoring_notification_channel"):
        for _, name, body in module.resources(rtype):
            assert body.get("user_labels") == "${local.labels}", f"{rtype}.{name}"
    for _, name, body in module.resources("google_monitoring_dashboard"):
        assert re.search(r"\blabels\s*=\s*local\.labels\b", body["dashboard_json"]), name


def test_owner_and_repository_come_from_the_answers(render) -> None:
    project = render(cloud_provider="gcp", github_org="Acme-Labs", author_email="Jane.Doe+ml@Example.COM")
    tfvars = load(project / "infra" / "terraform" / "gcp" / "project.auto.tfvars")
    assert tfvars["owner"] == "jane_doe_ml_at_example_com"
    assert re.fullmatch(r"[a-z0-9_-]{1,63}", tfvars["owner"])
    assert tfvars["github_repository"] == "Acme-Labs/customer-churn"
    assert tfvars["alert_email"] == "Jane.Doe+ml@Example.COM"


def test_buckets_are_encrypted_private_and_versioned(module: Module) -> None:
    buckets = list(module.resources("google_storage_bucket"))
    # serving = batch: Dataproc's staging bucket of batch_engine = "spark" (spark_batch.tf)
    spark = {"spark_staging"} if (module.directory / "spark_batch.tf").exists() else set()
    assert {name for _, name, _ in buckets} == {"this", "access_logs", *spark}
    assert module.resource("google_storage_bucket", "this")["for_each"] == "${local.buckets}"
    assert set(module.locals()["buckets"]) == {"data", "models"}
    for _, name, bucket in buckets:
        assert bucket["encryption"][0]["default_kms_key_name"] == "${google_kms_crypto_key.this.id}", name
        assert bucket["uniform_bucket_level_access"] is True, name
        assert bucket["public_access_prevention"] == "enforced", name
        assert bucket["versioning"][0]["enabled"] is True, name
        assert bucket["lifecycle_rule"], name
    logging = module.resource("google_storage_bucket", "this")["logging"][0]
    assert logging["log_bucket"] == "${google_storage_bucket.access_logs.name}"


def test_dvc_remote_bucket_matches_the_data_bucket_name(module: Module) -> None:
    assert module.locals()["buckets"]["data"] == "${var.project}-data-${var.environment}"
    dvc_config = (module.directory.parents[2] / ".dvc" / "config").read_text(encoding="utf-8")
    assert "gs://customer-churn-data-staging/dvc" in dvc_config


def test_key_rotates_and_registry_is_encrypted_and_immutable(module: Module) -> None:
    key = module.resource("google_kms_crypto_key", "this")
    assert key["rotation_period"] == "7776000s"
    assert key["lifecycle"][0]["prevent_destroy"] is True
    registry = module.resource("google_artifact_registry_repository", "images")
    assert registry["kms_key_name"] == "${google_kms_crypto_key.this.id}"
    assert registry["docker_config"][0]["immutable_tags"] is True
    assert {policy["action"] for policy in registry["cleanup_policies"]} == {"KEEP", "DELETE"}
    assert "containerscanning.googleapis.com" in module.locals()["base_apis"]


def _effective_wif_condition(module: Module, env: str) -> str:
    """The provider's attribute_condition with the values of project.auto.tfvars and envs/<env>.tfvars."""
    repository = module.tfvars("project.auto.tfvars")["github_repository"]
    suffixes = module.tfvars(f"envs/{env}.tfvars")["github_oidc_subjects"]
    local_values = module.locals()
    template = re.fullmatch(
        r'\$\{\[for s in var\.github_oidc_subjects : "(.*)"\]\}', local_values["github_subjects"]
    ).group(1)
    subjects = [template.replace("${var.github_repository}", repository).replace("${s}", s) for s in suffixes]
    condition = local_values["github_attribute_condition"]
    encoded = json.dumps(subjects, separators=(",", ":"))  # what Terraform's jsonencode() produces
    condition = condition.replace("${jsonencode(local.github_subjects)}", encoded)
    (default,) = [
        block["github_deploy_refs"]["default"] for block in module.blocks("variable") if "github_deploy_refs" in block
    ]
    refs = module.tfvars(f"envs/{env}.tfvars").get("github_deploy_refs", default)
    condition = condition.replace("${jsonencode(var.github_deploy_refs)}", json.dumps(refs, separators=(",", ":")))
    prefix = local_values["github_environment_prefix"].replace("${var.github_repository}", repository)
    condition = condition.replace("${local.github_environment_prefix}", prefix)
    return condition.replace("${var.github_repository}", repository)


def _accepts(condition: str, **claims: str) -> bool:
    """Evaluate the provider's CEL attribute condition for a token with these claims (the subset of CEL it uses)."""
    python = condition.replace("&&", " and ").replace("||", " or ").replace("!assertion", " not assertion")
    python = python.replace(".startsWith(", ".startswith(")
    # The expression is this module's own rendered condition, evaluated without builtins.
    return bool(eval(python, {"__builtins__": {}}, {"assertion": type("Token", (), claims)}))


def test_ci_federation_is_pinned_to_the_repository(module: Module) -> None:
    provider = module.resource("google_iam_workload_identity_pool_provider", "github")
    assert provider["oidc"][0]["issuer_uri"] == "https://token.actions.githubusercontent.com"
    assert provider["attribute_condition"] == "${local.github_attribute_condition}"
    assert provider["attribute_mapping"]["google.subject"] == "assertion.sub"
    assert provider["attribute_mapping"]["attribute.repository"] == "assertion.repository"

    assert _effective_wif_condition(module, "production") == (
        'assertion.repository == "my-org/customer-churn" && '
        'assertion.sub in ["repo:my-org/customer-churn:environment:production"] && '
        '(!assertion.sub.startsWith("repo:my-org/customer-churn:environment:") || assertion.ref in ["refs/heads/main"])'
    )
    staging = _effective_wif_condition(module, "staging")
    assert staging.startswith('assertion.repository == "my-org/customer-churn" && assertion.sub in [')
    assert set(re.findall(r"repo:([^:\"]+):", staging)) == {"my-org/customer-churn"}
    assert "*" not in staging


def test_environment_jobs_get_credentials_from_main_only(module: Module) -> None:
    """GitHub creates an unprotected environment for any workflow that names one: the trust itself checks the ref."""
    repository = "my-org/customer-churn"
    for env in ("staging", "production"):
        condition = _effective_wif_condition(module, env)
        environment = f"repo:{repository}:environment:{env}"
        assert _accepts(condition, repository=repository, sub=environment, ref="refs/heads/main")
        assert not _accepts(condition, repository=repository, sub=environment, ref="refs/heads/attacker")
        assert not _accepts(condition, repository="other/repo", sub=environment, ref="refs/heads/main")
    staging = _effective_wif_condition(module, "staging")
    prefix = f"repo:{repository}"
    assert _accepts(staging, repository=repository, sub=f"{prefix}:pull_request", ref="refs/pull/7/merge")
    assert _accepts(staging, repository=repository, sub=f"{prefix}:ref:refs/heads/main", ref="refs/heads/main")
    assert not _accepts(staging, repository=repository, sub=f"{prefix}:ref:refs/heads/dev", ref="refs/heads/dev")


def _roles_of(body: dict[str, Any]) -> set[str]:
    """Roles of an IAM member resource, also when they come from its for_each."""
    return set(re.findall(r"roles/[\w.]+", json.dumps([body["role"], body.get("for_each", "")])))


def _impersonation(module: Module, env: str) -> dict[str, set[str]]:
    """{service account resource: OIDC subjects that may impersonate it} with the values of envs/<env>.tfvars."""
    repository = module.tfvars("project.auto.tfvars")["github_repository"]
    suffixes = module.tfvars(f"envs/{env}.tfvars")["github_oidc_subjects"]
    local_values = module.locals()
    principal = local_values["github_principal"]
    pool = "${google_iam_workload_identity_pool.github.name}"
    assert principal == f"principal://iam.googleapis.com/{pool}/subject/repo:${{var.github_repository}}"
    # Terraform's setsubtract/contains on the environment's subjects.
    assert local_values["ci_subjects"] == '${setsubtract(var.github_oidc_subjects, ["pull_request"])}'
    assert local_values["pull_request_planning"] == '${contains(var.github_oidc_subjects, "pull_request")}'
    ci_subjects = [s for s in suffixes if s != "pull_request"]
    planning = "pull_request" in suffixes

    reached: dict[str, set[str]] = {}
    for rtype, name, body in module.resources():
        if not rtype.endswith("_iam_member") or not {"roles/iam.workloadIdentityUser"} & _roles_of(body):
            continue
        member = body["member"]
        assert member.startswith("${local.github_principal}:"), f"{name}: {member} is not one exact subject"
        if body.get("for_each") == "${local.ci_subjects}":
            subjects = [member.replace("${each.value}", s) for s in ci_subjects]
        else:
            assert body.get("count") == "${local.pull_request_planning ? 1 : 0}", name
            subjects = [member] if planning else []
        account = re.fullmatch(r"\$\{google_service_account\.(\w+)(\[0\])?\.name\}", body["service_account_id"])
        sub_prefix = f"repo:{repository}:"
        reached.setdefault(account.group(1), set()).update(
            s.replace("${local.github_principal}:", sub_prefix) for s in subjects
        )
    return reached


def test_pull_requests_can_impersonate_only_the_plan_service_account(module: Module) -> None:
    for rtype, name, body in module.resources():
        if rtype.endswith("_iam_member") or rtype.endswith("_iam_binding"):
            assert "principalSet://" not in json.dumps(body), f"{rtype}.{name}: trust one subject, not a set"
    staging = _impersonation(module, "staging")
    assert staging == {
        "ci": {"repo:my-org/customer-churn:ref:refs/heads/main", "repo:my-org/customer-churn:environment:staging"},
        "ci_plan": {"repo:my-org/customer-churn:pull_request"},
    }
    assert _impersonation(module, "production") == {
        "ci": {"repo:my-org/customer-churn:environment:production"},
        "ci_plan": set(),
    }
    plan_account = module.resource("google_service_account", "ci_plan")
    assert plan_account["count"] == "${local.pull_request_planning ? 1 : 0}"
    # Service account IDs are at most 30 characters: id_base is at most 24.
    assert len(plan_account["account_id"].replace("${local.id_base}", "x" * 24)) <= 30
    # Nothing but workload identity federation may mint tokens of the CI identities.
    token_roles = {"roles/iam.serviceAccountTokenCreator", "roles/iam.serviceAccountOpenIdTokenCreator"}
    assert not [name for _, name, body in module.resources() if "role" in body and token_roles & _roles_of(body)]


def test_plan_service_account_cannot_deploy_or_read_data(module: Module) -> None:
    granted = {
        (rtype, name): body
        for rtype, name, body in module.resources()
        if rtype.endswith(("_iam_member", "_iam_binding")) and "google_service_account.ci_plan" in json.dumps(body)
    }
    granted.pop(("google_service_account_iam_member", "ci_plan_workload_identity"))
    assert granted, "the plan service account holds no role: terraform plan cannot read anything"
    for (rtype, name), body in granted.items():
        assert body["member"] == PLAN_SERVICE_ACCOUNT, name
        assert _roles_of(body) <= PLAN_ROLES, f"{rtype}.{name} grants {_roles_of(body) - PLAN_ROLES}"
        assert "local.pull_request_planning" in body.get("count", body.get("for_each", "")), name
        if rtype.startswith("google_storage_bucket"):
            assert body["bucket"] == "${var.state_bucket}", f"{name}: the plan reads objects of the state only"
            assert _roles_of(body) == {"roles/storage.objectViewer"}, f"{name}: the plan takes no state lock"
        else:
            assert rtype == "google_project_iam_member", f"{rtype}.{name}: no resource-level grants"
    # roles/viewer reaches objects through the projectViewer convenience binding GCS adds to new buckets.
    closed = module.resource("google_storage_bucket_iam_binding", "objects_not_for_project_viewers")
    assert closed["for_each"] == "${local.buckets}"
    assert closed["role"] == "roles/storage.legacyObjectReader"
    assert not [m for m in closed["members"] if m.startswith(("projectViewer:", "projectEditor:"))]
    outputs = {name: body for block in module.blocks("output") for name, body in block.items()}
    assert "google_service_account.ci_plan[0].email" in outputs["ci_plan_service_account"]["value"]


def test_no_keys_and_no_basic_write_roles(module: Module) -> None:
    assert not list(module.resources("google_service_account_key"))
    roles = [
        role
        for rtype, _, body in module.resources()
        if rtype.endswith("_iam_member")
        for role in re.findall(r"roles/[\w.]+", json.dumps([body["role"], body.get("for_each", "")]))
    ]
    assert roles, "no IAM bindings found"
    assert not {"roles/owner", "roles/editor"} & set(roles)
    assert not [role for role in roles if "projectIamAdmin" in role or "serviceAccountAdmin" in role]


def test_serving_resources_wait_for_an_image_tag(module: Module) -> None:
    assert module.locals()["serving_enabled"] == '${var.image_tag != ""}'
    (image_tag,) = [block["image_tag"] for block in module.blocks("variable") if "image_tag" in block]
    assert image_tag["default"] == ""
    for rtype, name, body in module.resources():
        if rtype in SERVING_RESOURCE_TYPES:
            gate = body.get("count", body.get("for_each", ""))
            # the pipeline's job (orchestrator airflow) waits for the pipeline image instead
            wait = "local.pipeline_enabled" if "pipeline" in name else "local.serving_enabled"
            assert wait in gate, f"{rtype}.{name} is created without an image"


def test_cloud_run_serves_port_8000_with_probes(container: Module) -> None:
    service = container.resource("google_cloud_run_v2_service", "api")
    template = service["template"][0]
    (app,) = template["containers"]
    assert app["ports"][0]["container_port"] == 8000
    startup = app["startup_probe"][0]["http_get"][0]
    liveness = app["liveness_probe"][0]["http_get"][0]
    assert (startup["path"], startup["port"]) == ("/ready", 8000)
    assert (liveness["path"], liveness["port"]) == ("/health", 8000)
    assert template["service_account"] == "${google_service_account.runtime.email}"
    assert template["encryption_key"] == "${google_kms_crypto_key.this.id}"
    assert template["scaling"][0]["min_instance_count"] == "${var.min_instances}"
    assert "PORT" not in {env["name"] for env in app["env"]}, "Cloud Run sets PORT itself"


def test_nothing_is_public_but_the_explicit_choice(module: Module) -> None:
    """No IAM binding to allUsers/allAuthenticatedUsers but Cloud Run's behind allow_unauthenticated (default off)."""
    for rtype, name, body in module.resources():
        if not rtype.endswith(("_iam_member", "_iam_binding", "_iam_policy")):
            continue
        text = json.dumps(body)
        if (rtype, name) == ("google_cloud_run_v2_service_iam_member", "invokers"):
            assert "var.allow_unauthenticated ?" in body["for_each"] and body["member"] == "${each.value}"
            continue
        assert "allUsers" not in text and "allAuthenticatedUsers" not in text, f"{rtype}.{name} is public"


def test_cloud_run_authenticates_in_front_of_the_service(container: Module) -> None:
    """IAM (roles/run.invoker) checks each request's identity token, so the service runs with AUTH_MODE=gateway,
    and without a check only where the explicit public choice (allow_unauthenticated) lets everyone in."""
    (app,) = container.resource("google_cloud_run_v2_service", "api")["template"][0]["containers"]
    mode = {env["name"]: env["value"] for env in app["env"]}["AUTH_MODE"]
    assert mode == '${var.allow_unauthenticated ? "none" : "gateway"}'

    by_digest, by_tag = "${local.image_repository}@${var.image_digest}", "${local.image_repository}:${var.image_tag}"
    assert container.locals()["image"] == f'${{var.image_digest != "" ? "{by_digest}" : "{by_tag}"}}'


def test_cloud_run_is_not_public_by_default(container: Module) -> None:
    variables = {name: body for block in container.blocks("variable") for name, body in block.items()}
    assert variables["allow_unauthenticated"]["default"] is False
    assert variables["invoker_members"]["default"] == []
    invokers = container.resource("google_cloud_run_v2_service_iam_member", "invokers")
    assert "var.allow_unauthenticated ?" in invokers["for_each"]


def test_ci_may_invoke_the_service_it_smoke_tests(container: Module) -> None:
    """`make smoke` calls the private service with the CI identity's token: invoker on this service only."""
    binding = container.resource("google_cloud_run_v2_service_iam_member", "ci_invokes")
    assert binding["role"] == "roles/run.invoker"
    assert binding["member"] == "${google_service_account.ci.member}"
    assert binding["name"] == "${google_cloud_run_v2_service.api[0].name}"
    project_roles = {body["role"] for _, _, body in container.resources("google_project_iam_member")}
    assert "roles/run.invoker" not in project_roles, "invoker must be scoped to the service, not the project"
    makefile = (container.directory.parents[2] / "Makefile").read_text()
    assert "gcloud auth print-identity-token" in makefile and "SMOKE_TOKEN" in makefile


def test_environments_differ_where_they_should(module: Module) -> None:
    staging = module.tfvars("envs/staging.tfvars")
    production = module.tfvars("envs/production.tfvars")
    assert (staging["environment"], production["environment"]) == ("staging", "production")
    assert staging["min_instances"] == 0 < production["min_instances"]
    assert staging["max_instances"] < production["max_instances"]
    assert (staging["deletion_protection"], production["deletion_protection"]) == (False, True)
    assert staging["log_retention_days"] < production["log_retention_days"]
    assert production["github_oidc_subjects"] == ["environment:production"]
    for env in ("staging", "production"):
        backend = module.tfvars(f"envs/{env}.backend.hcl")
        assert backend == {"bucket": f"customer-churn-tfstate-{env}", "prefix": f"terraform/{env}"}
        assert module.tfvars(f"envs/{env}.tfvars")["state_bucket"] == backend["bucket"]


def test_batch_job_runs_the_batch_module_on_a_schedule(render) -> None:
    batch = Module(render(cloud_provider="gcp", serving="batch") / "infra" / "terraform" / "gcp")
    job = batch.resource("google_cloud_run_v2_job", "batch")
    (app,) = job["template"][0]["template"][0]["containers"]
    assert app["command"] == ["python", "-m", "${var.package_name}.batch"]
    assert batch.tfvars("project.auto.tfvars")["package_name"] == "customer_churn"
    assert {"BATCH_INPUT_URI", "BATCH_OUTPUT_URI"} <= {env["name"] for env in app["env"]}
    scheduler = batch.resource("google_cloud_scheduler_job", "batch")
    target = scheduler["http_target"][0]
    # the Cloud Run job, or with batch_engine = "spark" a Dataproc Serverless batch (spark_batch.tf)
    assert target["uri"].endswith('/jobs/${local.batch_job_name}:run")}')
    dataproc = "https://dataproc.googleapis.com/v1/projects/${var.gcp_project_id}/locations/${var.region}/batches"
    assert f'"{dataproc}"' in target["uri"]
    assert "base64encode(jsonencode(local.spark_batch_request))" in target["body"]
    assert target["oauth_token"][0]["service_account_email"] == "${google_service_account.scheduler.email}"


def test_spark_batch_runs_the_spark_module_as_its_own_identity(render) -> None:
    """batch_engine = "spark": the batch runs score.py of the -spark image as the Spark identity in the private
    subnet, which may read the input and write the output folder only."""
    batch = Module(render(cloud_provider="gcp", serving="batch") / "infra" / "terraform" / "gcp")
    request = batch.locals()["spark_batch_request"]
    assert request["pysparkBatch"]["mainPythonFileUri"] == "file:///opt/app/score.py"
    execution = request["environmentConfig"]["executionConfig"]
    assert execution["serviceAccount"] == "${one(google_service_account.spark[*].email)}"
    assert execution["subnetworkUri"] == "${one(google_compute_subnetwork.spark[*].id)}"
    assert execution["kmsKey"] == "${google_kms_crypto_key.this.id}"
    assert batch.resource("google_compute_subnetwork", "spark")["private_ip_google_access"] is True
    write = batch.resource("google_storage_bucket_iam_member", "spark_writes_output")["condition"][0]["expression"]
    assert "resource.name.startsWith" in write and "${local.spark_output_prefix}" in write
    roles = batch.resource("google_project_iam_member", "spark_worker")["for_each"]
    assert "roles/dataproc.worker" in roles and "roles/storage" not in roles
    assert batch.resource("google_project_iam_custom_role", "spark_submitter")["permissions"] == [
        "dataproc.batches.create",
        "dataproc.batches.get",
    ]
    dockerfile = (batch.directory.parents[2] / "Dockerfile.spark").read_text()
    assert "USER 1099:1099" in dockerfile and "useradd --uid 1099" in dockerfile


def test_vertex_endpoint_is_encrypted(render) -> None:
    managed = Module(render(cloud_provider="gcp", serving="managed") / "infra" / "terraform" / "gcp")
    endpoint = managed.resource("google_vertex_ai_endpoint", "model")
    assert endpoint["encryption_spec"][0]["kms_key_name"] == "${google_kms_crypto_key.this.id}"


def test_pull_request_plans_log_in_as_the_plan_service_account(render) -> None:
    project = render(cloud_provider="gcp")
    login = yaml.safe_load((project / ".github/actions/cloud-login/action.yml").read_text(encoding="utf-8"))
    (auth,) = [step for step in login["runs"]["steps"] if "google-github-actions/auth" in step.get("uses", "")]
    assert auth["with"]["service_account"] == (
        "${{ github.event_name == 'pull_request' && env.GCP_CI_PLAN_SERVICE_ACCOUNT || env.GCP_CI_SERVICE_ACCOUNT }}"
    )
    infra = yaml.safe_load((project / ".github/workflows/infra.yml").read_text(encoding="utf-8"))
    assert infra["env"]["GCP_CI_PLAN_SERVICE_ACCOUNT"] == "${{ vars.GCP_CI_PLAN_SERVICE_ACCOUNT }}"
    plan_steps = infra["jobs"]["plan"]["steps"]
    (plan,) = [step for step in plan_steps if "infra-plan" in step.get("run", "")]
    assert plan["env"]["TF_CLI_ARGS_plan"] == "-lock=false", "the plan service account cannot write the lock"
    for job in ("apply-staging", "apply-production"):
        assert "TF_CLI_ARGS_plan" not in json.dumps(infra["jobs"][job]), f"{job} must hold the state lock"
    assert infra["jobs"]["plan"]["strategy"]["matrix"]["environment"] == ["staging"]
    docs = (project / "docs/ci-cd.md").read_text(encoding="utf-8")
    assert "| repository | `GCP_CI_PLAN_SERVICE_ACCOUNT` | `ci_plan_service_account` of staging" in docs


@pytest.mark.parametrize("serving", ["container", "kubernetes", "managed"])
def test_the_service_writes_its_inference_log_under_the_prefix_only(render, serving: str) -> None:
    """Cloud Run writes through its Cloud Storage volume (objectUser: the volume reads, lists and renames); the log
    shipper of GKE and Vertex AI only creates objects (objectCreator). Either way only under inference/."""
    module = Module(render(cloud_provider="gcp", serving=serving) / "infra" / "terraform" / "gcp")
    (grant,) = [
        body
        for _, name, body in module.resources("google_storage_bucket_iam_member")
        if name == "runtime_writes_inference_log"
    ]
    assert grant["member"] == "${google_service_account.runtime.member}"
    assert grant["role"] == ("roles/storage.objectUser" if serving == "container" else "roles/storage.objectCreator")
    (condition,) = grant["condition"]
    assert condition["expression"] == (
        'resource.name.startsWith("projects/_/buckets/${google_storage_bucket.this["data"].name}'
        '/objects/${local.inference_log_prefix}")'
    )
    assert module.locals()["inference_log_prefix"] == "inference/"
    assert ("inference_log_uri" in module.declared("output")) == (serving != "container")


def test_airflow_runs_each_stage_as_the_pipeline_job_sized_by_variables(render) -> None:
    module = Module(render(cloud_provider="gcp", orchestrator="airflow") / "infra" / "terraform" / "gcp")
    (job,) = [body for rtype, name, body in module.resources("google_cloud_run_v2_job") if name == "pipeline"]
    assert job["count"] == "${local.pipeline_enabled ? 1 : 0}"
    container = job["template"][0]["template"][0]["containers"][0]
    assert container["image"] == "${var.pipeline_image}" and container["command"] == ["python"]
    assert container["resources"][0]["limits"] == {"cpu": "${var.pipeline_cpu}", "memory": "${var.pipeline_memory}"}
    (composer,) = [body for _, _, body in module.resources("google_composer_environment")]
    software = composer["config"][0]["software_config"][0]
    assert software["image_version"] == "${var.composer_image_version}"
    assert composer["config"][0]["enable_private_environment"] is True
    (runs,) = [
        body
        for _, name, body in module.resources("google_cloud_run_v2_job_iam_member")
        if name == "airflow_runs_pipeline"
    ]
    assert runs["role"] == "roles/run.jobsExecutorWithOverrides", "Composer may run the pipeline job only"
    assert not (render(cloud_provider="gcp") / "infra" / "terraform" / "gcp" / "orchestration_airflow.tf").exists()
