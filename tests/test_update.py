"""`copier update` round-trips: a project keeps its own edits and otherwise becomes a fresh render.

Where the two template versions come from (hooks/releases.py): every test here builds its own template repository
in a temporary directory:

- the previous release is the REAL one: the tree of its tag (`make tags` makes the tags from releases.toml; CI
  runs it), or of the commit releases.toml names for it when the clone has no tags (`git archive`), committed and
  tagged `v<previous>`;
- the newest release (the newest version in CHANGELOG.md) is this working tree as it is, committed on top and
  tagged `v<newest>`.

So an update here crosses everything the newest release changes, its migration included. Set UPDATE_FROM_REF
to another tag or commit of this repository to start from that tree instead.

The 0.2.0 migration (a moved file) is tested on a synthetic two-release template, below: 0.1.0 has no commit on
main (releases.toml, [untagged]), so there is no real 0.1.0 to update from. The tags themselves are tested in
tests/test_release_tags.py.
"""

from __future__ import annotations

import fcntl
import fnmatch
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from conftest import TEMPLATE_ROOT, run
from copier.errors import UnsafeTemplateError

MIGRATIONS_DIR = TEMPLATE_ROOT / "hooks" / "migrations"
sys.path.insert(0, str(MIGRATIONS_DIR))
sys.path.insert(0, str(TEMPLATE_ROOT / "hooks"))
import releases  # noqa: E402
import v0_3_0  # noqa: E402
from moved_files import Outcome, TemplateCheckout, carry_over_moved_file  # noqa: E402

CONFLICT_MARKER = re.compile(rb"^(<{7}|>{7})( |$)", re.MULTILINE)
COPIER_PIN = re.compile(r"copier[=@]=?(\d+\.\d+\.\d+)")
GUIDE = "docs/template-updates.md"
PACKAGE = "customer_churn"  # the default package_name
PACKAGE_TEMPLATE = "template/src/{{ package_name }}"


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


def release_file(ref: str, path: str) -> str:
    """A file of this repository at a release ref (`git show`)."""
    return git(TEMPLATE_ROOT, "show", f"{ref}:{path}")


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
def previous_ref(versions: tuple[str, str]) -> str:
    """The ref of this repository the previous release is built from."""
    return os.environ.get("UPDATE_FROM_REF") or releases.release_ref(versions[0].lstrip("v"))


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """Build `name` once per test run and share it between the xdist workers (their base temporary directories
    have one parent): the first worker builds it under a lock, the others wait and reuse it. Read-only for tests."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    target, done = root / name, root / f"{name}.done"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            build(target)
            done.touch()
    return target


@pytest.fixture(scope="module")
def template_repo(
    tmp_path_factory: pytest.TempPathFactory, versions: tuple[str, str], previous_ref: str, git_identity: None
) -> Path:
    """A git repository of the template with the previous and the newest release tagged (module docstring)."""
    repository = build_once(
        tmp_path_factory, "template-releases", lambda path: releases.build_release_repo(path, previous_ref)
    )
    assert git(repository, "tag", "--list").split() == sorted(versions)
    return repository


@pytest.fixture(scope="module")
def fresh_newest(template_repo: Path, versions: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The newest release rendered with the default answers (never modified by a test)."""
    return build_once(tmp_path_factory, "fresh-newest", lambda path: render(template_repo, versions[1], path))


