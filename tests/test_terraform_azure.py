"""The Azure Terraform of every serving mode, read as HCL: tags, storage hardening, OIDC trust and serving.

`terraform validate` needs the azurerm provider, which is not available offline, so the reference checks below
(every resource, local and variable that is used is declared in the rendered module) stand in for it.
tests/test_terraform.py runs `terraform fmt` and checkov over the same renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from terraform_hcl import load

SERVING_MODES = ("container", "managed", "batch", "none")
TAG_KEYS = {"project", "environment", "owner", "cost_center", "managed_by"}

# Every resource type the module uses, split by whether Azure lets it carry tags. A new type must be added to
# one of the two sets, so nobody adds an untagged taggable resource without a test failing.
TAGGABLE = {
    "azurerm_resource_group",
    "azurerm_log_analytics_workspace",
    "azurerm_virtual_network",
    "azurerm_network_security_group",
    "azurerm_key_vault",
    "azurerm_key_vault_key",
    "azurerm_user_assigned_identity",
    "azurerm_storage_account",
    "azurerm_container_registry",
    "azurerm_container_app_environment",
    "azurerm_container_app",
    "azurerm_container_app_job",
    "azurerm_application_insights",
    "azurerm_machine_learning_workspace",
    "azurerm_monitor_action_group",
    "azurerm_monitor_metric_alert",
    "azurerm_portal_dashboard",
}
UNTAGGABLE = {
    "azurerm_subnet",
    "azurerm_subnet_network_security_group_association",
    "azurerm_role_assignment",
    "azurerm_federated_identity_credential",
    "azurerm_storage_container",
    "azurerm_storage_management_policy",
    "azurerm_monitor_diagnostic_setting",
    "azurerm_consumption_budget_resource_group",
    "azapi_update_resource",
}
# azapi resources are classified by their ARM type: tracked resources take tags, proxy resources do not.
AZAPI_TAGGABLE_TYPES = ("/onlineEndpoints@", "/onlineEndpoints/deployments@")

SERVING_RESOURCE_TYPES = {
    "azurerm_container_app_environment",
    "azurerm_container_app",
    "azurerm_container_app_job",
    "azapi_resource",
    "azapi_update_resource",
}


@dataclass
class Module:
    root: Path
    data_sources: set[str] = field(default_factory=set)
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    locals: dict[str, object] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, list[dict]] = field(default_factory=dict)
    tfvars: dict[str, object] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> dict[str, dict]:
        return {name: body for (kind, name), body in self.resources.items() if kind == resource_type}

    def resolve(self, expression: str, environment: str) -> str:
        """Substitute `var.*` with the template's answers (project.auto.tfvars) and the environment."""
        values = {**self.tfvars, "environment": environment}
        return re.sub(r"\$\{var\.(\w+)\}", lambda m: str(values[m.group(1)]), expression)


def parse_module(root: Path) -> Module:
    module = Module(root=root)
    for tf_file in sorted(root.glob("*.tf")):
        parsed = load(tf_file)
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    assert (kind, name) not in module.resources, f"{kind}.{name} declared twice"
                    module.resources[(kind, name)] = body
        for block in parsed.get("data", []):
            module.data_sources |= {f"data.{kind}.{name}" for kind, named in block.items() for name in named}
        for block in parsed.get("locals", []):
            for name, value in block.items():
                assert name not in module.locals, f"local.{name} declared twice in {tf_file.name}"
                module.locals[name] = value
        for block in parsed.get("variable", []):
            module.variables.update(block)
        for block in parsed.get("output", []):
            for name, body in block.items():
                module.outputs.setdefault(name, []).append(body)
    module.tfvars = load(root / "project.auto.tfvars")
    return module


def azure_module(render, **answers: object) -> Module:
    return parse_module(render(cloud_provider="azure", **answers) / "infra" / "terraform" / "azure")


@pytest.fixture(scope="module", params=[*SERVING_MODES, "none+airflow"])
def module(request, render) -> Module:
    """Every serving mode, and orchestrator airflow (the pipeline's workload identity, orchestration_airflow.tf)."""
    serving, _, orchestrator = request.param.partition("+")
    return azure_module(render, serving=serving, orchestrator=orchestrator or "dvc")


