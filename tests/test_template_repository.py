"""The template repository's own GitHub workflows and its release-notes script.

.github/ of this repository runs the template's tests on pull requests and nightly (tests.yml), creates the
missing release tags from releases.toml on every push to main (tags.yml) and releases each new `vX.Y.Z` tag
(release.yml, called by tags.yml: changelog check, docs site, GitHub release). It is held to the same standard as the
workflows the template generates (tests/test_workflows.py): actionlint with shellcheck, zizmor, checkov's GitHub
Actions policies and the vendored JSON schemas all find nothing, every action is pinned to a commit (the same
commit the generated workflows pin), and every job has least-privilege permissions and a timeout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_ROOT, run, tool
from test_workflows import PINNED_USES, USES_LINE, describe_zizmor_finding, json_documents, steps_of, triggers

sys.path.insert(0, str(TEMPLATE_ROOT / "hooks"))

from release_notes import ReleaseNotesError, release_notes

GITHUB = TEMPLATE_ROOT / ".github"
WORKFLOW_FILES = sorted(GITHUB.glob("workflows/*.yml"))
CHECKOUT = "actions/checkout@"
MAKE_TARGET = re.compile(r"\bmake ([a-z][\w-]*)")


def workflows() -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in WORKFLOW_FILES}


def run_scripts(workflow: dict) -> list[str]:
    return [step["run"] for step in steps_of(workflow) if "run" in step]


def test_the_repository_has_its_workflows_and_dependabot() -> None:
    assert {path.name for path in WORKFLOW_FILES} == {"tests.yml", "tags.yml", "release.yml"}
    assert (GITHUB / "dependabot.yml").is_file()


# --- the checkers the generated project runs ----------------------------------------------------------------


def test_actionlint_finds_nothing() -> None:
    """actionlint lints the workflows of the repository it runs in, with shellcheck on every run script."""
    tool("shellcheck")
    result = run([tool("actionlint"), "-no-color", *map(str, WORKFLOW_FILES)], cwd=TEMPLATE_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_at_any_severity() -> None:
    result = run([tool("zizmor"), "--offline", "--format", "json", ".github"], cwd=TEMPLATE_ROOT)
    findings = [finding for finding in json.loads(result.stdout or "[]") if not finding.get("ignored")]
    summary = [describe_zizmor_finding(finding) for finding in findings]
    assert summary == [], "\n".join(summary)
    assert result.returncode == 0, result.stderr


def test_zizmor_pedantic_persona_finds_nothing() -> None:
    """Stricter than the generated project's check: the template's own release path holds pages and contents write."""
    result = run(
        [tool("zizmor"), "--offline", "--persona", "pedantic", "--format", "json", ".github"], cwd=TEMPLATE_ROOT
    )
    findings = [finding for finding in json.loads(result.stdout or "[]") if not finding.get("ignored")]
    assert [describe_zizmor_finding(finding) for finding in findings] == []


def test_checkov_github_actions_policies_pass() -> None:
    checkov = str(Path.home() / ".local/bin/checkov")
    if not Path(checkov).exists():
        checkov = tool("checkov")
    result = run(
        [
            *(checkov, "--framework", "github_actions", "--skip-download", "--quiet", "--compact"),
            *("--output", "json", "--directory", ".github"),
        ],
        cwd=TEMPLATE_ROOT,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )
    reports = json_documents(result.stdout)
    failed = [
        f"{check['check_id']} {check['file_path']}:{check['file_line_range']}: {check['check_name']}"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    passed = sum(report.get("summary", {}).get("passed", 0) for report in reports)
    assert failed == [], "\n".join(failed)
    assert passed > 0, f"checkov checked nothing:\n{result.stdout[:2000]}{result.stderr[-2000:]}"


@pytest.mark.parametrize(
    ("schema", "paths"),
    [("vendor.github-workflows", WORKFLOW_FILES), ("vendor.dependabot", [GITHUB / "dependabot.yml"])],
    ids=["workflows", "dependabot"],
)
def test_files_match_their_schemas(schema: str, paths: list[Path]) -> None:
    result = run([tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)], cwd=TEMPLATE_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# --- hardening, read from the YAML ----------------------------------------------------------------------------


def template_pins() -> dict[str, str]:
    """action -> commit of every action the generated workflows and composite actions pin."""
    pins: dict[str, str] = {}
    for path in (TEMPLATE_ROOT / "template/.github").rglob("*.y*ml*"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if (match := USES_LINE.match(line)) and (pinned := PINNED_USES.match(match["ref"])):
                pins[match["ref"].split("@")[0]] = pinned["sha"]
    return pins


def test_every_action_is_pinned_to_the_commit_the_generated_workflows_pin() -> None:
    shared = template_pins()
    seen: dict[str, set[str]] = {}
    for path in WORKFLOW_FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not (match := USES_LINE.match(line)):
                continue
            ref = match["ref"]
            if ref.startswith("./"):  # this repository's own reusable workflow, at the caller's commit
                continue
            assert PINNED_USES.match(ref), f"{path.name}:{number}: not pinned to a SHA with its version: {ref}"
            action, sha = ref.split("@")[0], ref.split("@")[1].split()[0]
            seen.setdefault(action, set()).add(sha)
            if action in shared:
                assert sha == shared[action], (
                    f"{path.name}:{number}: {action} is pinned to {shared[action]} in template/"
                )
    assert {action for action, shas in seen.items() if len(shas) > 1} == set(), seen


def test_workflows_are_least_privilege() -> None:
    for name, workflow in workflows().items():
        on = triggers(workflow)
        assert not {"pull_request_target", "workflow_run"} & set(on), f"{name}: a trigger with a privileged token"
        assert workflow.get("permissions") == {}, f"{name}: the workflow default must be `permissions: {{}}`"
        assert "concurrency" in workflow, f"{name}: no concurrency group"
        for job_id, job in workflow["jobs"].items():
            where = f"{name} job {job_id}"
            assert isinstance(job.get("permissions"), dict), f"{where}: no explicit permissions"
            writes = {scope for scope, access in job["permissions"].items() if access == "write"}
            if "uses" in job:  # a call of a reusable workflow: exactly the writes of the jobs it runs, no more
                called = yaml.safe_load((TEMPLATE_ROOT / job["uses"]).read_text(encoding="utf-8"))
                needed = {s for j in called["jobs"].values() for s, a in j["permissions"].items() if a == "write"}
                assert writes == needed, f"{where}: writes {sorted(writes)}, the called jobs need {sorted(needed)}"
                continue
            assert isinstance(job.get("timeout-minutes"), int), f"{where}: no timeout-minutes"
            uses = [step.get("uses", "") for step in job.get("steps", [])]
            deploys_pages = any(ref.startswith("actions/deploy-pages@") for ref in uses)
            assert ("id-token" in writes) == deploys_pages, f"{where}: id-token: write exactly for deploy-pages"
            assert ("pages" in writes) == deploys_pages, f"{where}: pages: write exactly for deploy-pages"
            scripts = run_scripts({"jobs": {job_id: job}})
            publishes = any(
                "gh release create" in script or ("git" in script and " push " in script) for script in scripts
            )
            assert ("contents" in writes) == publishes, (
                f"{where}: contents: write only to push tags or create a release"
            )
            assert writes <= {"id-token", "pages", "contents"}, f"{where}: writes {sorted(writes)}"


def test_checkouts_do_not_keep_the_token() -> None:
    for name, workflow in workflows().items():
        for step in steps_of(workflow):
            if step.get("uses", "").startswith(CHECKOUT):
                assert step.get("with", {}).get("persist-credentials") is False, f"{name}: {step}"


def test_no_expression_is_expanded_inside_a_script() -> None:
    for name, workflow in workflows().items():
        for script in run_scripts(workflow):
            assert "${{" not in script, f"{name}: expression in a run script:\n{script}"


def test_every_make_target_a_workflow_runs_exists() -> None:
    called = {
        target for workflow in workflows().values() for s in run_scripts(workflow) for target in MAKE_TARGET.findall(s)
    }
    defined = set(re.findall(r"^([a-z][\w-]*):", (TEMPLATE_ROOT / "Makefile").read_text(encoding="utf-8"), re.M))
    assert called >= {"lint", "lint-workflows", "test-fast", "docs"}
    assert called <= defined, f"workflows run make targets the Makefile does not define: {sorted(called - defined)}"


# --- what each workflow does ----------------------------------------------------------------------------------


def test_tests_run_fast_on_every_pull_request_and_the_whole_suite_for_main_and_nightly() -> None:
    tests = workflows()["tests.yml"]
    on = triggers(tests)
    assert set(on) == {"pull_request", "schedule", "workflow_dispatch"}
    assert on["pull_request"] is None, "every pull request, whatever its base branch"
    assert on["schedule"], "a nightly run"
    jobs = tests["jobs"]
    assert "lint" not in jobs["lint"].get("if", ""), "lint runs on every event"
    assert jobs["fast"]["if"] == "github.event_name == 'pull_request'"
    assert jobs["full"]["if"] == "github.event_name != 'pull_request' || github.base_ref == 'main'"
    assert any(script.strip() == "make test-fast" for script in run_scripts({"jobs": {"fast": jobs["fast"]}}))
    # The whole suite runs exactly the CI entry point of README.md, which installs everything on a fresh runner.
    assert any(script.strip() == "bash .ci/run" for script in run_scripts({"jobs": {"full": jobs["full"]}}))
    for job_id in ("fast", "full"):
        (checkout,) = [step for step in jobs[job_id]["steps"] if step.get("uses", "").startswith(CHECKOUT)]
        assert checkout["with"]["fetch-depth"] == 0, f"{job_id}: the update tests need the tags and history"


def test_tags_are_made_from_the_table_on_main_and_each_new_tag_is_released() -> None:
    tags = workflows()["tags.yml"]
    assert triggers(tags) == {"push": {"branches": ["main"]}}
    jobs = tags["jobs"]
    (checkout,) = [step for step in jobs["tags"]["steps"] if step.get("uses", "").startswith(CHECKOUT)]
    assert checkout["with"]["fetch-depth"] == 0, "the release commits and the existing tags"
    scripts = run_scripts({"jobs": {"tags": jobs["tags"]}})
    assert any("python3 hooks/release_tags.py --json" in script for script in scripts)
    assert jobs["release"]["needs"] == "tags"
    assert jobs["release"]["uses"] == "./.github/workflows/release.yml"
    assert jobs["release"]["with"] == {"tag": "${{ matrix.tag }}"}
    assert jobs["release"]["strategy"]["matrix"]["tag"] == "${{ fromJSON(needs.tags.outputs.created) }}"
    assert jobs["release"]["strategy"]["max-parallel"] == 1, "the newest release's docs are deployed last"


def test_release_checks_the_changelog_then_publishes_the_docs_then_the_release() -> None:
    release = workflows()["release.yml"]
    assert set(triggers(release)) == {"workflow_call"}, "the Tags workflow calls it (a pushed tag starts nothing)"
    assert triggers(release)["workflow_call"]["inputs"]["tag"]["required"] is True
    jobs = release["jobs"]
    assert "hooks/release_notes.py" in "\n".join(run_scripts({"jobs": {"notes": jobs["notes"]}}))
    assert jobs["docs"]["needs"] == "notes"
    assert "make docs" in run_scripts({"jobs": {"docs": jobs["docs"]}})
    docs_uses = [step.get("uses", "") for step in jobs["docs"]["steps"]]
    assert any(ref.startswith("actions/configure-pages@") for ref in docs_uses)
    upload = next(step for step in jobs["docs"]["steps"] if step.get("uses", "").startswith("actions/upload-pages-"))
    assert upload["with"]["path"] == "build/site", "the directory `make docs` builds"
    assert jobs["pages"]["needs"] == "docs"
    assert jobs["pages"]["environment"]["name"] == "github-pages"
    assert jobs["release"]["needs"] == "pages", "the release is announced only once its docs are published"
    (script,) = run_scripts({"jobs": {"release": jobs["release"]}})
    assert "gh release create" in script and "--notes-file" in script and "--verify-tag" in script


def test_dependabot_updates_the_tools_and_the_actions_after_a_cooldown() -> None:
    dependabot = yaml.safe_load((GITHUB / "dependabot.yml").read_text(encoding="utf-8"))
    updates = {update["package-ecosystem"]: update for update in dependabot["updates"]}
    assert set(updates) == {"uv", "github-actions"}
    assert all(update["directory"] == "/" and update["cooldown"]["default-days"] >= 7 for update in updates.values())


# --- hooks/release_notes.py ------------------------------------------------------------------------------------

CHANGELOG = """# Changelog