@pytest.fixture(scope="module")
def fresh_previous(template_repo: Path, versions: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release rendered with the default answers (never modified by a test)."""
    return build_once(tmp_path_factory, "fresh-previous", lambda path: render(template_repo, versions[0], path))


def test_rendering_is_deterministic(template_repo: Path, versions: tuple[str, str], tmp_path: Path) -> None:
    """copier diffs a render of the project's release against the project: a file that renders differently
    each time (a timestamp, an object's repr) looks like a template change and conflicts with every edit."""
    _, newest = versions
    first = project_files(render(template_repo, newest, tmp_path / "first"))
    second = project_files(render(template_repo, newest, tmp_path / "second"))
    assert [path for path in first if first[path] != second.get(path)] == []


# ------------------------------------------------------------------------------------------------------------
# The update from the previous release to the newest, with a team's typical edits
# ------------------------------------------------------------------------------------------------------------
USER_LINE = "# Kept by the project through template updates."
NEW_USER_FILE = "notebooks/exploration.md"
DOMAIN_TEST = "tests/test_domain.py"
DOMAIN_TEST_TEXT = (
    '"""The team\'s own checks of its data."""\n\n\ndef test_premium_floor() -> None:\n    assert 45 < 50\n'
)
TENURE_DESCRIPTION = "Whole months since the customer signed the first contract."
NEW_COLUMN = "referrals"
README_NOTES = "\n## Team notes\n\nOn call: the churn squad.\n"
CARD_PROSE = "Reviewed by the churn squad every quarter.\n"
NOTE = v0_3_0.NOTE


def edit_contract_py(source: str) -> str:
    """A team's edits of 0.2.0's contract.py: a description, a range, a new column, a business constant."""
    edits = [
        ('"Months since the customer signed up."', f'"{TENURE_DESCRIPTION}"'),
        ('NumericField("support_tickets", "int", 0, 30,', 'NumericField("support_tickets", "int", 0, 40,'),
        (
            '        NumericField("support_tickets"',
            f'        NumericField("{NEW_COLUMN}", "int", 0, 9, "Customers this customer referred."),\n'
            '        NumericField("support_tickets"',
        ),
        (
            '    "support_tickets",\n    "contract_type",',
            f'    "support_tickets",\n    "{NEW_COLUMN}",\n    "contract_type",',
        ),
        ("PREMIUM_MIN_MONTHLY_CHARGES = 50.0", "PREMIUM_MIN_MONTHLY_CHARGES = 45.0"),
    ]
    for old, new in edits:
        assert source.count(old) == 1, f"0.2.0's contract.py has no {old!r}: update the edits of this test"
        source = source.replace(old, new)
    return source


def add_column_to_data(text: str) -> str:
    """The new contract column in the data, after support_tickets: a deterministic 0..9."""
    lines = text.splitlines()
    header = lines[0].split(",")
    at = header.index("support_tickets") + 1
    rows = [[*header[:at], NEW_COLUMN, *header[at:]]]
    for number, line in enumerate(lines[1:]):
        cells = line.split(",")
        rows.append([*cells[:at], str(number % 10), *cells[at:]])
    return "\n".join(",".join(row) for row in rows) + "\n"


# A tuned value with the team's comment on its line (the migration carries both), and a tuned value whose line
# keeps the release's comment.
PARAMS_EDITS = (
    ("  test_size: 0.2\n", "  test_size: 0.25  # tuned by team\n"),
    ("  threshold: 0.4 ", "  threshold: 0.45 "),
)


def edit_like_a_team(project: Path) -> None:
    """A team's typical edits on 0.2.0, committed."""

    def edit(path: str, change: Any) -> None:
        target = project / path
        assert target.is_file(), f"{path} is not rendered by the previous release: update the edits of this test"
        target.write_text(change(target.read_text(encoding="utf-8")), encoding="utf-8")

    def params(text: str) -> str:
        for old, new in PARAMS_EDITS:
            assert text.count(old) == 1, f"the previous params.yaml has no {old!r}"
            text = text.replace(old, new)
        return text

    edit(f"src/{PACKAGE}/contract.py", edit_contract_py)
    edit("data/raw/customers.csv", add_column_to_data)
    edit("params.yaml", params)
    edit("README.md", lambda text: text + README_NOTES)
    edit(
        "docs/model-card.template.md",
        lambda text: text.replace("## Intended use\n", f"## Intended use\n\n{CARD_PROSE}"),
    )
    edit(f"src/{PACKAGE}/__init__.py", lambda text: text + f"\n{USER_LINE}\nPROJECT_OWNED = True\n")
    edit(".github/workflows/ci.yml", lambda text: text + f"\n{USER_LINE}\n")
    (project / DOMAIN_TEST).write_text(DOMAIN_TEST_TEXT, encoding="utf-8")
    (project / NEW_USER_FILE).parent.mkdir(parents=True, exist_ok=True)
    (project / NEW_USER_FILE).write_text("# Exploration\n\nProject-only file.\n", encoding="utf-8")
    releases.commit_all(project, "Project edits")


# Edits the merge must keep: {path: text the file must still contain}
KEPT_EDITS = {
    "README.md": README_NOTES.strip(),
    "docs/model-card.template.md": CARD_PROSE.strip(),
    f"src/{PACKAGE}/__init__.py": "PROJECT_OWNED = True",
    ".github/workflows/ci.yml": USER_LINE,
}


@pytest.fixture(scope="module")
def updated_project(template_repo: Path, versions: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project rendered from the previous release, edited by its team (committed), then updated to the newest
    release with --trust; the update's result is left uncommitted, as a reviewer sees it. Never modified by a test
    (copy it first)."""
    previous, newest = versions

    def build(project: Path) -> None:
        render_and_commit(template_repo, previous, project)
        edit_like_a_team(project)
        update(project, newest, unsafe=True)

    return build_once(tmp_path_factory, "updated-project", build)


def test_update_across_the_migration_needs_trust_and_changes_nothing_without_it(
    template_repo: Path, versions: tuple[str, str], tmp_path: Path
) -> None:
    """Crossing a release with a migration runs code from the template: copier refuses without --trust."""
    previous, newest = versions
    project = render_and_commit(template_repo, previous, tmp_path / "project")
    before = project_files(project)
    with pytest.raises(UnsafeTemplateError):
        update(project, newest)
    assert project_files(project) == before
    assert git(project, "status", "--porcelain") == ""


def test_update_leaves_no_conflict_and_keeps_every_edit(
    updated_project: Path,
) -> None:
    project = updated_project
    assert leftover_conflicts(project) == ([], [])
    assert git(project, "ls-files", "--unmerged") == "", "unmerged paths left in the index"
    updated = project_files(project)
    for path, text in KEPT_EDITS.items():
        assert text in updated[path].decode(), f"the project's edit of {path} was lost"
    for path in (DOMAIN_TEST, NEW_USER_FILE, "data/raw/customers.csv"):
        committed = git(project, "show", f"HEAD:{path}").encode()
        assert updated[path] == committed, f"{path} is the team's: the update must not touch it"
    assert check_template(project).returncode == 0


def check_template(project: Path) -> subprocess.CompletedProcess:
    check = make(project, "template-check")
    assert check.returncode == 0, check.stdout + check.stderr
    return check


def test_update_writes_the_teams_contract_py_as_contract_yaml(updated_project: Path, fresh_newest: Path) -> None:
    """contract.yaml is the fresh one with exactly the team's edits of contract.py."""
    project = updated_project
    contract = yaml.safe_load((project / "contract.yaml").read_text(encoding="utf-8"))
    expected = yaml.safe_load((fresh_newest / "contract.yaml").read_text(encoding="utf-8"))
    expected["columns"]["tenure_months"]["description"] = TENURE_DESCRIPTION
    expected["columns"]["support_tickets"]["max"] = 40
    columns = list(expected["columns"].items())
    at = [name for name, _ in columns].index("support_tickets") + 1
    columns.insert(
        at, (NEW_COLUMN, {"dtype": "int", "min": 0, "max": 9, "description": "Customers this customer referred."})
    )
    expected["columns"] = dict(columns)
    premium = expected["rules"]["premium_min_monthly_charges"]
    premium["check"] = premium["check"].replace(">= 50", ">= 45")
    premium["description"] = "The premium plan costs at least 45 a month."
    assert contract == expected
    assert list(contract["columns"]) == list(expected["columns"]), "columns are in FEATURE_COLUMNS order"
    # The header comment of the fresh render stays on top.
    fresh_header = v0_3_0._header((fresh_newest / "contract.yaml").read_text(encoding="utf-8"))
    assert (project / "contract.yaml").read_text(encoding="utf-8").startswith(fresh_header)
    # The loader replaced the old constants (copier had left its conflict there).
    assert (project / f"src/{PACKAGE}/contract.py").read_bytes() == (
        fresh_newest / f"src/{PACKAGE}/contract.py"
    ).read_bytes()


def test_update_keeps_the_teams_params_values_in_the_new_shape(updated_project: Path, fresh_newest: Path) -> None:
    project = updated_project
    expected = (fresh_newest / "params.yaml").read_text(encoding="utf-8")
    for old, new in PARAMS_EDITS:
        expected = expected.replace(old, new)
    assert (project / "params.yaml").read_text(encoding="utf-8") == expected
    params = yaml.safe_load(expected)
    assert (params["split"]["test_size"], params["model"]["threshold"]) == (0.25, 0.45)


def test_an_addition_at_the_end_of_a_file_follows_the_releases_new_end(
    updated_project: Path, fresh_newest: Path
) -> None:
    """0.3.0 rewrote the end of README.md, where a team appends its notes: copier's merge conflicts there, and the
    migration puts the team's addition after the release's README."""
    fresh = (fresh_newest / "README.md").read_text(encoding="utf-8")
    assert (updated_project / "README.md").read_text(encoding="utf-8") == fresh + README_NOTES


def test_update_merges_the_release_into_files_that_become_the_teams(updated_project: Path, fresh_newest: Path) -> None:
    """docs/model-card.template.md is `_skip_if_exists` from 0.3.0 on: copier would keep 0.2.0's version (whose
    placeholders the new card no longer fills); the migration merges the release into the team's prose."""
    project = updated_project
    fresh = (fresh_newest / "docs/model-card.template.md").read_text(encoding="utf-8")
    assert fresh.count("## Intended use\n") == 1
    expected = fresh.replace("## Intended use\n", f"## Intended use\n\n{CARD_PROSE}")
    assert (project / "docs/model-card.template.md").read_text(encoding="utf-8") == expected


def test_update_otherwise_equals_a_fresh_render_and_removes_the_old_modules(
    updated_project: Path, fresh_newest: Path, fresh_previous: Path
) -> None:
    project = updated_project
    updated, fresh = project_files(project), project_files(fresh_newest)
    team_files = {NEW_USER_FILE, NOTE} | ({DOMAIN_TEST} - set(fresh))  # the release may ship a test_domain.py
    assert set(updated) - team_files == set(fresh), "the update added or left files a fresh render has not"
    edited = {*KEPT_EDITS, DOMAIN_TEST, "contract.yaml", "params.yaml", "data/raw/customers.csv"}
    differing = [path for path in fresh if path not in edited and updated[path] != fresh[path]]
    assert differing == [], f"files the project never edited differ from a fresh render: {differing}"
    old_modules = {path for path in project_files(fresh_previous) if path.startswith(f"src/{PACKAGE}/")} - set(fresh)
    assert old_modules, "the newest release removes modules of the previous one"
    assert sorted(old_modules & set(updated)) == []


def test_update_note_tells_the_team_what_was_carried(
    updated_project: Path,
) -> None:
    project = updated_project
    note = (project / NOTE).read_text(encoding="utf-8")
    assert "contract.yaml was written from your src/customer_churn/contract.py" in note
    assert "PREMIUM_MIN_MONTHLY_CHARGES = 45" in note
    assert "- `split.test_size`: 0.2 -> 0.25" in note and "- `model.threshold`: 0.4 -> 0.45" in note
    assert "## To do by hand" not in note, "nothing is left to port by hand after these edits"
    assert not [line for line in note.splitlines() if line != line.rstrip()], "the note passes trailing-whitespace"


def test_migration_runs_again_without_changing_anything(
    updated_project: Path,
    template_repo: Path,
    versions: tuple[str, str],
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    shutil.copytree(updated_project, project, symlinks=True)
    after_update = project_files(project)
    script = [sys.executable, str(template_repo / "hooks/migrations/v0_3_0.py"), str(template_repo), *versions]
    again = run(script, cwd=project)
    assert again.returncode == 0, again.stderr
    assert "already migrated" in again.stderr
    assert project_files(project) == after_update
    # Each step also checks its own target: without the note, a second run rewrites only the note.
    (project / NOTE).unlink()
    again = run(script, cwd=project)
    assert again.returncode == 0, again.stderr
    rerun = project_files(project)
    assert {path for path in rerun if rerun[path] != after_update.get(path)} == {NOTE}


def test_update_of_an_unedited_project_equals_a_fresh_render(
    template_repo: Path, versions: tuple[str, str], fresh_newest: Path, tmp_path: Path
) -> None:
    previous, newest = versions
    project = render_and_commit(template_repo, previous, tmp_path / "project")
    update(project, newest, unsafe=True)
    assert leftover_conflicts(project) == ([], [])
    updated, fresh = project_files(project), project_files(fresh_newest)
    assert sorted(set(updated) ^ set(fresh)) == [], "no note: there was nothing to carry"
    assert [path for path in fresh if updated[path] != fresh[path]] == []


@pytest.mark.slow
def test_updated_project_sets_up_runs_its_pipeline_and_passes_its_tests(updated_project: Path, tmp_path: Path) -> None:
    """The team's contract (a new column in contract.yaml and the data) trains, validates and tests."""
    from test_generated_project import step

    project = tmp_path / "project"
    shutil.copytree(updated_project, project, symlinks=True)
    for target in ("setup", "pipeline", "test"):
        step(project, "make", target)
    metadata = (project / "models" / "champion" / "metadata.json").read_text(encoding="utf-8")
    assert f'"{NEW_COLUMN}"' in metadata, "the team's new column is a model input"


# ------------------------------------------------------------------------------------------------------------
# The 0.3.0 migration's parts on their own (hooks/migrations/v0_3_0.py)
# ------------------------------------------------------------------------------------------------------------
def previous_contract_py(previous_ref: str) -> str:
    return release_file(previous_ref, f"{PACKAGE_TEMPLATE}/contract.py")


def test_the_previous_releases_contract_converts_to_the_fresh_contract_yaml(
    previous_ref: str, fresh_newest: Path
) -> None:
    """An unedited 0.2.0 contract.py means exactly the contract.yaml 0.3.0 ships for task binary."""
    fresh = yaml.safe_load((fresh_newest / "contract.yaml").read_text(encoding="utf-8"))
    document, dropped = v0_3_0.contract_document(v0_3_0.parse_old_contract(previous_contract_py(previous_ref)), fresh)
    assert dropped == []
    assert document == fresh
    assert yaml.safe_load(v0_3_0.contract_yaml(document, "")) == fresh


def test_derived_features_and_rules_of_removed_columns_are_dropped(previous_ref: str, fresh_newest: Path) -> None:
    source = previous_contract_py(previous_ref)
    for old in (
        '        NumericField("support_tickets", "int", 0, 30, "Support tickets opened over the whole tenure."),\n',
        '        CategoricalField("plan", ("basic", "standard", "premium"), "Product tier."),\n',
        '    "support_tickets",\n',
        '    "plan",\n',
    ):
        assert source.count(old) == 1, old
        source = source.replace(old, "")
    fresh = yaml.safe_load((fresh_newest / "contract.yaml").read_text(encoding="utf-8"))
    document, dropped = v0_3_0.contract_document(v0_3_0.parse_old_contract(source), fresh)
    assert set(document["columns"]) == set(fresh["columns"]) - {"support_tickets", "plan"}
    assert list(document["derived"]) == ["charges_ratio"]
    assert list(document["rules"]) == ["total_charges_consistent"]
    assert len(dropped) == 2
    assert "tickets_per_year" in dropped[0] and "premium_min_monthly_charges" in dropped[1]


@pytest.mark.parametrize(
    "source",
    [
        "from .columns import build\n\nNUMERIC = build()\nCATEGORICAL = {}\nFEATURE_COLUMNS = ()\nTARGET = 'y'\n",
        "import os\n\nTARGET = os.environ['TARGET']\nNUMERIC = {}\nCATEGORICAL = {}\nFEATURE_COLUMNS = ()\n",
        "NUMERIC = {}\nCATEGORICAL = {}\nTARGET = 'churned'\nFEATURE_COLUMNS = ('tenure_months',)\n",
        "def broken(:\n",
    ],
    ids=["computed-columns", "computed-target", "unknown-feature", "syntax-error"],
)
def test_a_contract_py_not_in_the_old_shape_is_left_for_porting_by_hand(
    source: str, previous_ref: str, fresh_newest: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    contract_py = project / f"src/{PACKAGE}/contract.py"
    contract_py.parent.mkdir(parents=True)
    git(project, "init", "--quiet")
    contract_py.write_text(source, encoding="utf-8")
    releases.commit_all(project, "a contract.py of its own")
    fresh = (fresh_newest / "contract.yaml").read_text(encoding="utf-8")
    (project / "contract.yaml").write_text(fresh, encoding="utf-8")  # what copier rendered

    class Renders:  # the two releases' files, without rendering them again
        template_root, refs = TEMPLATE_ROOT, {"old": previous_ref, "new": "HEAD"}

        def file(self, which: str, path: str) -> str | None:
            return (
                {"old": previous_contract_py(previous_ref), "new": fresh}[which]
                if path in (f"src/{PACKAGE}/contract.py", "contract.yaml")
                else None
            )

    note = v0_3_0.Note()
    v0_3_0.migrate_contract(project, PACKAGE, Renders(), note)  # type: ignore[arg-type]
    assert (project / "contract.yaml").read_text(encoding="utf-8") == fresh
    assert contract_py.read_bytes() == (TEMPLATE_ROOT / PACKAGE_TEMPLATE / "contract.py").read_bytes()
    text = note.text(previous_ref)
    assert "Port your data contract by hand" in text
    assert source.strip().splitlines()[-1] in text, "the old contract.py is kept in the note"


def load_module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_params_changes_are_carried_to_their_new_keys(fresh_previous: Path, fresh_newest: Path, tmp_path: Path) -> None:
    """What the migration does when copier's merge of params.yaml conflicts: the new release's file with each value
    the project changed, and each comment it added, at its new key, and nothing else changed."""
    base = (fresh_previous / "params.yaml").read_text(encoding="utf-8")
    theirs = (fresh_newest / "params.yaml").read_text(encoding="utf-8")
    ours = base
    for old, new in (
        *PARAMS_EDITS,
        ("  type: logistic_regression ", "  type: hist_gradient_boosting "),
        ("    C: 1.0\n", "    C: 0.5\n"),
        ("  min_roc_auc: 0.75\n", "  min_roc_auc: 0.8  # agreed with risk\n"),
        ("  slice_by: contract_type\n", "  slice_by: plan\n"),
        ("  permutation_repeats: 5\n", "  permutation_repeats: 5\n  our_own_setting: 3\n"),
        ("  bins: 10 ", "  bins: 20 "),
        # the team's comments on values it kept: at the end of a line (of a renamed section) and above a key
        ("    max_iter: 1000\n", "    max_iter: 1000  # converges on our data\n"),
        ("  baseline_feature:", "  # reviewed with the team in May\n  baseline_feature:"),
    ):
        assert ours.count(old) == 1, old
        ours = ours.replace(old, new)
    text, carried, left = v0_3_0.carry_params(base, ours, theirs)
    assert (len(carried), left) == (12, [])
    result, release = v0_3_0._flatten(yaml.safe_load(text)), v0_3_0._flatten(yaml.safe_load(theirs))
    changed = {path: result[path] for path in result if result[path] != release.get(path, KeyError)}
    assert set(release) - set(result) == set()
    assert sorted((path[-1], value) for path, value in changed.items()) == sorted(
        [
            ("test_size", 0.25),
            ("threshold", 0.45),
            ("type", "hist_gradient_boosting"),
            ("C", 0.5),
            ("min", 0.8),
            ("slice_by", ["plan"]),
            ("our_own_setting", 3),
            ("bins", 20),
        ]
    )
    assert changed[("model", "linear", "C")] == 0.5
    assert next(path for path in changed if path[-1] == "min")[-3:] == ("thresholds", "roc_auc", "min")

    def comments(params_text: str) -> list[str]:
        return [line.split("#", 1)[1] for line in params_text.splitlines() if "#" in line]

    team_comments = [" tuned by team", " converges on our data", " reviewed with the team in May", " agreed with risk"]
    assert sorted(comments(text)) == sorted(comments(theirs) + team_comments), "the release's and the team's"
    lines = text.splitlines()
    at = {
        path: v0_3_0._locate(lines, path)
        for path in [("model", "linear", "max_iter"), ("evaluate", "baseline_feature")]
    }
    assert lines[at["model", "linear", "max_iter"]] == "    max_iter: 1000  # converges on our data"
    assert lines[at["evaluate", "baseline_feature"] - 1] == "  # reviewed with the team in May"
    assert "  test_size: 0.25  # tuned by team" in lines
    assert "      roc_auc: {min: 0.8}  # agreed with risk" in lines, "in a flow mapping: on the mapping's line"
    # A value whose meaning changed is not carried: the note asks for a new one.
    meaning = ours.replace("  min_improvement_over_baseline: 0.03 ", "  min_improvement_over_baseline: 0.05 ")
    assert meaning != ours
    _, _, left = v0_3_0.carry_params(base, meaning, theirs)
    assert [item.split(":")[0] for item in left] == ["`gate.min_improvement_over_baseline`"]
    # The result is a params.yaml the new release reads.
    (tmp_path / "params.yaml").write_text(text, encoding="utf-8")
    params = load_module("params_of_the_new_release", TEMPLATE_ROOT / PACKAGE_TEMPLATE / "params.py")
    loaded = params.load_params(tmp_path / "params.yaml")
    assert (loaded.split.test_size, loaded.model.threshold, loaded.model.type) == (0.25, 0.45, "hist_gradient_boosting")


def test_every_removed_module_of_the_previous_release_points_to_its_new_home(previous_ref: str) -> None:
    """The note tells a team where the code of an edited, removed module went: the map must stay complete."""
    listed = git(TEMPLATE_ROOT, "ls-tree", "-r", "--name-only", previous_ref, f"{PACKAGE_TEMPLATE}/")
    previous = {path.removeprefix(f"{PACKAGE_TEMPLATE}/") for path in listed.splitlines()}
    current = {
        path.relative_to(TEMPLATE_ROOT / PACKAGE_TEMPLATE).as_posix()
        for path in (TEMPLATE_ROOT / PACKAGE_TEMPLATE).rglob("*.py")
    }
    removed = {path for path in previous - current if path.endswith(".py")}
    assert removed <= set(v0_3_0.MODULE_MOVES), f"not in MODULE_MOVES: {sorted(removed - set(v0_3_0.MODULE_MOVES))}"
    for old, new in v0_3_0.MODULE_MOVES.items():
        assert (TEMPLATE_ROOT / PACKAGE_TEMPLATE / new.split(" ")[0]).is_file(), f"{old} -> {new}: no such module"


@pytest.mark.parametrize(
    "answer",
    [{"serving": "batch"}, {"monitoring": False}, {"orchestrator": "airflow"}],
    ids=["serving-batch", "no-monitoring", "orchestrator-airflow"],
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
    # The team's files (`_skip_if_exists`) are rendered once: an answer change leaves them as they are.
    team = {path for path in before if any(fnmatch.fnmatch(path, p) for p in v0_3_0.team_owned_patterns(TEMPLATE_ROOT))}
    assert [path for path in team if after.get(path) != before[path]] == []
    assert [path for path in fresh if path not in team and after[path] != fresh[path]] == []
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
