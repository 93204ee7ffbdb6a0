"""Create the missing release tags `vX.Y.Z` from the release table (releases.toml): `make tags`.

    python hooks/release_tags.py [--repository .] [--table releases.toml] [--changelog CHANGELOG.md] [--json]

Each tag is annotated, on the commit the table names, with the version's section of CHANGELOG.md as its message
(hooks/release_notes.py). Nothing is created unless the whole table is consistent, and it refuses (exit 1, the
reason on stderr) when:

- a dated section of CHANGELOG.md has no line in the table (neither under [releases] nor under [untagged]),
  or a line of the table has no dated section;
- a commit of the table is not a full hash of a commit in the history of HEAD (main);
- a tag exists and points elsewhere than the table says: a published tag is never moved (docs/releasing.md).

Tags that exist on the right commit are left as they are, so running it again does nothing. `--json` prints the
list of the tags it created (the Tags workflow runs the release workflow for each). Standard library only, so it
runs on a bare runner.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from release_notes import DATE, HEADING, ReleaseNotesError, release_notes

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
FULL_HASH = re.compile(r"^[0-9a-f]{40}$")
# The tagger when the repository has no git identity (a bare CI machine); a configured one is used otherwise.
FALLBACK_IDENTITY = {"GIT_COMMITTER_NAME": "copier-mlops release tags", "GIT_COMMITTER_EMAIL": "releases@invalid"}


class ReleaseTableError(ValueError):
    """The table, the changelog and the repository disagree; the message says what to fix."""


def read_table(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(version -> commit, version -> why it has no tag) from the release table."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ReleaseTableError(f"{path.name} is not valid TOML: {error}") from error
    unknown = set(table) - {"releases", "untagged"}
    if unknown:
        raise ReleaseTableError(f"{path.name}: unknown section(s) {sorted(unknown)}: only [releases] and [untagged]")
    tagged, untagged = table.get("releases", {}), table.get("untagged", {})
    for version in [*tagged, *untagged]:
        if not VERSION.match(version):
            raise ReleaseTableError(f"{path.name}: {version!r} is not a version X.Y.Z")
    if both := sorted(set(tagged) & set(untagged)):
        raise ReleaseTableError(f"{path.name}: {', '.join(both)} both under [releases] and under [untagged]")
    for version, commit in tagged.items():
        if not isinstance(commit, str) or not FULL_HASH.match(commit):
            raise ReleaseTableError(f"{path.name}: {version} = {commit!r} is not a full 40-character commit hash")
    for version, reason in untagged.items():
        if not isinstance(reason, str) or not reason.strip():
            raise ReleaseTableError(f"{path.name}: [untagged] {version} needs the reason it has no tag")
    return tagged, untagged


def dated_versions(changelog: str) -> list[str]:
    """The versions CHANGELOG.md releases (a `## [X.Y.Z] - YYYY-MM-DD` heading), newest first."""
    headings = (HEADING.match(line) for line in changelog.splitlines())
    return [h["version"] for h in headings if h and h["date"] and DATE.match(h["date"]) and VERSION.match(h["version"])]


def git(
    repository: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repository, input=stdin, capture_output=True, text=True, check=False, env=env
    )


def tag_commit(repository: Path, tag: str) -> str | None:
    probe = git(repository, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}")
    return probe.stdout.strip() if probe.returncode == 0 else None


def plan(repository: Path, table: Path, changelog: Path) -> list[tuple[str, str, str]]:
    """(tag, commit, message) of every missing tag, oldest first, after checking everything (module docstring)."""
    tagged, untagged = read_table(table)
    text = changelog.read_text(encoding="utf-8")
    dated = dated_versions(text)
    problems = [
        f'CHANGELOG.md dates {version} but {table.name} has no line for it: add `"{version}" = "<full hash of '
        'its commit on main>"` under [releases]'
        for version in dated
        if version not in tagged and version not in untagged
    ]
    problems += [
        f"{table.name} lists {version} but CHANGELOG.md has no dated section `## [{version}] - YYYY-MM-DD`"
        for version in [*tagged, *untagged]
        if version not in dated
    ]
    missing = []
    for version in sorted(tagged, key=lambda v: tuple(int(n) for n in v.split("."))):
        commit, tag = tagged[version], f"v{version}"
        if git(repository, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
            problems.append(
                f"{tag}: {commit} is not a commit of this repository (a shallow clone? `git fetch --unshallow`)"
            )
            continue
        if git(repository, "merge-base", "--is-ancestor", commit, "HEAD").returncode != 0:
            problems.append(f"{tag}: {commit} is not in the history of HEAD: a release is a commit on main")
            continue
        existing = tag_commit(repository, tag)
        if existing is None:
            try:
                missing.append((tag, commit, f"copier-mlops {version}\n\n{release_notes(text, tag)}"))
            except ReleaseNotesError as error:
                problems.append(f"{tag}: {error}")
        elif existing != commit:
            problems.append(
                f"{tag} points to {existing}, {table.name} says {commit}: a published tag is never moved "
                "(docs/releasing.md, Mistakes); fix the table, or release a new version"
            )
    if problems:
        raise ReleaseTableError("\n".join(problems))
    return missing


def tagger_environment(repository: Path) -> dict[str, str]:
    env = dict(os.environ)
    if git(repository, "var", "GIT_COMMITTER_IDENT").returncode != 0:
        env.update(FALLBACK_IDENTITY)
    return env


def create_tags(repository: Path, table: Path, changelog: Path) -> list[str]:
    """Create every missing tag (nothing at all when the table is inconsistent); return the created tags."""
    missing = plan(repository, table, changelog)
    env = tagger_environment(repository)
    for tag, commit, message in missing:
        result = git(
            repository, "tag", "--annotate", "--cleanup=verbatim", "--file=-", tag, commit, env=env, stdin=message
        )
        if result.returncode != 0:
            raise ReleaseTableError(f"git tag {tag} failed:\n{result.stderr}")
    return [tag for tag, _, _ in missing]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=ROOT, help="the git repository to tag")
    parser.add_argument("--table", type=Path, default=ROOT / "releases.toml")
    parser.add_argument("--changelog", type=Path, default=ROOT / "CHANGELOG.md")
    parser.add_argument("--json", action="store_true", help="print the created tags as a JSON list")
    args = parser.parse_args(argv)
    try:
        created = create_tags(args.repository, args.table, args.changelog)
    except ReleaseTableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for tag in created:
        print(f"created {tag}", file=sys.stderr)
    if not created:
        print("every release of the table is tagged", file=sys.stderr)
    if args.json:
        print(json.dumps(created))
    return 0


if __name__ == "__main__":
    sys.exit(main())