## [Unreleased]

- Something not released yet.

## [1.2.0] - 2026-12-01

### Added

- A new question.

## [1.1.0] - Unreleased

- Not dated yet.

## [1.0.1] - 2026-11-01

## [1.0.0] - 2026-10-01

- First release.

[Unreleased]: https://example.com/compare/v1.2.0...HEAD
[1.2.0]: https://example.com/compare/v1.0.0...v1.2.0
[1.0.0]: https://example.com/releases/tag/v1.0.0
"""


def test_release_notes_are_the_section_of_the_version_with_its_compare_link() -> None:
    notes = release_notes(CHANGELOG, "v1.2.0")
    assert notes == "### Added\n\n- A new question.\n\n**Compare**: https://example.com/compare/v1.0.0...v1.2.0\n"
    assert release_notes(CHANGELOG, "1.2.0") == notes


def test_release_notes_of_the_oldest_release_leave_out_the_link_definitions() -> None:
    assert (
        release_notes(CHANGELOG, "v1.0.0")
        == "- First release.\n\n**Compare**: https://example.com/releases/tag/v1.0.0\n"
    )


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("v9.9.9", "CHANGELOG.md has no section for 9.9.9"),
        ("v1.1.0", "dated 'Unreleased', not YYYY-MM-DD"),
        ("v1.0.1", "the section of 1.0.1 in CHANGELOG.md is empty"),
        ("v1.2.0rc1", "is not a release tag"),
        ("main", "is not a release tag"),
    ],
)
def test_release_notes_refuse_a_version_the_changelog_does_not_release(tag: str, message: str) -> None:
    with pytest.raises(ReleaseNotesError, match=re.escape(message)):
        release_notes(CHANGELOG, tag)


def test_the_script_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(CHANGELOG, encoding="utf-8")
    script = [sys.executable, str(TEMPLATE_ROOT / "hooks/release_notes.py"), "--changelog", str(changelog)]
    missing = subprocess.run([*script, "v2.0.0"], capture_output=True, text=True, check=False)
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert "error: CHANGELOG.md has no section for 2.0.0" in missing.stderr
    output = tmp_path / "notes.md"
    present = subprocess.run([*script, "v1.2.0", "--output", str(output)], capture_output=True, text=True, check=False)
    assert present.returncode == 0, present.stderr
    assert output.read_text(encoding="utf-8") == release_notes(CHANGELOG, "v1.2.0")


def test_every_dated_release_of_the_real_changelog_has_notes() -> None:
    changelog = (TEMPLATE_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    dated = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)
    assert dated, "CHANGELOG.md has no dated release"
    for version in dated:
        assert release_notes(changelog, f"v{version}").strip()