@pytest.fixture(scope="module")
def default_module(render) -> Module:
    return azure_module(render)


def tag_keys(module: Module, tags: object) -> set[str]:
    if isinstance(tags, dict):
        return set(tags)
    assert isinstance(tags, str), f"unexpected tags value {tags!r}"
    if tags == "${local.tags}":
        return set(module.locals["tags"])
    merged = re.fullmatch(r"\$\{merge\(local\.tags, \{(.*)\}\)\}", tags, re.DOTALL)
    assert merged, f"tags must be local.tags or merge(local.tags, {{...}}), got {tags}"
    return set(module.locals["tags"]) | set(re.findall(r'"([\w-]+)"\s*=', merged.group(1)))


def is_taggable(kind: str, body: dict) -> bool:
    if kind == "azapi_resource":
        return any(marker in body["type"] for marker in AZAPI_TAGGABLE_TYPES)
    assert kind in TAGGABLE | UNTAGGABLE, f"classify {kind} in TAGGABLE or UNTAGGABLE"
    return kind in TAGGABLE


def test_every_taggable_resource_carries_the_cost_and_ownership_tags(module: Module) -> None:
    assert set(module.locals["tags"]) >= TAG_KEYS
    untagged = [
        f"{kind}.{name}"
        for (kind, name), body in module.resources.items()
        if is_taggable(kind, body) and not tag_keys(module, body.get("tags")) >= TAG_KEYS
    ]
    assert not untagged, f"resources without the tags {sorted(TAG_KEYS)}: {untagged}"


def test_storage_accounts_are_private_encrypted_and_keyless(module: Module) -> None:
    accounts = module.of_type("azurerm_storage_account")
    assert accounts
    for name, account in accounts.items():
        assert account["https_traffic_only_enabled"] is True, name
        assert account["min_tls_version"] == "TLS1_2", name
        assert account["allow_nested_items_to_be_public"] is False, name
        assert account["shared_access_key_enabled"] is False, name
        assert account["infrastructure_encryption_enabled"] is True, name
        assert account["local_user_enabled"] is False, name
        cmk = account["customer_managed_key"][0]
        assert cmk["key_vault_key_id"].startswith("${azurerm_key_vault_key."), name
        rules = account["network_rules"][0]
        assert rules["default_action"] == "Deny", name
        assert "AzureServices" in rules["bypass"], name
        blob = account["blob_properties"][0]
        assert blob["versioning_enabled"] is True and blob["delete_retention_policy"], name
    containers = module.of_type("azurerm_storage_container")
    assert {body["name"] for body in containers.values()} == {"${each.key}"}
    assert all(body["container_access_type"] == "private" for body in containers.values())
    # DVC's remote is azure://data/dvc: the containers are data and models.
    for_each = next(iter(containers.values()))["for_each"]
    assert re.findall(r'"(\w+)"', for_each) == ["data", "models"]


def test_key_vault_protects_the_storage_key(module: Module) -> None:
    (vault,) = module.of_type("azurerm_key_vault").values()
    assert vault["purge_protection_enabled"] is True
    assert vault["rbac_authorization_enabled"] is True
    assert vault["network_acls"][0]["default_action"] == "Deny"
    (key,) = module.of_type("azurerm_key_vault_key").values()
    assert key["key_type"] == "RSA-HSM"
    assert key["rotation_policy"][0]["automatic"]


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_ci_federation_trusts_only_this_repository_and_environment(default_module: Module, environment: str):
    credentials = default_module.of_type("azurerm_federated_identity_credential")
    assert set(credentials) == {"github_environment", "github_main_branch"}
    for credential in credentials.values():
        assert credential["issuer"] == "https://token.actions.githubusercontent.com"
        assert credential["audience"] == ["api://AzureADTokenExchange"]
    subject = default_module.resolve(credentials["github_environment"]["subject"], environment)
    assert subject == f"repo:my-org/customer-churn:environment:{environment}"
    main_branch = credentials["github_main_branch"]
    main_subject = default_module.resolve(main_branch["subject"], environment)
    assert main_subject == "repo:my-org/customer-churn:ref:refs/heads/main"
    # Main-branch jobs without an environment sign in to staging only; no credential ever trusts pull requests.
    assert main_branch["count"] == "${var.trust_main_branch ? 1 : 0}"
    trusts_main = load(default_module.root / "envs" / f"{environment}.tfvars").get("trust_main_branch", False)
    assert trusts_main is (environment == "staging")


