"""The generated GitHub workflows and actions: linted, schema-checked, hardened, consistent with the Makefile.

Every allowed answer combination is rendered (renders are shared with the other test modules) and checked with
the tools the generated project runs in CI: actionlint (with shellcheck), zizmor, the vendored JSON schemas of
check-jsonschema and checkov's GitHub Actions policies. The other tests read the YAML itself: every action
pinned to a commit, least-privilege permissions, a timeout on every job, and every `make X` a workflow runs
defined in the rendered Makefile.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import CLOUD_SERVING_COMBOS, RENDER_MATRIX, combo_id, run, tool

# Every pair of answer values (conftest.RENDER_MATRIX), monitoring off (no drift.yml) among them.
WORKFLOW_COMBOS = RENDER_MATRIX

PINNED_USES = re.compile(r"^[\w.-]+/[\w./-]+@(?P<sha>[0-9a-f]{40}) # (?P<version>v\d+(?:\.\d+){0,2})$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>.+?)\s*$")
MAKE_CALL = re.compile(r"(?:^|[\s;&|(`])make\s+(?P<args>[^;&|)`\n]*)")
MAKE_TARGET = re.compile(r"^[A-Za-z0-9][\w.-]*$")  # not an option, a VAR=value or a redirection
CHECKOUT = "actions/checkout@"
CLOUD_LOGIN = "./.github/actions/cloud-login"
# mints the tracking server's short-lived token from the job's OIDC identity (tracking_server != local)
TRACKING_AUTH = "./.github/actions/tracking-auth"


def github_files(project: Path) -> list[Path]:
    """Workflows, composite actions and dependabot.yml of a render."""
    github = project / ".github"
    return sorted([*github.glob("workflows/*.yml"), *github.glob("actions/*/action.yml"), github / "dependabot.yml"])


def workflows(project: Path) -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(project.glob(".github/workflows/*.yml"))}


def composite_actions(project: Path) -> dict[str, dict]:
    return {
        path.parent.name: yaml.safe_load(path.read_text())
        for path in sorted(project.glob(".github/actions/*/action.yml"))
    }


def triggers(workflow: dict) -> dict:
    """The `on:` mapping (PyYAML reads the bare key `on` as the boolean True)."""
    on = workflow.get("on", workflow.get(True))
    return on if isinstance(on, dict) else {name: None for name in ([on] if isinstance(on, str) else on)}


def steps_of(document: dict) -> Iterator[dict]:
    """Every step of a workflow's jobs or of a composite action."""
    if "runs" in document:
        yield from document["runs"].get("steps", [])
        return
    for job in document["jobs"].values():
        yield from job.get("steps", [])


def make_targets_called(project: Path) -> set[str]:
    """Targets of every `make ...` in the run scripts of the workflows and composite actions."""
    documents = [*workflows(project).values(), *composite_actions(project).values()]
    targets: set[str] = set()
    for document in documents:
        for step in steps_of(document):
            for match in MAKE_CALL.finditer(step.get("run", "")):
                words = shlex.split(match["args"], comments=True)
                targets.update(word for word in words if MAKE_TARGET.match(word))
    return targets


