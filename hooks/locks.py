"""Regenerate the template's dependency locks: the uv.lock every render ships, one per lock profile.

A lock profile is the set of answers that changes the generated pyproject.toml's dependencies: the cloud (its
object-store libraries for DVC and batch scoring), experiment tracking (mlflow), the managed MLflow's client
plugin and the feature store (feast). copier.yml computes it as `lock_profile`
(`<cloud_provider>-<experiment_tracking>`, `-managed` appended with tracking_server managed, `-feast` with
feature_store feast), and `template/uv.lock.jinja` includes `locks/<lock_profile>.lock`. Every other answer
leaves the dependencies alone: the Python version only picks the interpreter, because `requires-python` is the
template's floor and the lock resolves for every interpreter above it.

For each profile this script renders the template's working tree with that profile's answers (defaults for the
rest), runs `uv lock` there, starting from the stored lock so that versions move only where the dependencies
changed (`--upgrade` moves them all to the newest), and stores the result with the project's name as
`{{ project_slug }}`, the one line of a lock that depends on other answers.

    uv run python hooks/locks.py            # after editing template/pyproject.toml.jinja (make locks)
    uv run python hooks/locks.py --upgrade  # newest versions of everything (the template's release routine)
    uv run python hooks/locks.py --check    # fail if a stored lock no longer matches its profile (no writes)
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import yaml

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
LOCKS = TEMPLATE_ROOT / "locks"
# The answers a lock profile is made of, in the order copier.yml's `lock_profile` joins them.
PROFILE_ANSWERS = ("cloud_provider", "experiment_tracking")
# The feature store adds a `-feast` suffix to the profile (after `-managed`): Feast with its online store's extra.
FEATURE_STORE_CLOUDS = ("none", "aws", "gcp", "azure")
# tracking_server managed adds a `-managed` suffix (its MLflow plugin), on the clouds that have a managed MLflow.
MANAGED_TRACKING_CLOUDS = ("aws", "azure")
# The root package's entry is the only part of a lock that names the project.
ROOT_ENTRY = '[[package]]\nname = "{name}"\nversion = "0.1.0"\nsource = {{ editable = "." }}\n'
JINJA_MARKERS = ("{{", "{%", "{#")


def profiles(root: Path = TEMPLATE_ROOT) -> dict[str, dict[str, str]]:
    """Every lock profile copier.yml can compute: name -> the answers that select it."""
    config = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
    choices = [list(config[answer]["choices"].values()) for answer in PROFILE_ANSWERS]
    found = {
        "-".join(values): dict(zip(PROFILE_ANSWERS, values, strict=True)) for values in itertools.product(*choices)
    }
    for name, answers in list(found.items()):
        # a cloud with feast serves from a container (copier.yml's feature_store validator)
        feast = {"feature_store": "feast", **({"serving": "container"} if answers["cloud_provider"] != "none" else {})}
        if answers["cloud_provider"] in FEATURE_STORE_CLOUDS:
            found[f"{name}-feast"] = {**answers, **feast}
        if answers["cloud_provider"] in MANAGED_TRACKING_CLOUDS and answers["experiment_tracking"] == "mlflow":
            found[f"{name}-managed"] = {**answers, "tracking_server": "managed"}
            found[f"{name}-managed-feast"] = {**answers, "tracking_server": "managed", **feast}
    return found


def lock_path(profile: str, root: Path = TEMPLATE_ROOT) -> Path:
    return root / "locks" / f"{profile}.lock"


def to_template(lock: str, project_slug: str) -> str:
    """A lock written for `project_slug`, with the project's name left to copier."""
    if any(marker in lock for marker in JINJA_MARKERS):
        raise ValueError("the lock contains Jinja markup; copier would render it: look for '{{', '{%' or '{#'")
    entry = ROOT_ENTRY.format(name=project_slug)
    if lock.count(entry) != 1:
        raise ValueError(f"the lock has no single root entry for {project_slug!r}:\n{entry}")
    return lock.replace(entry, ROOT_ENTRY.format(name="{{ project_slug }}"))


