"""The release tags come from the release table (releases.toml) through `make tags` (hooks/release_tags.py).

Every test works in a temporary clone of this repository made without tags (`git clone --no-tags`), as a fresh
CI checkout of main is, with this working tree's script, table and CHANGELOG.md: the script creates exactly the
table's tags, annotated, on the table's commits, with the CHANGELOG section as the message; it refuses, and
tags nothing, when the table and the changelog disagree or a tag would move; and copier then sees the releases
(`copier copy` without `--vcs-ref` takes the newest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_ROOT, run, tool

sys.path.insert(0, str(TEMPLATE_ROOT / "hooks"))

import release_tags
from release_notes import release_notes

TABLE = TEMPLATE_ROOT / "releases.toml"
CHANGELOG = TEMPLATE_ROOT / "CHANGELOG.md"
TAGGED, UNTAGGED = release_tags.read_table(TABLE)


def git(repository: Path, *args: str) -> str:
    result = run(["git", *args], cwd=repository)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def clone_without_tags(destination: Path) -> Path:
    git(destination.parent, "clone", "--quiet", "--no-tags", str(TEMPLATE_ROOT), destination.name)
    assert git(destination, "tag", "--list") == ""
    return destination


def make_tags(repository: Path, table: Path = TABLE, changelog: Path = CHANGELOG) -> subprocess.CompletedProcess[str]:
    """The script as `make tags` runs it, on `repository`, with a git configuration of its own (no identity)."""
    config = repository.parent / "gitconfig"
    config.write_text("[tag]\n\tgpgSign = false\n", encoding="utf-8")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1"}
    command = [sys.executable, str(TEMPLATE_ROOT / "hooks/release_tags.py"), "--repository", str(repository)]
    return subprocess.run(
        [*command, "--table", str(table), "--changelog", str(changelog), "--json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def tags_of(repository: Path) -> dict[str, str]:
    """tag -> the commit it points to."""
    listed = git(repository, "for-each-ref", "--format=%(refname:short) %(*objectname)", "refs/tags")
    return dict(line.split() for line in listed.splitlines())


@pytest.fixture(scope="module")
def tagged_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clone = clone_without_tags(tmp_path_factory.mktemp("tagged") / "copier-mlops")
    result = make_tags(clone)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [f"v{version}" for version in TAGGED]
    return clone


def test_every_release_of_the_table_is_a_commit_of_mains_history_with_its_dated_section() -> None:
    assert TAGGED, "releases.toml lists no release"
    for version, commit in TAGGED.items():
        ancestor = run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=TEMPLATE_ROOT)
        assert ancestor.returncode == 0, f"{version}: {commit} is not in the history of HEAD: {ancestor.stderr}"
        changelog = git(TEMPLATE_ROOT, "show", f"{commit}:CHANGELOG.md")
        assert release_notes(changelog, f"v{version}").strip(), f"{version}: its commit predates its dated entry"
    assert all(len(reason) > 40 for reason in UNTAGGED.values()), "an untagged release needs its reason"
    # The table, this CHANGELOG.md and the tags this clone has (if any) agree: `make tags` would succeed here.
    release_tags.plan(TEMPLATE_ROOT, TABLE, CHANGELOG)


def test_make_tags_creates_exactly_the_tables_annotated_tags(tagged_clone: Path) -> None:
    assert tags_of(tagged_clone) == {f"v{version}": commit for version, commit in TAGGED.items()}
    changelog = CHANGELOG.read_text(encoding="utf-8")
    for version in TAGGED:
        tag = f"v{version}"
        assert git(tagged_clone, "cat-file", "-t", tag) == "tag", f"{tag} is not annotated"
        message = git(tagged_clone, "tag", "--list", "--format=%(contents)", tag)
        assert message == f"copier-mlops {version}\n\n{release_notes(changelog, tag)}".strip()
    again = make_tags(tagged_clone)
    assert (again.returncode, json.loads(again.stdout)) == (0, []), "a second run creates nothing"


def test_copier_takes_the_newest_tag_without_vcs_ref(tagged_clone: Path, tmp_path: Path) -> None:
    newest = max(TAGGED, key=lambda version: tuple(int(part) for part in version.split(".")))
    project = tmp_path / "project"
    result = run([tool("copier"), "copy", "--defaults", "--quiet", str(tagged_clone), str(project)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["_commit"] == f"v{newest}"


@pytest.mark.parametrize(
    ("table_edit", "changelog_edit", "message"),
    [
        pytest.param(
            None,
            lambda text: text.replace("## [Unreleased]\n", "## [Unreleased]\n\n## [9.9.0] - 2026-12-24\n\n- More.\n"),
            "CHANGELOG.md dates 9.9.0 but releases.toml has no line for it",
            id="dated-section-without-a-table-entry",
        ),
        pytest.param(
            lambda text, head: text.replace("\n[untagged]\n", f'\n"9.9.0" = "{head}"\n[untagged]\n'),
            None,
            "releases.toml lists 9.9.0 but CHANGELOG.md has no dated section",
            id="table-entry-without-a-dated-section",
        ),
        pytest.param(
            lambda text, head: text.replace("\n[untagged]\n", f'\n"9.9.0" = "{head[:7]}"\n[untagged]\n'),
            lambda text: text.replace("## [Unreleased]\n", "## [Unreleased]\n\n## [9.9.0] - 2026-12-24\n\n- More.\n"),
            "9.9.0 = '" + "{short}" + "' is not a full 40-character commit hash",
            id="abbreviated-commit",
        ),
        pytest.param(
            lambda text, head: text.replace("\n[untagged]\n", f'\n"9.9.0" = "{"0" * 40}"\n[untagged]\n'),
            lambda text: text.replace("## [Unreleased]\n", "## [Unreleased]\n\n## [9.9.0] - 2026-12-24\n\n- More.\n"),
            "v9.9.0: 0000000000000000000000000000000000000000 is not a commit of this repository",
            id="unknown-commit",
        ),
    ],
)
def test_make_tags_refuses_a_table_and_changelog_that_disagree(
    tmp_path: Path, table_edit, changelog_edit, message: str
) -> None:
    clone = clone_without_tags(tmp_path / "copier-mlops")
    head = git(clone, "rev-parse", "HEAD")
    table, changelog = tmp_path / "releases.toml", tmp_path / "CHANGELOG.md"
    table_text, changelog_text = TABLE.read_text(encoding="utf-8"), CHANGELOG.read_text(encoding="utf-8")
    table.write_text(table_edit(table_text, head) if table_edit else table_text, encoding="utf-8")
    changelog.write_text(changelog_edit(changelog_text) if changelog_edit else changelog_text, encoding="utf-8")
    assert table.read_text(encoding="utf-8") != table_text or changelog.read_text(encoding="utf-8") != changelog_text

    result = make_tags(clone, table, changelog)

    assert result.returncode == 1
    assert message.format(short=head[:7]) in result.stderr
    assert git(clone, "tag", "--list") == "", "nothing is tagged while the table is inconsistent"


def test_make_tags_never_moves_a_tag(tmp_path: Path) -> None:
    clone = clone_without_tags(tmp_path / "copier-mlops")
    version, commit = next(iter(TAGGED.items()))
    elsewhere = git(clone, "rev-parse", f"{commit}^")
    git(clone, "-c", "user.name=t", "-c", "user.email=t@example.com", "tag", "-a", f"v{version}", "-m", "x", elsewhere)

    result = make_tags(clone)

    assert result.returncode == 1
    assert f"v{version} points to {elsewhere}, releases.toml says {commit}: a published tag is never moved" in (
        result.stderr
    )
    assert tags_of(clone) == {f"v{version}": elsewhere}, "the tag stays, and no other tag is created"
