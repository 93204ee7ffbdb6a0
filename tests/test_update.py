"""`copier update` round-trips: a project keeps its own edits and otherwise becomes a fresh render.

Where the two template versions come from: CI runs on a fresh clone of main whose release tags may not be
pushed, so every test here builds its own template repository in a temporary directory from this working tree:

- the newest release (the newest version in CHANGELOG.md) is the working tree as it is, committed and tagged;
- the previous release is the same tree with the newest release's file moves undone (read from the `MOVES` of
  its migration scripts in hooks/migrations/), committed and tagged first.

So the previous release is a faithful stand-in only for what the newest release moved. Every other file is the
same in both versions: "untouched files equal a fresh render" then proves that the update machinery (three-way
merge, migration, answers file) leaves nothing behind, not that every change of the release merges. The
conflict test adds a real content change to the template for that. Set UPDATE_FROM_REF to a tag or commit of
this repository to render the previous version from that real ref instead (`git archive`), e.g. before a
release.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import copier
import pytest
import yaml
from conftest import TEMPLATE_ROOT, run
from copier.errors import UnsafeTemplateError

MIGRATIONS_DIR = TEMPLATE_ROOT / "hooks" / "migrations"
sys.path.insert(0, str(MIGRATIONS_DIR))
sys.path.insert(0, str(TEMPLATE_ROOT / "hooks"))
import releases  # noqa: E402
from moved_files import Outcome, TemplateCheckout, carry_over_moved_file  # noqa: E402

CONFLICT_MARKER = re.compile(rb"^(<{7}|>{7})( |$)", re.MULTILINE)
COPIER_PIN = re.compile(r"copier[=@]=?(\d+\.\d+\.\d+)")
GUIDE = "docs/template-updates.md"


# ------------------------------------------------------------------------------------------------------------
# Building template versions and projects (the tagged template repository comes from hooks/releases.py)
# ------------------------------------------------------------------------------------------------------------
def git(cwd: Path, *args: str) -> str:
    result = run(["git", *args], cwd=cwd)
    assert result.returncode == 0, f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}"
    return result.stdout


def project_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def render(template: Path, ref: str, destination: Path, **answers: object) -> Path:
    copier.run_copy(str(template), destination, data=answers, vcs_ref=ref, defaults=True, quiet=True, unsafe=False)
    return destination


def render_and_commit(template: Path, ref: str, destination: Path, **answers: object) -> Path:
    render(template, ref, destination, **answers)
    git(destination, "init", "--quiet")
    releases.commit_all(destination, f"Render copier-mlops {ref}")
    return destination


def update(project: Path, ref: str, *, unsafe: bool = False, **answers: object) -> None:
    copier.run_update(
        project,
        data=answers,
        vcs_ref=ref,
        defaults=True,
        overwrite=True,
        skip_answered=not answers,
        quiet=True,
        unsafe=unsafe,
    )


def make(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["make", "--no-print-directory", *args], cwd=project)


def leftover_conflicts(project: Path) -> tuple[list[str], list[str]]:
    """(*.rej files, files with conflict markers) anywhere in the project."""
    files = project_files(project)
    rejects = [path for path in files if path.endswith(".rej")]
    marked = [path for path, content in files.items() if CONFLICT_MARKER.search(content)]
    return rejects, marked


@pytest.fixture(scope="module", autouse=True)
def git_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commits (ours and copier's) need an identity; never read the developer's git config."""
    config = tmp_path_factory.mktemp("gitconfig") / "config"
    config.write_text("[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n", encoding="utf-8")
    env = {
        "GIT_AUTHOR_NAME": "Template Tests",
        "GIT_AUTHOR_EMAIL": "template-tests@example.com",
        "GIT_COMMITTER_NAME": "Template Tests",
        "GIT_COMMITTER_EMAIL": "template-tests@example.com",
        "GIT_CONFIG_GLOBAL": str(config),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def versions() -> tuple[str, str]:
    """(previous tag, newest tag)."""
    return releases.release_tags()


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory, versions: tuple[str, str]) -> Path:
    """A git repository of the template with the previous and the newest release tagged (module docstring)."""
    repository = tmp_path_factory.mktemp("template") / "copier-mlops"
    assert releases.build_release_repo(repository, os.environ.get("UPDATE_FROM_REF")) == versions
    return repository