def test_no_identity_can_grant_access(module: Module) -> None:
    roles = {body["role_definition_name"] for body in module.of_type("azurerm_role_assignment").values()}
    assert roles.isdisjoint({"Owner", "User Access Administrator", "Role Based Access Control Administrator"})
    ci_roles = {
        body["role_definition_name"]
        for body in module.of_type("azurerm_role_assignment").values()
        if body["principal_id"] == "${azurerm_user_assigned_identity.ci.principal_id}"
    }
    assert ci_roles == {"Contributor", "AcrPush", "Storage Blob Data Contributor", "Key Vault Reader"}


def test_serving_resources_wait_for_an_image_tag(module: Module) -> None:
    assert module.locals["serving_enabled"] == '${var.image_tag != ""}'
    gated = {
        f"{kind}.{name}": body.get("count")
        for (kind, name), body in module.resources.items()
        if kind in SERVING_RESOURCE_TYPES
        or (kind == "azurerm_monitor_metric_alert" and "local.serving_enabled" in str(body.get("scopes")))
    }
    assert all(count == "${local.serving_enabled ? 1 : 0}" for count in gated.values()), gated


SERVING_BY_MODE = {
    "container": {"azurerm_container_app", "azurerm_container_app_environment"},
    "batch": {"azurerm_container_app_job", "azurerm_container_app_environment"},
    "managed": {"azurerm_machine_learning_workspace", "azapi_resource"},
    "none": set(),
}


@pytest.mark.parametrize("serving", SERVING_MODES)
def test_each_mode_has_its_own_serving_only(render, serving: str) -> None:
    module = azure_module(render, serving=serving)
    kinds = {kind for kind, _ in module.resources}
    others = set().union(*SERVING_BY_MODE.values()) - SERVING_BY_MODE[serving]
    assert SERVING_BY_MODE[serving] <= kinds
    assert not kinds & others, f"{serving} render has resources of other modes: {kinds & others}"


def test_contract_outputs_exist_once(module: Module) -> None:
    expected = {
        "data_bucket",
        "model_bucket",
        "image_repository",
        "service_url",
        "ci_client_id",
        "tenant_id",
        "subscription_id",
    }
    assert expected <= set(module.outputs)
    assert all(len(bodies) == 1 for bodies in module.outputs.values()), "an output is declared twice"


def test_container_app_serves_https_on_port_8000_with_probes(render) -> None:
    module = azure_module(render, serving="container")
    (app,) = module.of_type("azurerm_container_app").values()
    ingress = app["ingress"][0]
    assert ingress["target_port"] == 8000
    assert ingress["allow_insecure_connections"] is False
    container = app["template"][0]["container"][0]
    assert container["image"] == "${local.image}"
    liveness, readiness = container["liveness_probe"][0], container["readiness_probe"][0]
    assert (liveness["path"], liveness["port"]) == ("/health", 8000)
    assert (readiness["path"], readiness["port"]) == ("/ready", 8000)
    assert app["template"][0]["http_scale_rule"][0]["concurrent_requests"]
    assert app["identity"][0]["identity_ids"] == ["${azurerm_user_assigned_identity.runtime.id}"]


def test_container_app_is_internal_unless_made_public_on_purpose(render) -> None:
    module = azure_module(render, serving="container")
    (app,) = module.of_type("azurerm_container_app").values()
    assert app["ingress"][0]["external_enabled"] == "${var.public_endpoint}"
    assert module.variables["public_endpoint"]["default"] is False
    for environment in ("staging", "production"):
        assert load(module.root / "envs" / f"{environment}.tfvars").get("public_endpoint", False) is False
    container = app["template"][0]["container"][0]
    assert {env["name"]: env["value"] for env in container["env"]}["AUTH_MODE"] == "none"
    # The deployed image is pinned by digest whenever CD gives one (production: always, variables.tf).
    assert "${local.image_name}@${var.image_digest}" in module.locals["image"]
    makefile = (module.root.parents[2] / "Makefile").read_text(encoding="utf-8")
    assert "latestReadyRevisionName" in makefile and "service_public" in makefile


