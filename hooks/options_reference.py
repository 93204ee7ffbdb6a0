"""Write the docs pages that are derived from copier.yml, so they cannot drift from the questions.

    python hooks/options_reference.py            # rewrite docs/options.md and docs/generated-files.md
    python hooks/options_reference.py --check    # exit 1 if either page is out of date (tests/test_docs.py)

docs/options.md lists every question (help, type, default, choices, when it is asked, what the validator
refuses), the computed values and the release migrations. docs/generated-files.md lists the paths that exist
only for some answers, read from the Jinja conditions in `_exclude`, and what each answer value adds or leaves
out.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
COPIER_YML = REPO_ROOT / "copier.yml"
OPTIONS_PAGE = REPO_ROOT / "docs" / "options.md"
GENERATED_FILES_PAGE = REPO_ROOT / "docs" / "generated-files.md"
GENERATED_NOTICE = "<!-- Generated from copier.yml by hooks/options_reference.py: edit copier.yml, then rerun it. -->"

CONDITIONAL_PATH = re.compile(r"^\{%\s*if\s+(?P<condition>.+?)\s*%\}(?P<path>.+?)\{%\s*endif\s*%\}$")
JINJA_TAG = re.compile(r"\{%.*?%\}", re.DOTALL)


@dataclass(frozen=True)
class Question:
    name: str
    spec: Mapping[str, Any]

    @property
    def asked(self) -> bool:
        return self.spec.get("when") is not False

    @property
    def computed(self) -> bool:
        """A `when: false` value derived from the answers (as opposed to a fixed reference list)."""
        return not self.asked and "{{" in str(self.spec.get("default", ""))

    @property
    def choices(self) -> list[str]:
        choices = self.spec.get("choices")
        if choices is None:
            return ["true", "false"] if self.spec.get("type") == "bool" else []
        return [str(choice) for choice in (choices.values() if isinstance(choices, dict) else choices)]

    def refusals(self) -> list[str]:
        """The messages the validator can answer with (the text between its Jinja tags)."""
        validator = str(self.spec.get("validator", ""))
        return [" ".join(part.split()) for part in JINJA_TAG.split(validator) if part.strip()]


@dataclass(frozen=True)
class ConditionalPath:
    path: str
    left_out_when: str


def load_config(path: Path = COPIER_YML) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def questions(config: Mapping[str, Any]) -> list[Question]:
    return [Question(name, spec) for name, spec in config.items() if not name.startswith("_")]


def conditional_paths(config: Mapping[str, Any]) -> list[ConditionalPath]:
    found = []
    for pattern in config.get("_exclude", []):
        match = CONDITIONAL_PATH.match(pattern.strip())
        if match:
            found.append(ConditionalPath(match["path"].strip(), match["condition"]))
    return found


def default_answers(config: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """Every question's default in file order (Jinja defaults rendered against the answers before them)."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    answers: dict[str, Any] = {}
    for question in questions(config):
        if question.name in overrides:
            answers[question.name] = overrides[question.name]
            continue
        default = question.spec.get("default")
        if isinstance(default, str) and "{{" in default:
            default = environment.from_string(default).render(answers).strip()
        answers[question.name] = default
    return answers