def test_rendering_is_deterministic(template_repo: Path, versions: tuple[str, str], tmp_path: Path) -> None:
    """copier diffs a render of the project's release against the project: a file that renders differently
    each time (a timestamp, an object's repr) looks like a template change and conflicts with every edit."""
    _, newest = versions
    first = project_files(render(template_repo, newest, tmp_path / "first"))
    second = project_files(render(template_repo, newest, tmp_path / "second"))
    assert [path for path in first if first[path] != second.get(path)] == []


# ------------------------------------------------------------------------------------------------------------
# The update to the newest release
# ------------------------------------------------------------------------------------------------------------
USER_LINE = "# Kept by the project through template updates."
NEW_USER_FILE = "notebooks/exploration.md"


def edit_like_a_project(project: Path, moves: dict[str, str]) -> dict[str, str]:
    """Typical edits of a real project, one per file; returns {path: text the file must still contain}."""
    package = next(path.parent for path in sorted(project.glob("src/*/__init__.py")))
    edits = {
        f"src/{package.name}/__init__.py": f"\n{USER_LINE}\nPROJECT_OWNED = True\n",
        "params.yaml": f"\n{USER_LINE}\n",
        "README.md": "\n## Team notes\n\nOn call: the churn squad.\n",
        ".github/workflows/ci.yml": f"\n{USER_LINE}\n",
    }
    edits.update({old: "\nProject note: updates are reviewed on Tuesdays.\n" for old in moves})
    for path, addition in edits.items():
        target = project / path
        assert target.is_file(), f"{path} is not rendered any more: update the edits of this test"
        target.write_text(target.read_text(encoding="utf-8") + addition, encoding="utf-8")
    (project / NEW_USER_FILE).parent.mkdir(parents=True, exist_ok=True)
    (project / NEW_USER_FILE).write_text("# Exploration\n\nProject-only file.\n", encoding="utf-8")
    releases.commit_all(project, "Project edits")
    # Where each edit must be after the update: a moved file's edit travels to its new path.
    return {moves.get(path, path): addition.strip() for path, addition in edits.items()}


def test_update_to_newest_release_keeps_edits_and_otherwise_equals_a_fresh_render(
    template_repo: Path, versions: tuple[str, str], tmp_path: Path
) -> None:
    previous, newest = versions
    moves = releases.migration_moves(newest.lstrip("v"))
    project = render_and_commit(template_repo, previous, tmp_path / "project")
    expected_edits = edit_like_a_project(project, moves)

    if moves:
        # Crossing a release with a migration runs code from the template: copier refuses without --trust.
        with pytest.raises(UnsafeTemplateError):
            update(project, newest)
    update(project, newest, unsafe=bool(moves))

    assert leftover_conflicts(project) == ([], [])
    updated = project_files(project)
    for path, text in expected_edits.items():
        assert text in updated[path].decode(), f"the project's edit of {path} was lost"
    assert updated[NEW_USER_FILE] == b"# Exploration\n\nProject-only file.\n"
    for old in moves:
        assert old not in updated, f"{old} was moved by {newest}: it must be gone"

    fresh = project_files(render(template_repo, newest, tmp_path / "fresh"))
    assert set(updated) - {NEW_USER_FILE} == set(fresh), "the update added or left files a fresh render has not"
    untouched = [path for path in fresh if path not in expected_edits]
    differing = [path for path in untouched if updated[path] != fresh[path]]
    assert differing == [], f"files the project never edited differ from a fresh render: {differing}"
    check = make(project, "template-check")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(
    "answer", [{"serving": "batch"}, {"monitoring": False}], ids=["serving-batch", "no-monitoring"]
)
def test_changing_an_answer_adds_and_removes_exactly_the_files_of_the_new_answer(
    template_repo: Path, versions: tuple[str, str], tmp_path: Path, answer: dict[str, object]
) -> None:
    _, newest = versions
    project = render_and_commit(template_repo, newest, tmp_path / "project")
    before = project_files(project)

    update(project, newest, **answer)

    after = project_files(project)
    fresh = project_files(render(template_repo, newest, tmp_path / "fresh", **answer))
    assert set(after) - set(before) == set(fresh) - set(before), "files added by the answer change"
    assert set(before) - set(after) == set(before) - set(fresh), "files removed by the answer change"
    assert [path for path in fresh if after[path] != fresh[path]] == []
    assert yaml.safe_load(after[".copier-answers.yml"]).items() >= answer.items()


# ------------------------------------------------------------------------------------------------------------
# A project edit and a template change on the same lines
# ------------------------------------------------------------------------------------------------------------
TEMPLATE_LINE = "# Keeping this project on the golden path"
TEMPLATE_CHANGE = "# Keeping this repository on the golden path"
PROJECT_CHANGE = "# Keeping Customer Churn on the golden path"


