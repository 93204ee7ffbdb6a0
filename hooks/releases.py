"""Build a git repository of the template with its previous and newest releases tagged.

Used by the update round-trip tests (tests/test_update.py) and by `make bench` (benchmarks/bench.py), so both
measure the same release step.

Where the two versions come from: the release tags are made from the release table (releases.toml, `make tags`),
and the repository is built in a scratch directory:

- the previous release (the second version in CHANGELOG.md) is the REAL release: the tree of its tag `vX.Y.Z`
  in this repository, or, in a clone where `make tags` has not run, of the commit the release table names for
  it (`RELEASE_COMMITS`, the same commit the tag is made on), committed and tagged first. `from_ref` overrides
  it with any tag or commit of this repository;
- the newest release (the newest version in CHANGELOG.md) is this working tree as it is (tracked and new files,
  never ignored ones), committed on top and tagged.

So an update test crosses exactly what the newest release changes, its migration included.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import yaml

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
RELEASE_HEADING = re.compile(r"^## \[(\d+\.\d+\.\d+)\]", re.MULTILINE)
# The commit of each tagged release (the release table, the source of truth of the tags: hooks/release_tags.py).
RELEASE_COMMITS: dict[str, str] = tomllib.loads((TEMPLATE_ROOT / "releases.toml").read_text(encoding="utf-8"))[
    "releases"
]


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout


def releases(root: Path = TEMPLATE_ROOT) -> list[str]:
    """Release versions in CHANGELOG.md, newest first."""
    return RELEASE_HEADING.findall((root / "CHANGELOG.md").read_text(encoding="utf-8"))


def migration_scripts(version: str, root: Path = TEMPLATE_ROOT) -> list[Path]:
    """The scripts copier.yml runs as migrations of `version`, relative to the template root."""
    config = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
    return [
        next(Path(word.split("}}/")[-1]) for word in migration["command"] if word.endswith(".py"))
        for migration in config.get("_migrations", [])
        if str(migration["version"]).lstrip("v") == version
    ]


def migration_moves(version: str, root: Path = TEMPLATE_ROOT) -> dict[str, str]:
    """old path -> new path of every file the migrations of `version` move (their `MOVES`, if any)."""
    moves: dict[str, str] = {}
    migrations = str(root / "hooks" / "migrations")
    if migrations not in sys.path:  # the scripts import their helpers (moved_files.py) by name
        sys.path.insert(0, migrations)
    for script in migration_scripts(version, root):
        spec = importlib.util.spec_from_file_location(script.stem, root / script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        moves.update(getattr(module, "MOVES", {}))
    return moves


def template_files(root: Path = TEMPLATE_ROOT) -> list[str]:
    """The template repository's files as a commit would hold them (tracked or new, never ignored)."""
    listed = git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return sorted(path for path in listed.split("\0") if path and (root / path).is_file())


def copy_working_tree(destination: Path, root: Path = TEMPLATE_ROOT) -> None:
    for relative in template_files(root):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)


def checkout_real_ref(ref: str, destination: Path, root: Path = TEMPLATE_ROOT) -> None:
    archive = destination.parent / f"{destination.name}-previous.tar"
    git(root, "archive", "--format=tar", f"--output={archive}", ref)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    archive.unlink()


def release_ref(version: str, root: Path = TEMPLATE_ROOT) -> str:
    """The tag of a published release in this repository, or its commit in the release table when the tag is
    missing (the commit `make tags` would tag: hooks/release_tags.py refuses a tag that points elsewhere)."""
    tag = f"v{version}"
    probe = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{tag}^{{commit}}"], cwd=root, capture_output=True, check=False
    )
    if probe.returncode == 0:
        return tag
    if version not in RELEASE_COMMITS:
        raise LookupError(f"release {version} has no tag {tag} here and no commit in releases.toml")
    return RELEASE_COMMITS[version]


def commit_all(repository: Path, message: str, tag: str | None = None) -> None:
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--allow-empty", "-m", message)
    if tag:
        git(repository, "tag", tag)


def release_tags(root: Path = TEMPLATE_ROOT) -> tuple[str, str]:
    """(previous tag, newest tag) from CHANGELOG.md."""
    newest, previous = releases(root)[:2]
    return f"v{previous}", f"v{newest}"


def build_release_repo(destination: Path, from_ref: str | None = None, root: Path = TEMPLATE_ROOT) -> tuple[str, str]:
    """Create the tagged repository in `destination` (module docstring); return (previous tag, newest tag).

    Commits need a git identity: the caller sets GIT_AUTHOR_*/GIT_COMMITTER_* in the environment.
    """
    previous, newest = release_tags(root)
    ref = from_ref or release_ref(previous.lstrip("v"), root)
    destination.mkdir(parents=True)
    git(destination, "init", "--quiet")
    checkout_real_ref(ref, destination, root)
    commit_all(destination, f"copier-mlops {previous} ({ref})", tag=previous)
    for entry in destination.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    copy_working_tree(destination, root)
    commit_all(destination, f"copier-mlops {newest}", tag=newest)
    return previous, newest
