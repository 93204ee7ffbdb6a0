"""Carry a project's own edits across a file that a template release moved to a new path.

Why a migration is needed: when a release moves `old` to `new`, `copier update` renders `new` fresh from the
template and deletes `old` (it is gone from the template), so any edit the project made to `old` would be
lost. This module runs as an *after* migration (`_migrations` in copier.yml), from the project root, once
copier has finished: it three-way merges the project's version of `old` (from HEAD: `copier update` refuses a
dirty tree, so HEAD holds exactly what the project had) into `new`, with the old release's file as the common
base:

    base   = template/<old> at the release the project was on  (git show <from_ref>:template/<old>)
    ours   = the project's <old>                               (git show HEAD:<old>)
    theirs = the new release's <new>                           (what copier just rendered)

The result is what copier itself would have produced had the file not moved: clean when the project's edits
and the template's changes touch different lines, inline conflict markers labelled like copier's own ("before
updating" / "after updating") when they touch the same lines.

Only files copied verbatim (no `.jinja` suffix) can be moved this way: the base is read from git, not
rendered.
Idempotent: running it again after it has merged (or on a project that never had `old`) changes nothing.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

TEMPLATE_SUBDIRECTORY = "template"
# The labels copier uses for its own inline conflicts, so one check (`make template-check`) finds both.
CONFLICT_LABELS = ("before updating", "last update", "after updating")


class Outcome(Enum):
    MERGED = "merged the project's edits into the new path"
    CONFLICTED = "merged with conflicts: resolve the markers in the new path"
    UNCHANGED = "project had not edited the file: took the new release's version"
    ALREADY_MOVED = "already migrated: nothing to do"
    REMOVED_BY_PROJECT = "the project had deleted the file: not recreating it at the new path"


@dataclass(frozen=True)
class TemplateCheckout:
    """The template clone copier runs the migration from (`_copier_conf.src_path`)."""

    root: Path

    def file_at(self, ref: str, path: str) -> str | None:
        """A generated-project file as template release `ref` shipped it; None if it had no such file."""
        return _git_show(self.root, f"{ref}:{TEMPLATE_SUBDIRECTORY}/{path}")

    def current_file(self, path: str) -> str | None:
        """A generated-project file as the release being updated to ships it."""
        source = self.root / TEMPLATE_SUBDIRECTORY / path
        return source.read_text(encoding="utf-8") if source.is_file() else None


def _git_show(repository: Path, object_name: str) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(repository), "show", object_name],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def merge_three_way(ours: str, base: str, theirs: str) -> tuple[str, bool]:
    """git merge-file on three texts: (merged text, whether conflict markers were written)."""
    with tempfile.TemporaryDirectory(prefix="copier-mlops-migration-") as scratch:
        files = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(scratch, name)
            path.write_text(text, encoding="utf-8")
            files.append(str(path))
        labels = [arg for label in CONFLICT_LABELS for arg in ("-L", label)]
        result = subprocess.run(
            ["git", "merge-file", "-p", *labels, *files], capture_output=True, text=True, check=False
        )
    if result.returncode < 0 or result.returncode > 127:
        raise RuntimeError(f"git merge-file failed: {result.stderr.strip()}")
    return result.stdout, result.returncode > 0


def carry_over_moved_file(old: str, new: str, template: TemplateCheckout, from_ref: str, project: Path) -> Outcome:
    """Move the project's `old` to `new`, keeping its edits (see the module docstring)."""
    new_path = project / new
    old_path = project / old
    released_new = template.current_file(new)
    if released_new is None:
        raise FileNotFoundError(f"the template being updated to has no {new}: the migration's MOVES is wrong")

    ours = old_path.read_text(encoding="utf-8") if old_path.is_file() else _git_show(project, f"HEAD:{old}")
    if ours is None:
        committed_at_new_path = _git_show(project, f"HEAD:{new}") is not None
        if not committed_at_new_path and new_path.is_file() and new_path.read_text(encoding="utf-8") == released_new:
            # Neither path was in the project: it had deleted the file, and copier just rendered it afresh.
            new_path.unlink()
            return Outcome.REMOVED_BY_PROJECT
        return Outcome.ALREADY_MOVED
    if new_path.is_file() and new_path.read_text(encoding="utf-8") != released_new:
        # Only this migration writes anything but the fresh render to `new` during an update.
        old_path.unlink(missing_ok=True)
        return Outcome.ALREADY_MOVED

    base = template.file_at(from_ref, old)
    if base is None:
        raise FileNotFoundError(f"template release {from_ref} has no {old}: the migration's MOVES is wrong")
    merged, conflicted = merge_three_way(ours, base, released_new)
    new_path.parent.mkdir(parents=True, exist_ok=True)
    new_path.write_text(merged, encoding="utf-8")
    old_path.unlink(missing_ok=True)
    # copier records an edited file that the new release no longer has as a modify/delete conflict on `old`;
    # the edits now live at `new`, so stage the deletion of `old` instead.
    if _git(project, "ls-files", "--unmerged", "--", old).strip():
        _git(project, "rm", "--cached", "--quiet", "--", old)
    if conflicted:
        _record_conflict(project, new, base=base, ours=ours, theirs=released_new)
        return Outcome.CONFLICTED
    return Outcome.UNCHANGED if ours == base else Outcome.MERGED


def _git(repository: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["git", "-C", str(repository), *args], input=stdin, capture_output=True, text=True, check=True
    )
    return result.stdout


def _record_conflict(project: Path, path: str, *, base: str, ours: str, theirs: str) -> None:
    """Mark `path` unmerged in the index, as copier does for its own conflicts, so `git status` lists it."""
    entries = []
    for stage, text in ((1, base), (2, ours), (3, theirs)):
        blob = _git(project, "hash-object", "-w", "--stdin", stdin=text).strip()
        entries.append(f"100644 {blob} {stage}\t{path}")
    _git(project, "update-index", "--index-info", stdin="\n".join(entries) + "\n")


def run_moves(moves: dict[str, str], argv: list[str]) -> int:
    """Entry point of a release's migration script: `<script> <template root> <from ref>`, cwd = project."""
    if len(argv) != 2:
        print("usage: <migration script> TEMPLATE_ROOT FROM_REF  (run by copier from the project root)")
        return 2
    template = TemplateCheckout(Path(argv[0]))
    from_ref = argv[1]
    for old, new in moves.items():
        outcome = carry_over_moved_file(old, new, template, from_ref, Path.cwd())
        print(f"copier-mlops migration: {old} -> {new}: {outcome.value}", file=sys.stderr)
    return 0