def test_conflicting_edit_is_left_inline_with_markers_and_template_check_fails(
    tmp_path: Path, versions: tuple[str, str]
) -> None:
    """Exact behaviour: copier exits normally, writes both versions inline (`--conflict inline`, its default),
    records the file as unmerged in the index, and `make template-check` fails naming the file."""
    _, newest = versions
    release, patch = newest.rsplit(".", 1)
    next_release = f"{release}.{int(patch) + 1}"
    repository = tmp_path / "copier-mlops"
    repository.mkdir()
    git(repository, "init", "--quiet")
    releases.copy_working_tree(repository)
    releases.commit_all(repository, f"copier-mlops {newest}", tag=newest)
    guide = repository / "template" / GUIDE
    assert TEMPLATE_LINE in guide.read_text(encoding="utf-8").splitlines()
    guide.write_text(guide.read_text(encoding="utf-8").replace(TEMPLATE_LINE, TEMPLATE_CHANGE), encoding="utf-8")
    releases.commit_all(repository, "Reword the guide's title", tag=next_release)

    project = render_and_commit(repository, newest, tmp_path / "project")
    path = project / GUIDE
    path.write_text(path.read_text(encoding="utf-8").replace(TEMPLATE_LINE, PROJECT_CHANGE), encoding="utf-8")
    releases.commit_all(project, "Name the project in the guide")

    # No --trust: no migration is crossed. And no exception: copier does not fail on conflicts.
    update(project, next_release)

    conflict = f"<<<<<<< before updating\n{PROJECT_CHANGE}\n=======\n{TEMPLATE_CHANGE}\n>>>>>>> after updating\n"
    assert path.read_text(encoding="utf-8").startswith(conflict)
    assert leftover_conflicts(project) == ([], [GUIDE])
    stages = {line.split()[2] for line in git(project, "ls-files", "--unmerged", "--", GUIDE).splitlines()}
    assert stages == {"1", "2", "3"}, "copier records base, project and template versions as unmerged stages"
    check = make(project, "template-check")
    assert check.returncode != 0
    assert f"Conflict markers to resolve:\n{GUIDE}" in check.stdout

    path.write_text(path.read_text(encoding="utf-8").replace(conflict, f"{PROJECT_CHANGE}\n"), encoding="utf-8")
    assert make(project, "template-check").returncode == 0


def test_template_drift_lists_what_the_project_changed_relative_to_its_release(
    template_repo: Path, versions: tuple[str, str], tmp_path: Path
) -> None:
    _, newest = versions
    project = render_and_commit(template_repo, newest, tmp_path / "project")
    (project / "params.yaml").write_text("# tuned by hand\n", encoding="utf-8")
    (project / NEW_USER_FILE).parent.mkdir(parents=True, exist_ok=True)
    (project / NEW_USER_FILE).write_text("notes\n", encoding="utf-8")
    (project / GUIDE).unlink()
    copier_cli = Path(sys.executable).with_name("copier")

    drift = make(project, "template-drift", f"COPIER={copier_cli}")

    assert drift.returncode == 0, drift.stderr
    assert "+# tuned by hand" in drift.stdout
    assert f"--- a/{GUIDE}\n+++ /dev/null" in drift.stdout
    stat = drift.stdout.split(" changed, ", 1)[0]  # the --stat block ends with "N files changed, ..."
    changed = re.findall(r"^ (\S+)\s+\|", stat, re.MULTILINE)
    assert sorted(changed) == sorted(["params.yaml", GUIDE])
    assert drift.stdout.rstrip().endswith(f"Files this project added (not ignored):\n{NEW_USER_FILE}")


# ------------------------------------------------------------------------------------------------------------
# The file-move migration on its own (hooks/migrations/moved_files.py)
# ------------------------------------------------------------------------------------------------------------
OLD, NEW = "GUIDE.md", "docs/guide.md"
BASE = "# Guide\n\nfirst\nsecond\nthird\nfourth\nfifth\n"