def excluded_paths(config: Mapping[str, Any], answers: Mapping[str, Any]) -> set[str]:
    """The conditional paths these answers leave out, by their own condition or a parent directory's."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    rendered = {environment.from_string(entry.strip()).render(answers).strip() for entry in config["_exclude"]}
    excluded = {path for path in rendered if path}
    return {
        entry.path
        for entry in conditional_paths(config)
        if any(_matches_itself_or_a_parent(entry.path, pattern) for pattern in excluded)
    }


def _matches_itself_or_a_parent(path: str, pattern: str) -> bool:
    parts = path.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[:depth]), pattern) for depth in range(1, len(parts) + 1))


def _typed(value: str, question: Question) -> Any:
    return value == "true" if question.spec.get("type") == "bool" else value


def _format_default(question: Question) -> str:
    default = question.spec.get("default")
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    text = " ".join(str(default).split())
    return f"computed: `{text}`" if "{{" in text else f"`{text}`"


def render_options_page(config: Mapping[str, Any]) -> str:
    lines = [
        GENERATED_NOTICE,
        "",
        "# Options reference",
        "",
        "Every question `copier copy` asks, in the order it asks them. Pass any of them non-interactively",
        "with `--data name=value` (or a YAML file with `--data-file`); `--defaults` takes the default of",
        "every question not given. What each answer adds to or leaves out of the generated repository is on",
        "[Generated files](generated-files.md).",
        "",
    ]
    for question in questions(config):
        if not question.asked:
            continue
        lines += [f"## `{question.name}`", "", " ".join(str(question.spec.get("help", "")).split()), ""]
        lines.append(f"- **Type:** `{question.spec.get('type', 'str')}`")
        lines.append(f"- **Default:** {_format_default(question)}")
        if question.spec.get("choices"):
            lines.append("- **Choices:** " + ", ".join(f"`{choice}`" for choice in question.choices))
        if "when" in question.spec:
            lines.append(f"- **Asked when:** `{' '.join(str(question.spec['when']).split())}`")
        for message in question.refusals():
            lines.append(f"- **Refused with:** {message}")
        lines.append("")

    computed = [question for question in questions(config) if question.computed]
    lines += [
        "## Computed values",
        "",
        "Never asked and never stored in `.copier-answers.yml`: derived from the answers on every render.",
        "",
        "| Name | Value |",
        "| --- | --- |",
    ]
    lines += [f"| `{q.name}` | `{' '.join(str(q.spec['default']).split())}` |" for q in computed]

    references = [question for question in questions(config) if not question.asked and not question.computed]
    lines += [
        "",
        "## Validator reference lists",
        "",
        "Fixed lists the validators above check answers against.",
        "",
    ]
    for question in references:
        values = str(question.spec.get("default", "")).split()
        lines += [f"- `{question.name}` ({len(values)} values): " + ", ".join(f"`{v}`" for v in values)]

    lines += [
        "",
        "## Migrations",
        "",
        "Scripts `copier update` runs when it crosses a release (only with `--trust`; see",
        "[Releasing](releasing.md)).",
        "",
        "| Release | Script |",
        "| --- | --- |",
    ]
    for migration in config.get("_migrations", []):
        command = migration["command"]
        words = command if isinstance(command, list) else command.split()
        script = next((w.split("}}/")[-1] for w in words if str(w).endswith(".py")), str(command))
        lines.append(f"| `{migration['version']}` | `{script}` |")
    return "\n".join(lines) + "\n"


def _answer_effects(config: Mapping[str, Any]) -> Iterator[tuple[Question, str, set[str], set[str]]]:
    """(question, value, paths it renders, paths it leaves out): only the paths that this question's values
    switch on or off, every other answer at its default."""
    conditions = " ".join(entry.left_out_when for entry in conditional_paths(config))
    for question in questions(config):
        if not question.asked or not question.choices or not re.search(rf"\b{question.name}\b", conditions):
            continue
        left_out_by_value = {
            value: excluded_paths(config, default_answers(config, **{question.name: _typed(value, question)}))
            for value in question.choices
        }
        switched = set.union(*left_out_by_value.values()) - set.intersection(*left_out_by_value.values())
        for value, left_out in left_out_by_value.items():
            yield question, value, switched - left_out, switched & left_out


def render_generated_files_page(config: Mapping[str, Any]) -> str:
    lines = [
        GENERATED_NOTICE,
        "",
        "# Generated files",
        "",
        "Every path of `template/` is generated for every set of answers, except the paths below: `_exclude`",
        "in `copier.yml` leaves each one out when its condition holds. Answers change *contents* too (the",
        "cloud in Terraform and CI login, the region, the names), but only these conditions change *which",
        "files exist*.",
        "",
        "| Path | Left out when |",
        "| --- | --- |",
    ]
    lines += [f"| `{entry.path}` | `{entry.left_out_when}` |" for entry in conditional_paths(config)]
    lines += [
        "",
        "## By answer",
        "",
        "The conditional paths each answer renders, every other answer at its default "
        f"({', '.join(f'`{k}={v}`' for k, v in _defaults_summary(config).items())}).",
        "",
    ]
    current = None
    for question, value, added, left_out in _answer_effects(config):
        if question.name != current:
            lines += [
                f"### `{question.name}`",
                "",
                "| Answer | Renders | Leaves out |",
                "| --- | --- | --- |",
            ]
            current = question.name
        render = "<br>".join(f"`{path}`" for path in sorted(added)) or "-"
        skip = "<br>".join(f"`{path}`" for path in sorted(left_out)) or "-"
        lines.append(f"| `{value}` | {render} | {skip} |")
        if question.choices[-1] == value:
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _defaults_summary(config: Mapping[str, Any]) -> dict[str, Any]:
    defaults = default_answers(config)
    conditions = " ".join(entry.left_out_when for entry in conditional_paths(config))
    return {
        name: str(value).lower() if isinstance(value, bool) else value
        for name, value in defaults.items()
        if re.search(rf"\b{name}\b", conditions)
    }


def pages(config: Mapping[str, Any]) -> dict[Path, str]:
    return {
        OPTIONS_PAGE: render_options_page(config),
        GENERATED_FILES_PAGE: render_generated_files_page(config),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a page is out of date instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in pages(load_config()).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.relative_to(REPO_ROOT))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    if stale:
        print(
            f"out of date: {', '.join(map(str, stale))}; run `python hooks/options_reference.py`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