def test_ci_changes_only_its_resource_group(module: Module) -> None:
    """CI's Contributor is scoped to this environment's resource group, never the subscription."""
    for name, body in module.of_type("azurerm_role_assignment").items():
        if body["principal_id"] == "${azurerm_user_assigned_identity.ci.principal_id}":
            assert "subscription" not in body["scope"], f"{name}: scoped to the subscription"
            if body["role_definition_name"] == "Contributor":
                assert body["scope"] == "${azurerm_resource_group.main.id}", name


def test_batch_job_runs_the_batch_module_on_a_schedule(render) -> None:
    module = azure_module(render, serving="batch")
    (job,) = module.of_type("azurerm_container_app_job").values()
    assert job["schedule_trigger_config"][0]["cron_expression"] == "${var.batch_schedule}"
    container = job["template"][0]["container"][0]
    command = [module.resolve(part, "staging") for part in container["command"]]
    assert command == ["python", "-m", "customer_churn.batch"]
    env = {item["name"] for item in container["env"]}
    assert {"BATCH_INPUT_URI", "BATCH_OUTPUT_URI"} <= env


def test_managed_endpoint_routes_to_the_serving_routes(render) -> None:
    module = azure_module(render, serving="managed")
    version = module.resources[("azapi_resource", "ml_environment_version")]
    routes = version["body"]["properties"]["inferenceConfig"]
    assert routes["livenessRoute"] == {"path": "/health", "port": 8000}
    assert routes["readinessRoute"] == {"path": "/ready", "port": 8000}
    assert routes["scoringRoute"] == {"path": "/predict", "port": 8000}
    endpoint = module.resources[("azapi_resource", "ml_endpoint")]
    assert endpoint["body"]["properties"]["authMode"] == "AADToken"
    # Entra ID authenticates every call before the container: the service does not check again.
    deployment = module.resources[("azapi_resource", "ml_deployment")]
    assert deployment["body"]["properties"]["environmentVariables"]["AUTH_MODE"] == "gateway"


REFERENCE = re.compile(r"\b(azurerm_\w+|azapi_\w+|local|var)\.(\w+)")


@pytest.mark.parametrize("monitoring", [True, False])
@pytest.mark.parametrize("serving", SERVING_MODES)
def test_every_reference_is_declared(render, serving: str, monitoring: bool) -> None:
    """What `terraform validate` would catch first when files are excluded per answer: dangling references."""
    assert not undeclared(azure_module(render, serving=serving, monitoring=monitoring)), serving


def undeclared(module: Module) -> list[str]:
    declared = {f"{kind}.{name}" for kind, name in module.resources}
    declared |= {f"local.{name}" for name in module.locals} | {f"var.{name}" for name in module.variables}
    sources = sorted(module.root.glob("*.tf"))
    text = "\n".join(re.sub(r"(?m)^\s*#.*$", "", path.read_text()) for path in sources)
    data_used = set(re.findall(r"\bdata\.\w+\.\w+", text))
    assert data_used <= module.data_sources, f"undeclared data sources: {data_used - module.data_sources}"
    used = {f"{kind}.{name}" for kind, name in REFERENCE.findall(re.sub(r"\bdata\.\w+\.\w+", "", text))}
    return sorted(reference for reference in used if reference not in declared)