@pytest.fixture
def moved_guide(tmp_path: Path) -> tuple[TemplateCheckout, Path]:
    """A template whose v1 ships GUIDE.md and whose checkout (v2) ships docs/guide.md with a changed last
    line, and a project on v1 just after `copier update` (docs/guide.md rendered fresh, GUIDE.md deleted)."""
    template = tmp_path / "template-repo"
    (template / "template").mkdir(parents=True)
    git(template, "init", "--quiet")
    (template / "template" / OLD).write_text(BASE, encoding="utf-8")
    releases.commit_all(template, "v1", tag="v1")
    (template / "template" / "docs").mkdir()
    (template / "template" / OLD).rename(template / "template" / NEW)
    released = BASE.replace("fifth", "fifth, reworded by the template")
    (template / "template" / NEW).write_text(released, encoding="utf-8")
    releases.commit_all(template, "v2", tag="v2")

    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "--quiet")
    (project / OLD).write_text(BASE.replace("first", "first, edited by the project"), encoding="utf-8")
    releases.commit_all(project, "project on v1")
    (project / OLD).unlink()
    (project / "docs").mkdir()
    (project / NEW).write_text(released, encoding="utf-8")
    return TemplateCheckout(template), project


def test_migration_merges_project_edits_into_the_new_path_and_is_idempotent(
    moved_guide: tuple[TemplateCheckout, Path],
) -> None:
    template, project = moved_guide
    assert carry_over_moved_file(OLD, NEW, template, "v1", project) is Outcome.MERGED
    merged = (project / NEW).read_text(encoding="utf-8")
    assert merged == BASE.replace("first", "first, edited by the project").replace(
        "fifth", "fifth, reworded by the template"
    )
    assert not (project / OLD).exists()
    assert carry_over_moved_file(OLD, NEW, template, "v1", project) is Outcome.ALREADY_MOVED
    assert (project / NEW).read_text(encoding="utf-8") == merged
    releases.commit_all(project, "after the update")
    assert carry_over_moved_file(OLD, NEW, template, "v1", project) is Outcome.ALREADY_MOVED
    assert (project / NEW).read_text(encoding="utf-8") == merged


def test_migration_leaves_copier_style_conflict_when_both_changed_the_same_line(
    moved_guide: tuple[TemplateCheckout, Path],
) -> None:
    template, project = moved_guide
    git(project, "checkout", "--quiet", "HEAD", "--", OLD)
    (project / OLD).write_text(BASE.replace("fifth", "fifth, edited by the project"), encoding="utf-8")
    releases.commit_all(project, "edit the last line too")
    (project / OLD).unlink()

    assert carry_over_moved_file(OLD, NEW, template, "v1", project) is Outcome.CONFLICTED
    text = (project / NEW).read_text(encoding="utf-8")
    assert (
        "<<<<<<< before updating\nfifth, edited by the project\n=======\nfifth, reworded by the template\n"
        ">>>>>>> after updating\n"
    ) in text
    assert git(project, "ls-files", "--unmerged", "--", NEW).count(NEW) == 3


def test_migration_does_not_recreate_a_file_the_project_deleted(
    moved_guide: tuple[TemplateCheckout, Path],
) -> None:
    template, project = moved_guide
    rendered = (project / NEW).read_text(encoding="utf-8")
    (project / NEW).unlink()
    releases.commit_all(project, "we do not want the guide")  # before the update: HEAD has neither path
    (project / NEW).write_text(rendered, encoding="utf-8")  # what copier renders for the new release
    assert carry_over_moved_file(OLD, NEW, template, "v1", project) is Outcome.REMOVED_BY_PROJECT
    assert not (project / NEW).exists()


def test_migration_scripts_move_files_that_are_copied_verbatim() -> None:
    """The merge base is read from git, so a moved file must have no .jinja suffix in either release."""
    for version in releases.releases():
        for old, new in releases.migration_moves(version).items():
            assert (TEMPLATE_ROOT / "template" / new).is_file(), f"{version} moves {old} to {new}, which is missing"
            assert not (TEMPLATE_ROOT / "template" / old).exists(), f"{old} still exists after moving in {version}"


# ------------------------------------------------------------------------------------------------------------
# One pinned copier everywhere an update runs
# ------------------------------------------------------------------------------------------------------------
def test_the_update_workflow_the_makefile_and_the_guide_pin_the_same_copier() -> None:
    pins = {
        path: set(COPIER_PIN.findall((TEMPLATE_ROOT / "template" / path).read_text(encoding="utf-8")))
        for path in (".github/workflows/template-update.yml", "Makefile.jinja", GUIDE)
    }
    workflow = yaml.safe_load((TEMPLATE_ROOT / "template/.github/workflows/template-update.yml").read_text())
    pins[".github/workflows/template-update.yml"].add(workflow["env"]["COPIER_VERSION"])
    assert all(len(found) == 1 for found in pins.values()), pins
    assert len(set.union(*pins.values())) == 1, f"copier pins differ: {pins}"
