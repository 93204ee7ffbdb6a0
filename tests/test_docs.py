"""The template's documentation site: builds strictly, covers every page, and cannot drift from the template.

docs/options.md and docs/generated-files.md are generated from copier.yml (hooks/options_reference.py); the
hand-written pages about the generated repository name paths that must exist in a render.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_ROOT, run

sys.path.insert(0, str(TEMPLATE_ROOT / "hooks"))
import options_reference

DOCS = TEMPLATE_ROOT / "docs"
DEFAULT_COMBO = {"cloud_provider": "aws", "serving": "container", "experiment_tracking": "mlflow"}
# Answers that copier accepts only beside others (its validators): what each needs on top of DEFAULT_COMBO.
NEEDS: dict[tuple[str, str], dict[str, str]] = {
    ("orchestrator", "sagemaker"): {"tracking_server": "managed"},
}
FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\s]+)`")
FILE_NAME = re.compile(r"^(\.?[\w-]+\.(md|yml|yaml|py|json|csv|toml|tf|tfvars)|Makefile|Dockerfile)$")
PAGES_NAMING_GENERATED_PATHS = ("architecture.md", "well-architected.md")


def test_derived_pages_are_current() -> None:
    result = run([sys.executable, "hooks/options_reference.py", "--check"], cwd=TEMPLATE_ROOT)
    assert result.returncode == 0, result.stderr


def test_site_builds_with_strict_checks(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=TEMPLATE_ROOT,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
    )
    assert result.returncode == 0, result.stderr
    assert "project_slug" in (site / "options" / "index.html").read_text(encoding="utf-8")
    newest = re.search(r"^## \[(\d+\.\d+\.\d+)\]", (TEMPLATE_ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert newest is not None
    assert newest.group(1) in (site / "changelog" / "index.html").read_text(encoding="utf-8")


def _nav_pages(nav: list) -> set[str]:
    pages: set[str] = set()
    for entry in nav:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages |= _nav_pages(value) if isinstance(value, list) else {value}
    return pages


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((TEMPLATE_ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    on_disk = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert _nav_pages(config["nav"]) == on_disk


def _effects() -> list:
    config = options_reference.load_config()
    return [
        pytest.param(question.name, value, renders, leaves_out, id=f"{question.name}={value}")
        for question, value, renders, leaves_out in options_reference._answer_effects(config)
    ]


@pytest.mark.parametrize(("question", "value", "renders", "leaves_out"), _effects())
def test_generated_files_page_matches_real_renders(
    render, question: str, value: str, renders: set[str], leaves_out: set[str]
) -> None:
    """What docs/generated-files.md says an answer renders or leaves out is what copier does."""
    answer: object = value == "true" if value in ("true", "false") else value
    project = render(**{**DEFAULT_COMBO, **NEEDS.get((question, value), {}), question: answer})
    for pattern in renders:
        assert list(project.glob(pattern)), f"{question}={value}: the page says {pattern} is rendered"
    for pattern in leaves_out:
        assert not list(project.glob(pattern)), f"{question}={value}: the page says {pattern} is left out"


def _named_paths(page: str) -> list[str]:
    text = FENCED_BLOCK.sub("", (DOCS / page).read_text(encoding="utf-8"))
    paths = []
    for token in INLINE_CODE.findall(text):
        if token.startswith("/") or any(char in token for char in "{}=$:"):
            continue
        if "/" in token or FILE_NAME.match(token):
            paths.append(token)
    return paths


@pytest.mark.parametrize("page", PAGES_NAMING_GENERATED_PATHS)
def test_paths_named_on_the_page_exist_in_a_default_render(render, page: str) -> None:
    project = render(**DEFAULT_COMBO)
    package = next(project.glob("src/*/__init__.py")).parent.name
    named = [path.replace("<package>", package).replace("<cloud>", "aws").rstrip("/") for path in _named_paths(page)]
    checked = [path for path in named if "<" not in path]
    assert checked, f"{page} names no generated paths: the check would be empty"
    missing = sorted({path for path in checked if not (project / path).exists()})
    assert missing == [], f"{page} names paths a default render does not have"