def test_kubeflow_pipeline_identity_reads_and_writes_the_run_store_only(render) -> None:
    """orchestrator kubeflow: one managed identity, trusted by the profile's service account, blobs under pipeline/."""
    module = azure_module(render, orchestrator="kubeflow")
    assert not undeclared(module)
    test_every_taggable_resource_carries_the_cost_and_ownership_tags(module)
    credential = module.of_type("azurerm_federated_identity_credential")["pipeline"]
    assert credential["subject"] == (
        "system:serviceaccount:${local.kubeflow_namespace}:${local.kubeflow_service_account}"
    )
    assert credential["audience"] == ["api://AzureADTokenExchange"]
    assignment = module.of_type("azurerm_role_assignment")["pipeline_run_store"]
    assert assignment["scope"] == '${azurerm_storage_container.main["data"].id}'
    assert assignment["condition_version"] == "2.0"
    assert assignment["condition"].count("StringStartsWith '${local.pipeline_prefix}'") == 2
    assert module.locals["pipeline_prefix"] == "pipeline/"


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_environment_files_set_only_declared_variables(module: Module, environment: str) -> None:
    envs = module.root / "envs"
    values = load(envs / f"{environment}.tfvars")
    assert values["environment"] == environment
    unknown = sorted((set(values) | set(module.tfvars)) - set(module.variables))
    assert not unknown, f"values for undeclared variables: {unknown}"
    backend = load(envs / f"{environment}.backend.hcl")
    assert backend["use_azuread_auth"] is True
    assert backend["key"] == f"{environment}.tfstate"


def test_every_environment_pulls_from_its_own_registry(module: Module) -> None:
    """Serving names an image in this environment's registry, pulled with the runtime identity's AcrPull."""
    assert module.locals["image_name"] == "${azurerm_container_registry.main.login_server}/${var.project}"
    assert module.locals["image"] == (
        '${var.image_digest != "" ? "${local.image_name}@${var.image_digest}" : "${local.image_name}:${var.image_tag}"}'
    )
    assert set(module.of_type("azurerm_container_registry")) == {"main"}
    pull = module.resources[("azurerm_role_assignment", "runtime_acr_pull")]
    assert pull["scope"] == "${azurerm_container_registry.main.id}"
    assert pull["principal_id"] == "${azurerm_user_assigned_identity.runtime.principal_id}"
    for kind in ("azurerm_container_app", "azurerm_container_app_job"):
        for name, body in module.of_type(kind).items():
            (registry,) = body["registry"]
            assert registry["server"] == "${azurerm_container_registry.main.login_server}", name
            assert registry["identity"] == "${azurerm_user_assigned_identity.runtime.id}", name


def test_production_ci_may_only_read_images_from_staging(module: Module) -> None:
    """image_importers: production's CI identity reads staging's registry (az acr import), with nothing else."""
    importers = module.resources[("azurerm_role_assignment", "image_importers")]
    assert importers["scope"] == "${azurerm_container_registry.main.id}"
    assert 'setproduct(var.image_importers, ["AcrPull", "Reader"])' in importers["for_each"]
    assert importers["role_definition_name"] == "${each.value.role}"
    assert importers["principal_id"] == "${each.value.principal_id}"
    assert module.variables["image_importers"]["default"] == []
    staging = load(module.root / "envs" / "staging.tfvars")
    production = load(module.root / "envs" / "production.tfvars")
    assert staging["image_importers"] == [], "staging lists production's ci_principal_id once it exists"
    assert "image_importers" not in production, "nothing imports from production"
    (principal,) = module.outputs["ci_principal_id"]
    assert principal["value"] == "${azurerm_user_assigned_identity.ci.principal_id}"


