"""Build a git repository of the template with its previous and newest releases tagged.

Used by the update round-trip tests (tests/test_update.py) and by `make bench` (benchmarks/bench.py), so both
measure the same release step.

Where the two versions come from: a fresh clone of main may not carry the release tags, so the repository is
built in a scratch directory from this working tree:

- the newest release (the newest version in CHANGELOG.md) is the working tree as it is, committed and tagged;
- the previous release is the same tree with the newest release's file moves undone (read from the `MOVES` of
  its migration scripts in hooks/migrations/), committed and tagged first; or, with `from_ref`, the tree of
  that real tag or commit of this repository (`git archive`).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import yaml

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
RELEASE_HEADING = re.compile(r"^## \[(\d+\.\d+\.\d+)\]", re.MULTILINE)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout


def releases(root: Path = TEMPLATE_ROOT) -> list[str]:
    """Release versions in CHANGELOG.md, newest first."""
    return RELEASE_HEADING.findall((root / "CHANGELOG.md").read_text(encoding="utf-8"))


def migration_moves(version: str, root: Path = TEMPLATE_ROOT) -> dict[str, str]:
    """old path -> new path of every migration copier.yml runs for `version`."""
    config = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
    moves: dict[str, str] = {}
    for migration in config.get("_migrations", []):
        if str(migration["version"]).lstrip("v") != version:
            continue
        script = next(Path(word.split("}}/")[-1]) for word in migration["command"] if word.endswith(".py"))
        spec = importlib.util.spec_from_file_location(script.stem, root / script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        moves.update(module.MOVES)
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
    archive = destination.parent / "previous.tar"
    git(root, "archive", "--format=tar", f"--output={archive}", ref)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    archive.unlink()


def commit_all(repository: Path, message: str, tag: str | None = None) -> None:
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--allow-empty", "-m", message)
    if tag:
        git(repository, "tag", tag)


def move_in_template(repository: Path, source: str, target: str) -> None:
    (repository / "template" / target).parent.mkdir(parents=True, exist_ok=True)
    git(repository, "mv", f"template/{source}", f"template/{target}")


def release_tags(root: Path = TEMPLATE_ROOT) -> tuple[str, str]:
    """(previous tag, newest tag) from CHANGELOG.md."""
    newest, previous = releases(root)[:2]
    return f"v{previous}", f"v{newest}"


def build_release_repo(destination: Path, from_ref: str | None = None, root: Path = TEMPLATE_ROOT) -> tuple[str, str]:
    """Create the tagged repository in `destination` (module docstring); return (previous tag, newest tag).

    Commits need a git identity: the caller sets GIT_AUTHOR_*/GIT_COMMITTER_* in the environment.
    """
    previous, newest = release_tags(root)
    destination.mkdir(parents=True)
    git(destination, "init", "--quiet")
    moves = migration_moves(newest.lstrip("v"), root)
    if from_ref:
        checkout_real_ref(from_ref, destination, root)
        commit_all(destination, f"copier-mlops {previous} ({from_ref})", tag=previous)
        for entry in destination.iterdir():
            if entry.name != ".git":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        copy_working_tree(destination, root)
    else:
        copy_working_tree(destination, root)
        git(destination, "add", "--all")
        for old, new in moves.items():
            move_in_template(destination, new, old)
        commit_all(destination, f"copier-mlops {previous} (the newest release's moves undone)", tag=previous)
        for old, new in moves.items():
            move_in_template(destination, old, new)
    commit_all(destination, f"copier-mlops {newest}", tag=newest)
    return previous, newest