def render(answers: dict[str, str], destination: Path, root: Path = TEMPLATE_ROOT) -> Path:
    """Render the working tree (uncommitted changes included) with `answers` and defaults for the rest."""
    from copier import run_copy  # the template's dev group; imported here so --help works without it

    warnings.filterwarnings("ignore", message="Dirty template changes included automatically")
    run_copy(str(root), destination, data=answers, defaults=True, vcs_ref="HEAD", quiet=True, unsafe=False)
    return destination


def uv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The lock is universal (every interpreter from requires-python up), so the one here resolves it.
    return subprocess.run(
        ["uv", "lock", "--python", sys.executable, *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def lock_profile(name: str, answers: dict[str, str], *, upgrade: bool, check: bool, root: Path = TEMPLATE_ROOT) -> str:
    """Lock one profile; return a line for the report. Raise on failure."""
    stored = lock_path(name, root)
    created = not stored.exists()
    if created and check:
        raise RuntimeError(f"{name}: no stored lock {stored.relative_to(root)}; run `make locks`")
    if created:  # the render includes the stored lock: start a new profile from an empty one
        stored.parent.mkdir(exist_ok=True)
        stored.write_text("", encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix=f"lock-{name}-") as scratch:
        project = render(answers, Path(scratch) / "project", root)
        slug = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))["project_slug"]
        if created:
            (project / "uv.lock").unlink()
        result = uv(*(["--check"] if check else ["--upgrade"] if upgrade else []), cwd=project)
        if result.returncode != 0:
            if created:
                stored.unlink()
            raise RuntimeError(f"{name}: uv lock {'--check ' if check else ''}failed:\n{result.stderr}")
        if check:
            return f"{name}: up to date"
        fresh = to_template((project / "uv.lock").read_text(encoding="utf-8"), slug)
    before = "" if created else stored.read_text(encoding="utf-8")
    stored.write_text(fresh, encoding="utf-8")
    packages = fresh.count("[[package]]")
    state = "new" if created else "unchanged" if fresh == before else "updated"
    return f"{name}: {state}, {packages} packages, {len(fresh.encode()) / 1024:.0f} KiB"


def required_uv() -> str:
    """The uv the locks are made with: `required-version = ">=X.Y.Z"` of the generated pyproject.toml, which the
    generated Makefile installs when uv is missing and the Dockerfile pins."""
    pyproject = (TEMPLATE_ROOT / "template/pyproject.toml.jinja").read_text(encoding="utf-8")
    match = re.search(r'^required-version = ">=(\d+\.\d+\.\d+)"$', pyproject, re.MULTILINE)
    if match is None:
        raise ValueError('template/pyproject.toml.jinja has no `required-version = ">=X.Y.Z"` under [tool.uv]')
    return match[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--upgrade", action="store_true", help="move every dependency to its newest allowed version")
    mode.add_argument("--check", action="store_true", help="only check that every stored lock is current")
    parser.add_argument("--profile", action="append", help="only this profile (repeatable); default: all")
    args = parser.parse_args(argv)
    if shutil.which("uv") is None:
        parser.error("uv is not on PATH: run `make bootstrap`")
    running = subprocess.run(["uv", "--version"], capture_output=True, text=True, check=False).stdout.split()[1:2]
    if not args.check and running != [required := required_uv()]:
        parser.error(
            f"this is uv {''.join(running)}, and the locks are made with uv {required} (`required-version` in"
            f" template/pyproject.toml.jinja): install uv {required}, or move required-version and the uv pin of"
            " template/Dockerfile.jinja to this uv first"
        )

    known = profiles()
    unknown = sorted(set(args.profile or ()) - set(known))
    if unknown:
        parser.error(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(known)}")
    stale = sorted(path.name for path in LOCKS.glob("*.lock") if path.stem not in known)
    failures = 0
    for name in args.profile or known:
        try:
            print(lock_profile(name, known[name], upgrade=args.upgrade, check=args.check))
        except (RuntimeError, ValueError) as error:
            failures += 1
            print(error, file=sys.stderr)
    if stale:
        failures += 1
        print(f"locks of no profile copier.yml can compute (delete them): {', '.join(stale)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