def test_cd_promotes_the_tested_digest_before_the_production_deploy(render) -> None:
    project = render(cloud_provider="azure")
    jobs = yaml.safe_load((project / ".github/workflows/cd.yml").read_text(encoding="utf-8"))["jobs"]
    (build,) = [step for step in jobs["image"]["steps"] if "docker/build-push-action" in step.get("uses", "")]
    assert jobs["image"]["outputs"]["digest"] == f"${{{{ steps.{build['id']}.outputs.digest }}}}"
    assert jobs["staging"]["outputs"]["image-digest"] == "${{ needs.image.outputs.digest }}"
    assert jobs["staging"]["outputs"]["registry-id"] == "${{ needs.image.outputs.registry-id }}"

    steps = jobs["production"]["steps"]
    names = [step.get("name", step.get("uses", "")) for step in steps]
    promote = next(i for i, step in enumerate(steps) if "az acr import" in step.get("run", ""))
    deploy = next(i for i, step in enumerate(steps) if step.get("uses") == "./.github/actions/deploy")
    login = next(i for i, step in enumerate(steps) if step.get("uses") == "./.github/actions/cloud-login")
    assert login < promote < deploy, names
    script = steps[promote]["run"]
    assert steps[promote]["env"]["IMAGE_DIGEST"] == "${{ needs.staging.outputs.image-digest }}"
    assert '--source "$repository@$IMAGE_DIGEST"' in script, "promote the digest staging ran, not a tag"
    assert '--registry "$SOURCE_REGISTRY_ID"' in script, "staging's registry may be in another subscription"
    # The target is production's registry, the one its Terraform serves from: <project>-production, repo <project>.
    module = parse_module(project / "infra" / "terraform" / "azure")
    production_group = module.resolve("${var.project}-${var.environment}", "production")
    assert f'--resource-group "{production_group}"' in script
    assert module.locals["image_name"] == "${azurerm_container_registry.main.login_server}/${var.project}"
    assert 'repository="${IMAGE_REPOSITORY#*/}"' in script and '--image "$repository:$IMAGE_TAG"' in script
    assert "--write-enabled false" in script, "the promoted tag is locked like the pushed one"


@pytest.mark.parametrize("serving", ["container", "kubernetes", "managed", "batch"])
def test_the_service_writes_its_inference_log_under_the_prefix_only(render, serving: str) -> None:
    """The runtime identity ships the inference log: every blob action on the data container limited to
    inference/ by an ABAC condition; the service is told where (INFERENCE_LOG_URI + the account)."""
    module = azure_module(render, serving=serving)
    assignments = module.of_type("azurerm_role_assignment")
    if serving == "batch":  # no service, no log: the batch job's own grant is in serving_batch.tf
        assert "runtime_writes_inference_log" not in assignments
        return
    grant = assignments["runtime_writes_inference_log"]
    assert grant["principal_id"] == "${azurerm_user_assigned_identity.runtime.principal_id}"
    assert grant["scope"] == '${azurerm_storage_container.main["data"].id}'
    assert grant["condition_version"] == "2.0"
    condition = grant["condition"]
    for action in ("read", "write", "add/action", "delete"):
        assert (
            f"!(ActionMatches{{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/{action}'}})"
            in condition
        )
    assert "blobs:path] StringStartsWith '${local.inference_log_prefix}'" in condition
    assert module.locals["inference_log_prefix"] == "inference/"
    if serving == "container":
        (app,) = module.of_type("azurerm_container_app").values()
        env = {item["name"]: item["value"] for item in app["template"][0]["container"][0]["env"]}
    elif serving == "managed":
        env = module.of_type("azapi_resource")["ml_deployment"]["body"]["properties"]["environmentVariables"]
    else:  # kubernetes: make k8s-manifests merges the output into the server's ConfigMap (tests/test_kubernetes.py)
        assert module.outputs["inference_log_uri"][0]["value"] == "${local.inference_log_uri}"
        return
    assert env["INFERENCE_LOG_URI"] == "${local.inference_log_uri}"
    assert env["AZURE_STORAGE_ACCOUNT_NAME"] == "${azurerm_storage_account.main.name}"


def test_airflow_pipeline_pods_get_one_federated_identity_and_their_resources_from_here(render) -> None:
    module = azure_module(render, orchestrator="airflow")
    credential = module.resources[("azurerm_federated_identity_credential", "pipeline")]
    assert credential["subject"] == "system:serviceaccount:${var.airflow_namespace}:${local.pipeline_service_account}"
    assert module.resources[("azurerm_role_assignment", "pipeline_data_contributor")]["scope"] == (
        '${azurerm_storage_container.main["data"].id}'
    )
    # the pods' requests/limits reach the DAG as an Airflow Variable of the Helm values this stack outputs
    assert "pipeline_resources" in module.locals["airflow_variables"]
    assert "airflow_helm_values" in module.outputs
    assert not (render(cloud_provider="azure") / "infra" / "terraform" / "azure" / "orchestration_airflow.tf").exists()