def makefile_targets(project: Path) -> set[str]:
    """Targets of the rendered Makefile, read from make's own database (so the Makefile must parse)."""
    result = subprocess.run(
        ["make", "--print-data-base", "--question", "--no-builtin-rules", "--no-builtin-variables"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MAKEFLAGS": ""},
    )
    assert "*** " not in result.stderr, f"the rendered Makefile does not parse:\n{result.stderr}"
    target = re.compile(r"^(?P<name>[A-Za-z0-9][\w.-]*):(?!=)")
    return {m["name"] for line in result.stdout.splitlines() if (m := target.match(line))}


def json_documents(text: str) -> list[dict]:
    """checkov prints one JSON report per scanned directory, one after the other."""
    decoder, position, documents = json.JSONDecoder(), 0, []
    while (position := len(text) - len(text[position:].lstrip())) < len(text):
        document, position = decoder.raw_decode(text, position)
        documents.extend(document if isinstance(document, list) else [document])
    return documents


def describe_zizmor_finding(finding: dict) -> str:
    places = []
    for location in finding.get("locations", []):
        key = location.get("symbolic", {}).get("key", {})
        path = next(iter(key.values()), {}).get("verbatim_path", "?") if isinstance(key, dict) else key
        row = location.get("concrete", {}).get("location", {}).get("start_point", {}).get("row", -1) + 1
        places.append(f"{path}:{row}")
    severity = finding.get("determinations", {}).get("severity", "?")
    return f"{finding['ident']} ({severity}): {finding['desc']} at {', '.join(places)}"


@pytest.fixture(params=WORKFLOW_COMBOS, ids=combo_id)
def project(request, render) -> Path:
    return render(**request.param)


def test_actionlint_finds_nothing(project: Path) -> None:
    """actionlint, with shellcheck on every run script; it needs a git work tree to find the project root."""
    tool("shellcheck")
    run(["git", "init", "--quiet"], cwd=project)
    result = run([tool("actionlint"), "-no-color"], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing(project: Path) -> None:
    """zizmor at its default persona, on workflows, composite actions and dependabot.yml (offline audits)."""
    result = run([tool("zizmor"), "--offline", "--format", "json", ".github"], cwd=project)
    findings = [finding for finding in json.loads(result.stdout or "[]") if not finding.get("ignored")]
    summary = [describe_zizmor_finding(finding) for finding in findings]
    assert summary == [], "\n".join(summary)
    assert result.returncode == 0, result.stderr


def test_files_match_their_schemas(project: Path) -> None:
    schemas = {
        "vendor.github-workflows": sorted(project.glob(".github/workflows/*.yml")),
        "vendor.github-actions": sorted(project.glob(".github/actions/*/action.yml")),
        "vendor.dependabot": [project / ".github/dependabot.yml"],
    }
    for schema, paths in schemas.items():
        if not paths:
            continue
        result = run([tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)], cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_github_actions_policies_pass(render) -> None:
    """checkov's GitHub Actions policies on the workflows of every cloud x serving render, in one run.

    Workflows do not depend on experiment tracking, and checkov's start-up dominates its run time, so one
    process scans the 14 renders together.
    """
    checkov = str(Path.home() / ".local/bin/checkov")
    if not Path(checkov).exists():
        checkov = tool("checkov")
    projects = [render(**answers) for answers in CLOUD_SERVING_COMBOS]
    directories = [arg for project in projects for arg in ("--directory", str(project / ".github"))]
    result = run(
        [
            checkov,
            "--framework",
            "github_actions",
            "--skip-download",
            "--quiet",
            "--compact",
            "--output",
            "json",
            *directories,
        ],
        cwd=projects[0],
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )
    reports = json_documents(result.stdout)
    failed = [
        f"{check['check_id']} {check['file_abs_path']}:{check['file_line_range']}: {check['check_name']}"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    passed = sum(report.get("summary", {}).get("passed", 0) for report in reports)
    assert failed == [], "\n".join(failed)
    assert passed > 0, f"checkov checked nothing:\n{result.stdout[:2000]}{result.stderr[-2000:]}"


def test_every_make_target_a_workflow_runs_exists(project: Path) -> None:
    called = make_targets_called(project)
    assert {"lint", "typecheck", "test", "pipeline", "precommit"} <= called, "CI must run the core checks"
    missing = called - makefile_targets(project)
    assert not missing, f"workflows run make targets the rendered Makefile does not define: {sorted(missing)}"


def test_third_party_actions_are_pinned_to_one_commit_each(render) -> None:
    """Every `uses:` outside this repository names a commit SHA with its version, the same one everywhere."""
    pins: dict[str, set[str]] = defaultdict(set)
    for answers in CLOUD_SERVING_COMBOS:
        project = render(**answers)
        for path in github_files(project):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if not (match := USES_LINE.match(line)) or match["ref"].startswith("./"):
                    continue
                ref = match["ref"]
                assert PINNED_USES.match(ref), f"{path.relative_to(project)}:{number}: not pinned: {ref}"
                pins[ref.split("@")[0]].add(ref.split("@")[1])
    assert pins, "no third-party action found"
    inconsistent = {action: sorted(refs) for action, refs in pins.items() if len(refs) > 1}
    assert not inconsistent, f"one action, several pins: {inconsistent}"


def test_workflows_are_least_privilege(project: Path) -> None:
    for name, workflow in workflows(project).items():
        assert "pull_request_target" not in triggers(workflow), f"{name}: pull_request_target runs untrusted code"
        assert "workflow_run" not in triggers(workflow), f"{name}: workflow_run runs with the base repository's token"
        assert workflow.get("permissions") == {}, f"{name}: the workflow default must be `permissions: {{}}`"
        assert "concurrency" in workflow, f"{name}: no concurrency group"
        for job_id, job in workflow["jobs"].items():
            where = f"{name} job {job_id}"
            assert "permissions" in job, f"{where}: no explicit permissions"
            if "uses" in job:  # a reusable-workflow call: its own jobs carry the timeouts
                continue
            assert isinstance(job.get("timeout-minutes"), int), f"{where}: no timeout-minutes"
            writes = {scope for scope, access in job["permissions"].items() if access == "write"}
            uses = [step.get("uses", "") for step in job.get("steps", [])]
            logs_in = CLOUD_LOGIN in uses or TRACKING_AUTH in uses
            assert ("id-token" in writes) == logs_in, (
                f"{where}: id-token: write exactly when it logs in to a cloud or to the tracking server"
            )
            uploads_sarif = any("codeql-action/upload-sarif" in ref for ref in uses)
            assert ("security-events" in writes) == uploads_sarif, f"{where}: security-events: write only for SARIF"


def test_checkouts_do_not_keep_the_token(project: Path) -> None:
    for name, document in [*workflows(project).items(), *composite_actions(project).items()]:
        for step in steps_of(document):
            if step.get("uses", "").startswith(CHECKOUT):
                assert step.get("with", {}).get("persist-credentials") is False, f"{name}: {step}"


def test_no_expression_is_expanded_inside_a_script(project: Path) -> None:
    """`${{ }}` in a run script is spliced into the shell before it runs: values must come in through env."""
    for name, document in [*workflows(project).items(), *composite_actions(project).items()]:
        for step in steps_of(document):
            assert "${{" not in step.get("run", ""), f"{name}: expression in the script of {step.get('name')}"


def test_deployment_workflows_follow_the_answers(render) -> None:
    """cd.yml exists only with a cloud and a serving mode, infra.yml only with a cloud; both use OIDC."""
    for answers in CLOUD_SERVING_COMBOS:
        project = render(**answers)
        names = set(workflows(project))
        cloud, serving = answers["cloud_provider"], answers["serving"]
        assert ("cd.yml" in names) == (cloud != "none" and serving != "none"), answers
        assert ("infra.yml" in names) == (cloud != "none"), answers
        assert (project / ".github/actions/cloud-login/action.yml").exists() == (cloud != "none"), answers
        if "cd.yml" in names:
            cd = workflows(project)["cd.yml"]
            assert cd["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
            assert "workflow_call" in triggers(workflows(project)["ci.yml"])
            assert cd["jobs"]["production"]["environment"]["name"] == "production"
            assert cd["jobs"]["production"]["needs"] == "staging"
        if cloud != "none":
            login = (project / ".github/actions/cloud-login/action.yml").read_text()
            expected = {
                "aws": "role-to-assume:",
                "gcp": "workload_identity_provider:",
                "azure": "client-id:",
            }[cloud]
            assert expected in login, answers
            assert "secrets." not in login and "access-key" not in login, "no long-lived cloud keys"
        dependabot = yaml.safe_load((project / ".github/dependabot.yml").read_text())
        ecosystems = {update["package-ecosystem"]: update["directory"] for update in dependabot["updates"]}
        expected_ecosystems = {"uv": "/", "github-actions": "/", "docker": "/"}
        if cloud != "none":
            expected_ecosystems["terraform"] = f"/infra/terraform/{cloud}"
            assert (project / expected_ecosystems["terraform"].lstrip("/")).is_dir()
        assert ecosystems == expected_ecosystems, answers


def _trivy_gate(step: dict) -> bool:
    """A trivy step that fails the job on a fixable CRITICAL or HIGH vulnerability."""
    inputs = step.get("with", {})
    return (
        step.get("uses", "").startswith("aquasecurity/trivy-action@")
        and inputs.get("exit-code") == "1"
        and set(inputs.get("severity", "").split(",")) == {"CRITICAL", "HIGH"}
    )


def test_the_image_that_reaches_production_is_the_one_scanned(render) -> None:
    """CD scans the digest it pushed before any deployment, and every environment deploys that digest."""
    for answers in CLOUD_SERVING_COMBOS:
        project = render(**answers)
        if "cd.yml" not in workflows(project):
            continue
        jobs = workflows(project)["cd.yml"]["jobs"]
        steps = jobs["image"]["steps"]
        # the service's image (aws batch renders also build the EMR Serverless image, `<sha>-spark`, after it)
        (build,) = [index for index, step in enumerate(steps) if step.get("id") == "build"]
        assert steps[build]["uses"].startswith("docker/build-push"), combo_id(answers)
        scans = [index for index, step in enumerate(steps) if _trivy_gate(step)]
        assert scans and scans[0] > build, f"{combo_id(answers)}: the pushed image is not scanned (or before its build)"
        scan = steps[scans[0]]
        build_id = steps[build]["id"]
        pushed = f"${{{{ steps.{build_id}.outputs.digest }}}}"
        assert scan["with"]["image-ref"] == "${{ env.IMAGE_REPOSITORY }}@" + pushed
        assert jobs["image"]["outputs"]["digest"] == pushed
        assert jobs["staging"]["needs"] == "image" and jobs["production"]["needs"] == "staging"
        assert jobs["staging"]["outputs"]["image-digest"] == "${{ needs.image.outputs.digest }}"
        for environment, digest in (("staging", "needs.image"), ("production", "needs.staging")):
            (deploy,) = [step for step in jobs[environment]["steps"] if step.get("uses") == "./.github/actions/deploy"]
            output = "digest" if environment == "staging" else "image-digest"
            expected = f"${{{{ {digest}.outputs.{output} }}}}"
            assert deploy["with"]["image-digest"] == expected, (combo_id(answers), environment)
        action = composite_actions(project)["deploy"]
        assert action["inputs"]["image-digest"]
        deploys = [step["run"] for step in action["runs"]["steps"] if "make deploy" in step.get("run", "")]
        assert deploys and all("IMAGE_DIGEST=" in run_script for run_script in deploys), combo_id(answers)


def test_ci_scans_the_image_even_when_the_raw_data_is_dvc_tracked(render) -> None:
    """The image job (trivy) runs on every pull request; only the smoke test needs the trained model."""
    for answers in CLOUD_SERVING_COMBOS:
        project = render(**answers)
        image = workflows(project)["ci.yml"]["jobs"]["image"]
        assert "if" not in image, f"{combo_id(answers)}: the image job can be skipped ({image.get('if')})"
        steps = image["steps"]
        assert any(_trivy_gate(step) for step in steps), combo_id(answers)
        assert not [step for step in steps if _trivy_gate(step) and "ran" in step.get("if", "")], "the scan is skipped"
        if answers["cloud_provider"] != "none":
            (stand_in,) = [step for step in steps if step.get("if") == "needs.pipeline.outputs.ran != 'true'"]
            assert "models/champion/model.onnx" in stand_in["run"]
