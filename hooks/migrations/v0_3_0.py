"""Migration to 0.3.0: the data contract moves from Python constants to the team's contract.yaml.

Run by copier (`_migrations` in copier.yml) after `copier update` crosses 0.3.0, from the project root:
    python hooks/migrations/v0_3_0.py <template root> <release the project was on> <release updated to>

What 0.3.0 changes for an existing project, and what this script does about it (HEAD holds exactly what the
project had before the update: copier refuses to update a dirty tree):

1. `src/<package>/contract.py` (NUMERIC, CATEGORICAL, FEATURE_COLUMNS, TARGET, ... as Python constants) becomes a
   loader of `contract.yaml`. When the project had edited its contract, the old file is read with `ast` (never
   imported or run) and written as `contract.yaml`: columns with their dtype, range, categories and description,
   the id column and pattern, the timestamp column, the binary target, and the derived features and business
   rules that 0.2.0 hard-coded in features.py/validation.py, with the project's constants
   (PREMIUM_MIN_MONTHLY_CHARGES, TOTAL_CHARGES_TOLERANCE, TOTAL_CHARGES_SLACK). A derived feature or rule whose
   columns the project removed is dropped. The conflicted contract.py copier leaves is replaced by the loader. A
   contract.py that is not in the 0.2.0 shape is left alone: contract.yaml stays the fresh render and the
   note (below) holds the old file to port by hand.
2. `params.yaml` changes shape (model.type linear, model.linear, gate.metric/thresholds, split.strategy auto).
   copier three-way merges it; when that leaves conflict markers, the file is rebuilt from the new release's
   params.yaml with the project's own changes (each value it changed relative to its release, and each comment it
   added or reworded on a key's line or right above it) carried to their new keys.
   Where copier's merge of another file conflicts only because the project appended to it (a README section)
   and the release changed its end, the project's addition goes after the release's version.
3. Files that become the team's in 0.3.0 (`_skip_if_exists`: docs/model-card.template.md, data/raw/*.csv)
   are never touched by copier once they exist, so a project would keep the 0.2.0 version forever. An unedited one
   becomes the new release's version; an edited text file is three-way merged (copier-style conflict markers when
   both changed the same lines); edited data is kept.
4. The package is layered: copier deletes the old top-level modules, silently, even when the project had edited
   them. Every file the update deleted that the project had edited is listed, with its diff, in the note.

Everything it did and everything left to do by hand is written to docs/migration-0.3.0.md (and summarised on
stderr). Idempotent: once that note exists, or once contract.yaml is committed, it does nothing; every step also
checks that its target is still as copier left it, so it never overwrites a later edit.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from moved_files import _git, _git_show, _record_conflict, merge_three_way

VERSION = "0.3.0"
NOTE = "docs/migration-0.3.0.md"
CONTRACT_YAML = "contract.yaml"
PARAMS = "params.yaml"
ANSWERS = ".copier-answers.yml"
TEMPLATE_SUBDIRECTORY = "template"
PACKAGE_DIRECTORY = "src/{{ package_name }}"
# Where the code of 0.2.0's top-level modules lives in 0.3.0 (relative to src/<package>/), for the note.
MODULE_MOVES = {
    "artifacts.py": "training/artifacts.py",
    "drift.py": "monitoring/drift.py",
    "drift_logs.py": "monitoring/drift_logs.py",
    "drift_report.py": "monitoring/drift_report.py",
    "evaluate.py": "stages/evaluate.py",
    "features.py": "scoring/features.py (the feature matrix) and contract.yaml `derived` (the derived features)",
    "gate.py": "stages/gate.py",
    "input_checks.py": "tables/input_checks.py",
    "metrics.py": "training/metrics.py",
    "mlflow_tracking.py": "tracking/mlflow_backend.py",
    "onnx_export.py": "training/onnx_export.py",
    "onnx_model.py": "scoring/model.py",
    "provenance.py": "training/provenance.py",
    "quality_report.py": "tables/quality_report.py",
    "serving/example.py": "scoring/example.py",
    "slo_rules.py": "monitoring/slo_rules.py",
    "split.py": "stages/features.py",
    "tables.py": "tables/files.py",
    "tracking.py": "tracking/__init__.py",
    "train.py": "stages/train.py",
    "validation.py": "stages/validate.py (checks) and contract.yaml `rules` (the business rules)",
}
DATA_PREFIX = "data/"


# ------------------------------------------------------------------------------------------------------------
# The note for the team
# ------------------------------------------------------------------------------------------------------------
@dataclass
class Note:
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, title: str, *lines: str) -> None:
        self.sections.append((title, list(lines)))

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def text(self, from_ref: str) -> str:
        out = [
            "# Migration to copier-mlops 0.3.0",
            "",
            f"Written by the template's migration (`hooks/migrations/v0_3_0.py`) when this project was updated from"
            f" {from_ref}. It lists what the migration carried over and what is left to do by hand. Review it with the"
            " update, then delete this file.",
        ]
        if self.warnings:
            out += ["", "## To do by hand", "", *(f"- {warning}" for warning in self.warnings)]
        for title, lines in self.sections:
            out += ["", f"## {title}", "", *lines]
        return "\n".join(line.rstrip() for line in out).rstrip() + "\n"


def fenced(text: str, language: str = "") -> list[str]:
    fence = "````" if "```" in text else "```"
    return [f"{fence}{language}", *text.rstrip("\n").splitlines(), fence]


def unified_diff(before: str, after: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path} (release)", f"b/{path}"
        )
    )


# ------------------------------------------------------------------------------------------------------------
# Renders of the two releases with the project's answers (bases of the merges below)
# ------------------------------------------------------------------------------------------------------------
RENDER = """
import json, sys
import copier
args = json.loads(sys.argv[1])
copier.run_copy(args["src"], args["dst"], data=args["data"], vcs_ref=args["ref"], defaults=True, quiet=True,
                unsafe=False, skip_tasks=True)
"""


class Renders:
    """Copies of the release the project was on ("old") and of the release it is updated to ("new"), rendered
    by copier with the project's answers (before and after the update), both at once in child processes."""

    def __init__(self, template_root: Path, from_ref: str, to_ref: str, project: Path, scratch: Path) -> None:
        self.template_root, self.project, self.scratch = template_root, project, scratch
        self.refs = {"old": from_ref, "new": to_ref}
        self._dirs: dict[str, Path | None] = {}
        self._running: dict[str, subprocess.Popen[str]] = {}
        self.errors: list[str] = []

    def _answers(self, which: str) -> dict[str, Any]:
        text = _git_show(self.project, f"HEAD:{ANSWERS}") if which == "old" else None
        if text is None:
            text = (self.project / ANSWERS).read_text(encoding="utf-8")
        return {key: value for key, value in (yaml.safe_load(text) or {}).items() if not key.startswith("_")}

    def start(self) -> None:
        for which, ref in self.refs.items():
            if which in self._dirs or which in self._running:
                continue
            args = {
                "src": str(self.template_root),
                "dst": str(self.scratch / which),
                "ref": ref,
                "data": self._answers(which),
            }
            self._running[which] = subprocess.Popen(
                [sys.executable, "-c", RENDER, json.dumps(args)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

    def directory(self, which: str) -> Path | None:
        if which not in self._dirs:
            self.start()
            process = self._running.pop(which)
            _, stderr = process.communicate()
            if process.returncode == 0:
                self._dirs[which] = self.scratch / which
            else:
                last = (stderr.strip().splitlines() or ["no output"])[-1]
                self.errors.append(f"could not render {self.refs[which]} with your answers ({last})")
                self._dirs[which] = None
        return self._dirs[which]

    def file(self, which: str, path: str) -> str | None:
        directory = self.directory(which)
        if directory is None or not (directory / path).is_file():
            return None
        return (directory / path).read_text(encoding="utf-8")

    def paths(self, which: str) -> set[str] | None:
        directory = self.directory(which)
        if directory is None:
            return None
        return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------------------------------------
# 1. contract.py -> contract.yaml
# ------------------------------------------------------------------------------------------------------------
class ContractShapeError(ValueError):
    """The old contract.py is not in the shape 0.2.0 shipped: it must be ported by hand."""


@dataclass(frozen=True)
class OldColumn:
    name: str
    dtype: str  # int | float | category
    minimum: float | None
    maximum: float | None
    categories: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class OldContract:
    columns: dict[str, OldColumn]  # in FEATURE_COLUMNS order
    target: str
    id_column: str | None
    id_pattern: str | None
    timestamp_column: str | None
    constants: dict[str, float]
    notes: tuple[str, ...] = ()


NUMERIC_ARGS = ("name", "dtype", "minimum", "maximum", "description")
CATEGORICAL_ARGS = ("name", "categories", "description", "dtype")
RULE_CONSTANTS = ("PREMIUM_MIN_MONTHLY_CHARGES", "TOTAL_CHARGES_TOLERANCE", "TOTAL_CHARGES_SLACK")


def _assignments(tree: ast.Module) -> dict[str, ast.expr]:
    values: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            values[node.target.id] = node.value
    return values


def _literal(node: ast.expr, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ContractShapeError(f"{what} is not a literal: {ast.unparse(node)}") from None


def _field_calls(node: ast.expr, constructor: str, variable: str) -> list[ast.Call]:
    """The `Field(...)` calls of `{f.name: f for f in (Field(...), ...)}` or `{"name": Field(...), ...}`."""

    def is_call(item: ast.expr) -> bool:
        func = item.func if isinstance(item, ast.Call) else None
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        return name == constructor

    if isinstance(node, ast.DictComp) and len(node.generators) == 1:
        iterable = node.generators[0].iter
        if isinstance(iterable, (ast.Tuple, ast.List)) and all(is_call(item) for item in iterable.elts):
            return list(iterable.elts)  # type: ignore[arg-type]
    if (
        isinstance(node, ast.Dict)
        and all(key is not None for key in node.keys)
        and all(is_call(value) for value in node.values)
    ):
        calls = list(node.values)
        for key, call in zip(node.keys, calls, strict=True):
            name = _call_arguments(call, NUMERIC_ARGS if constructor == "NumericField" else CATEGORICAL_ARGS)
            if _literal(key, f"a key of {variable}") != name.get("name"):  # type: ignore[arg-type]
                raise ContractShapeError(f"{variable}: key {ast.unparse(key)} is not the field's name")
        return calls  # type: ignore[return-value]
    raise ContractShapeError(f"{variable} is not a dict of {constructor}(...) calls: {ast.unparse(node)[:200]}")


def _call_arguments(call: ast.Call, names: tuple[str, ...]) -> dict[str, Any]:
    if len(call.args) > len(names) or any(isinstance(arg, ast.Starred) for arg in call.args):
        raise ContractShapeError(f"unexpected arguments in {ast.unparse(call)}")
    values = {
        name: _literal(arg, f"an argument of {ast.unparse(call)[:80]}")
        for name, arg in zip(names, call.args, strict=False)
    }
    for keyword in call.keywords:
        if keyword.arg is None or keyword.arg not in names or keyword.arg in values:
            raise ContractShapeError(f"unexpected argument {keyword.arg!r} in {ast.unparse(call)[:80]}")
        values[keyword.arg] = _literal(keyword.value, f"{keyword.arg} of {ast.unparse(call)[:80]}")
    return values


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractShapeError(f"{what} is not a number: {value!r}")
    return value


def _text(value: Any, what: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ContractShapeError(f"{what} is not a string: {value!r}")
    return value


def parse_old_contract(source: str) -> OldContract:
    """Read a 0.2.0-shaped contract.py without running it; ContractShapeError when it is not in that shape."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ContractShapeError(f"contract.py does not parse: {error}") from None
    values = _assignments(tree)
    for required in ("NUMERIC", "CATEGORICAL", "FEATURE_COLUMNS", "TARGET"):
        if required not in values:
            raise ContractShapeError(f"contract.py has no {required} = ...")
    fields: dict[str, OldColumn] = {}
    for call in _field_calls(values["NUMERIC"], "NumericField", "NUMERIC"):
        args = _call_arguments(call, NUMERIC_ARGS)
        if set(NUMERIC_ARGS) - set(args):
            raise ContractShapeError(f"{ast.unparse(call)[:80]} misses {sorted(set(NUMERIC_ARGS) - set(args))}")
        name = _text(args["name"], "a NumericField name")
        if args["dtype"] not in ("int", "float"):
            raise ContractShapeError(f"{name}: dtype must be int or float, not {args['dtype']!r}")
        fields[name] = OldColumn(  # type: ignore[index]
            name,  # type: ignore[arg-type]
            args["dtype"],
            _number(args["minimum"], f"{name} minimum"),
            _number(args["maximum"], f"{name} maximum"),
            (),
            _text(args["description"], f"{name} description"),  # type: ignore[arg-type]
        )
    for call in _field_calls(values["CATEGORICAL"], "CategoricalField", "CATEGORICAL"):
        args = _call_arguments(call, CATEGORICAL_ARGS)
        if {"name", "categories", "description"} - set(args):
            raise ContractShapeError(f"{ast.unparse(call)[:80]} misses name, categories or description")
        name = _text(args["name"], "a CategoricalField name")
        if name in fields:
            raise ContractShapeError(f"{name} is both numeric and categorical")
        categories = args["categories"]
        if not isinstance(categories, (tuple, list)) or not categories:
            raise ContractShapeError(f"{name}: categories is not a non-empty tuple")
        fields[name] = OldColumn(  # type: ignore[index]
            name,  # type: ignore[arg-type]
            "category",
            None,
            None,
            tuple(str(category) for category in categories),
            _text(args["description"], f"{name} description"),  # type: ignore[arg-type]
        )
    order = _literal(values["FEATURE_COLUMNS"], "FEATURE_COLUMNS")
    if not isinstance(order, (tuple, list)) or not all(isinstance(name, str) for name in order):
        raise ContractShapeError("FEATURE_COLUMNS is not a tuple of column names")
    unknown = [name for name in order if name not in fields]
    if unknown:
        raise ContractShapeError(
            f"FEATURE_COLUMNS names columns that are in neither NUMERIC nor CATEGORICAL: {unknown}"
        )
    notes = []
    extra = [name for name in fields if name not in order]
    if extra:
        notes.append(
            f"NUMERIC/CATEGORICAL had {', '.join(extra)} outside FEATURE_COLUMNS; 0.2.0 used them as model inputs"
            " anyway, so they are columns of contract.yaml (after the others)."
        )
    columns = {name: fields[name] for name in [*order, *extra]}
    constants: dict[str, float] = {}
    for name in RULE_CONSTANTS:
        if name in values:
            constants[name] = _number(_literal(values[name], name), name)  # type: ignore[assignment]
    return OldContract(
        columns=columns,
        target=_text(_literal(values["TARGET"], "TARGET"), "TARGET"),  # type: ignore[arg-type]
        id_column=_text(_literal(values["ID_COLUMN"], "ID_COLUMN"), "ID_COLUMN", True)
        if "ID_COLUMN" in values
        else None,
        id_pattern=_text(_literal(values["ID_PATTERN"], "ID_PATTERN"), "ID_PATTERN", True)
        if "ID_PATTERN" in values
        else None,
        timestamp_column=(
            _text(_literal(values["TIMESTAMP_COLUMN"], "TIMESTAMP_COLUMN"), "TIMESTAMP_COLUMN", True)
            if "TIMESTAMP_COLUMN" in values
            else None
        ),
        constants=constants,
        notes=tuple(notes),
    )


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# 0.2.0's derived features (features.py) and business rules (validation.py), with the constants they read.
DERIVED = {
    "charges_ratio": (
        "total_charges / (monthly_charges * tenure_months)",
        ("total_charges", "monthly_charges", "tenure_months"),
        "Billed total over the nominal bill (below 1 after a price rise, above 1 after a discount).",
    ),
    "tickets_per_year": (
        "support_tickets * 12 / maximum(tenure_months, 1)",
        ("support_tickets", "tenure_months"),
        "Support load normalised by tenure.",
    ),
}


def _rules(constants: dict[str, float]) -> dict[str, tuple[str | None, tuple[str, ...], str, tuple[str, ...]]]:
    """name -> (check or None when a constant is missing, columns, description, constants)."""
    tolerance, slack = constants.get("TOTAL_CHARGES_TOLERANCE"), constants.get("TOTAL_CHARGES_SLACK")
    premium = constants.get("PREMIUM_MIN_MONTHLY_CHARGES")
    consistent = (
        f"abs(total_charges - monthly_charges * tenure_months) <= {_format_number(tolerance)} * monthly_charges"
        f" * tenure_months + {_format_number(slack)}"
        if tolerance is not None and slack is not None
        else None
    )
    return {
        "total_charges_consistent": (
            consistent,
            ("total_charges", "monthly_charges", "tenure_months"),
            "The total billed is close to the monthly bill times the tenure (prices change over a tenure).",
            ("TOTAL_CHARGES_TOLERANCE", "TOTAL_CHARGES_SLACK"),
        ),
        "premium_min_monthly_charges": (
            f'plan != "premium" or monthly_charges >= {_format_number(premium)}' if premium is not None else None,
            ("plan", "monthly_charges"),
            f"The premium plan costs at least {_format_number(premium or 0)} a month.",
            ("PREMIUM_MIN_MONTHLY_CHARGES",),
        ),
    }


def contract_document(old: OldContract, fresh: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The contract.yaml mapping of an old contract (descriptions of the table, target, derived and rules come
    from the fresh render where the old file had none); and what was dropped, for the note."""
    dropped: list[str] = []
    document: dict[str, Any] = {
        "name": fresh.get("name", "customers"),
        "description": fresh.get("description", "One row per customer."),
    }
    if old.id_column:
        document["id"] = {"column": old.id_column, **({"pattern": Quoted(old.id_pattern)} if old.id_pattern else {})}
    if old.timestamp_column:
        document["timestamp"] = {"column": old.timestamp_column}
    fresh_target = fresh.get("target") or {}
    description = (
        fresh_target.get("description")
        if fresh_target.get("column") == old.target
        else f"The target of the 0.2.0 contract ({old.target}): describe it."
    )
    document["target"] = {"column": old.target, "task": "binary", "classes": [0, 1], "description": description}
    columns: dict[str, Any] = {}
    for column in old.columns.values():
        entry: dict[str, Any] = {"dtype": column.dtype}
        if column.dtype == "category":
            entry["categories"] = list(column.categories)
        else:
            for key, value in (("min", column.minimum), ("max", column.maximum)):
                if value is not None:
                    entry[key] = int(value) if column.dtype == "int" and float(value).is_integer() else value
        entry["description"] = column.description
        columns[column.name] = entry
    document["columns"] = columns
    fresh_derived = fresh.get("derived") or {}
    derived = {}
    for name, (expression, needs, description) in DERIVED.items():
        missing = [column for column in needs if column not in old.columns]
        if missing:
            dropped.append(f"derived feature `{name}` ({expression}): the contract has no {', '.join(missing)}")
            continue
        derived[name] = {
            "expression": expression,
            "description": (fresh_derived.get(name) or {}).get("description", description),
        }
    fresh_rules = fresh.get("rules") or {}
    rules = {}
    for name, (check, needs, description, constants) in _rules(old.constants).items():
        missing = [column for column in needs if column not in old.columns]
        if missing:
            dropped.append(f"rule `{name}`: the contract has no {', '.join(missing)}")
            continue
        if check is None:
            dropped.append(f"rule `{name}`: contract.py has no {' / '.join(constants)}")
            continue
        if name == "premium_min_monthly_charges" and "premium" not in old.columns["plan"].categories:
            dropped.append(f"rule `{name}`: the `plan` column has no `premium` category")
            continue
        keep_description = (fresh_rules.get(name) or {}).get("check") == check
        rules[name] = {
            "check": check,
            "description": (fresh_rules.get(name) or {}).get("description", description)
            if keep_description
            else description,
        }
    if derived:
        document["derived"] = derived
    if rules:
        document["rules"] = rules
    return document, dropped


class Quoted(str):
    """A string written in single quotes (a regular expression reads better that way)."""


def _scalar(value: Any) -> str:
    if isinstance(value, Quoted):
        return "'" + str.replace(value, "'", "''") + "'"
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
    return text[: -len("\n...\n")] if text.endswith("\n...\n") else text.rstrip("\n")


def _emit(value: Any, indent: int) -> list[str]:
    lines = []
    pad = " " * indent
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append(f"{pad}{key}:")
            lines += _emit(item, indent + 2)
        else:
            lines.append(f"{pad}{key}: {_scalar(item)}")
    return lines


def contract_yaml(document: dict[str, Any], header: str) -> str:
    """The document in the layout of the template's contract.yaml (block mappings, flow lists), under the
    fresh render's header comment; falls back to plain yaml.safe_dump if the layout would not round-trip."""
    sections = []
    for key, value in document.items():
        sections += [f"{key}:", *_emit(value, 2)] if isinstance(value, dict) else [f"{key}: {_scalar(value)}"]
    body = "\n".join(sections) + "\n"
    if yaml.safe_load(body) != document:
        plain = json.loads(json.dumps(document))  # Quoted -> str
        body = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, width=120)
    return header + body


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def migrate_contract(project: Path, package: str, renders: Renders, note: Note) -> None:
    path = f"src/{package}/contract.py"
    ours = _git_show(project, f"HEAD:{path}")
    if ours is None:
        return
    base = renders.file("old", path)
    if base is None:
        base = _git_show(
            renders.template_root, f"{renders.refs['old']}:{TEMPLATE_SUBDIRECTORY}/{PACKAGE_DIRECTORY}/contract.py"
        )
    loader = (renders.template_root / TEMPLATE_SUBDIRECTORY / PACKAGE_DIRECTORY / "contract.py").read_text(
        encoding="utf-8"
    )
    if base is not None and ours == base:
        return  # not edited: copier replaced it with the loader, and the fresh contract.yaml is already right
    # copier three-way merged the project's constants with the new loader (conflicts): put the loader back. The
    # constants are carried into contract.yaml below, and the project's changes are kept in the note.
    current = project / path
    if not current.is_file() or current.read_text(encoding="utf-8") != loader:
        current.write_text(loader, encoding="utf-8")
        _resolve(project, path)
    edits = fenced(unified_diff(base, ours, path), "diff") if base is not None else fenced(ours, "python")
    target = project / CONTRACT_YAML
    fresh_text = renders.file("new", CONTRACT_YAML)
    if fresh_text is None:
        fresh_text = target.read_text(encoding="utf-8") if target.is_file() else ""
    fresh = yaml.safe_load(fresh_text) or {}
    try:
        old = parse_old_contract(ours)
        if base is not None:
            try:
                if parse_old_contract(base) == old:
                    note.add(
                        "contract.py",
                        "Your edits of contract.py changed no value (comments or layout only):"
                        " contract.yaml is the new release's.",
                    )
                    return
            except ContractShapeError:
                pass
    except ContractShapeError as error:
        note.warn(
            f"Port your data contract by hand: the migration could not read {path} ({error}). contract.yaml is the"
            ' new release\'s sample contract; your old contract.py is below (section "Your old contract.py").'
        )
        note.add(f"Your old contract.py ({path} before the update)", *fenced(ours, "python"))
        return
    document, dropped = contract_document(old, fresh)
    text = contract_yaml(document, _header(fresh_text))
    if target.is_file() and target.read_text(encoding="utf-8") not in (fresh_text, text):
        note.warn(f"{CONTRACT_YAML} already differs from the new release's: the migration did not overwrite it.")
        return
    target.write_text(text, encoding="utf-8")
    lines = [
        f"{CONTRACT_YAML} was written from your {path} (it replaces the Python constants): columns in"
        " FEATURE_COLUMNS order with their dtype, range, categories and description, the id column and pattern,"
        " the timestamp column and the target (binary, classes [0, 1]). The derived features of 0.2.0's"
        " features.py and the rules of its validation.py are its `derived` and `rules`, with your constants"
        f" ({', '.join(f'{name} = {_format_number(value)}' for name, value in old.constants.items()) or 'none'}).",
        "",
    ]
    if old.notes:
        lines += [f"- {text}" for text in old.notes] + [""]
    if dropped:
        lines += ["Dropped because their inputs are gone from your contract:", ""] + [f"- {item}" for item in dropped]
        lines += [""]
        note.warn('contract.yaml: review the dropped derived features and rules (section "contract.py").')
    lines += [
        "Review what contract.yaml offers beyond 0.2.0: nullable columns, other tasks, your own derived features"
        " and rules."
    ]
    lines += ["", f"Your changes to {path} (now the loader of contract.yaml), for reference:", "", *edits]
    note.add("contract.py", *lines)


# ------------------------------------------------------------------------------------------------------------
# 2. params.yaml: the project's values in the new shape
# ------------------------------------------------------------------------------------------------------------
MODEL_TYPES = {"logistic_regression": "linear"}
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-]+):(?P<rest>.*)$")


def _flatten(value: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(value, dict) and value:
        flat: dict[tuple[str, ...], Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, (*prefix, str(key))))
        return flat
    return {prefix: value}


# Keys whose meaning changed: a value the project had set is not carried (the note asks for a new one).
RESEMANTICISED = {
    ("gate", "min_improvement_over_baseline"): "0.3.0 measures the improvement over the baseline differently"
    " (see the comment above `gate:` in params.yaml)",
}


def _candidates(path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Where a 0.2.0 params.yaml key may live in 0.3.0 (the gate may be one section or one per task)."""
    if path[:2] == ("model", "logistic_regression"):
        return [("model", "linear", *path[2:])]
    if path[0] == "gate" and len(path) == 2:
        old_bounds = {"min_roc_auc": ("thresholds", "roc_auc", "min"), "max_brier": ("thresholds", "brier", "max")}
        rest = old_bounds.get(path[1], path[1:])
        return [("gate", "binary", *rest), ("gate", *rest)]
    return [path]


def new_key(path: tuple[str, ...], value: Any, release: Any = None) -> tuple[tuple[str, ...], Any]:
    """A 0.2.0 params.yaml key and value in the 0.3.0 shape: the first candidate key the new release's params
    (`release`, a mapping) has, else the first whose section it has, else the first."""
    if path == ("model", "type"):
        value = MODEL_TYPES.get(value, value)
    if path == ("evaluate", "slice_by") and isinstance(value, str) and value != "auto":
        value = [value]
    candidates = _candidates(path)
    for keep in (lambda key: _dig(release, key) is not KeyError, lambda key: _dig(release, key[:-1]) is not KeyError):
        for candidate in candidates:
            if keep(candidate):
                return candidate, value
    return candidates[0], value


def _split_comment(rest: str) -> tuple[str, str]:
    """' 0.4  # note' -> ('0.4', '  # note'): the value and the comment with its leading spaces."""
    quote = None
    for i, char in enumerate(rest):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or rest[i - 1] in " \t"):
            value = rest[:i].rstrip()
            return value.strip(), rest[len(value) :]
    return rest.strip(), ""


def _key_lines(lines: list[str]) -> dict[tuple[str, ...], int]:
    """The path of every key of a block-style YAML file -> the number of its line (the first, if repeated)."""
    stack: list[tuple[int, str]] = []
    found: dict[tuple[str, ...], int] = {}
    for i, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        found.setdefault(tuple(key for _, key in stack), i)
    return found


def _locate(lines: list[str], path: tuple[str, ...]) -> int | None:
    return _key_lines(lines).get(path)


def _comments(lines: list[str], i: int) -> tuple[str, list[str]]:
    """The comment at the end of key line `i` (with its leading spaces) and the comment lines right above it."""
    match = KEY_LINE.match(lines[i])
    assert match is not None
    inline = _split_comment(match["rest"])[1]
    above: list[str] = []
    while i - len(above) > 0 and lines[i - len(above) - 1].lstrip().startswith("#"):
        above.insert(0, lines[i - len(above) - 1].strip())
    return inline, above


def carry_comments(base: str, ours: str, text: str) -> tuple[str, list[str], list[str]]:
    """`text` with the comments the project added or reworded in `ours` (relative to `base`, the release it was on):
    the comment at the end of a key's line and the comment lines right above a key, on that key's line in the new
    shape: (text, keys whose comments were carried, keys whose comments have no key to go to)."""
    base_lines, our_lines = base.splitlines(keepends=True), ours.splitlines(keepends=True)
    base_keys = _key_lines(base_lines)
    release = yaml.safe_load(text) or {}
    carried: list[str] = []
    left: list[str] = []
    for path, i in _key_lines(our_lines).items():
        inline, above = _comments(our_lines, i)
        base_inline, base_above = _comments(base_lines, base_keys[path]) if path in base_keys else ("", [])
        added_above = [line for line in above if line not in base_above]
        new_inline = inline if inline.strip() and inline.strip() != base_inline.strip() else ""
        if not added_above and not new_inline:
            continue
        target = new_key(path, None, release)[0]
        lines = text.splitlines(keepends=True)
        at = _locate(lines, target)
        if at is None and len(target) > 1:  # a key inside a flow mapping (`roc_auc: {min: 0.75}`): that line
            parent = _locate(lines, target[:-1])
            parent_match = KEY_LINE.match(lines[parent]) if parent is not None else None
            at = parent if parent_match and _split_comment(parent_match["rest"])[0].startswith("{") else None
        if at is None:
            left.append(f"`{'.'.join(path)}`: your comment (no such key in the new shape; the diff below has it)")
            continue
        match = KEY_LINE.match(lines[at])
        assert match is not None
        if new_inline:
            value = _split_comment(match["rest"])[0]
            lines[at] = f"{match['indent']}{match['key']}:{' ' + value if value else ''}{new_inline}\n"
        lines[at:at] = [f"{match['indent']}{comment}\n" for comment in added_above]
        text = "".join(lines)
        carried.append(f"`{'.'.join(target)}`: your comment")
    return text, carried, left


def set_value(text: str, path: tuple[str, ...], value: Any, remove: bool = False) -> str | None:
    """`text` with the value at `path` set (or the key removed), keeping comments; None if it has no place."""
    lines = text.splitlines(keepends=True)
    i = _locate(lines, path)
    if i is not None:
        match = KEY_LINE.match(lines[i])
        assert match is not None
        current, comment = _split_comment(match["rest"])
        if current == "" and i + 1 < len(lines) and _child_indent(lines, i) is not None:
            return None  # a mapping in the release: not a value to overwrite with one
        if remove:
            del lines[i]
        else:
            lines[i] = f"{match['indent']}{match['key']}: {_scalar(value)}{comment}\n"
        return "".join(lines)
    if remove or len(path) < 2:
        return None
    parent = _locate(lines, path[:-1])
    if parent is not None:
        match = KEY_LINE.match(lines[parent])
        assert match is not None
        current, comment = _split_comment(match["rest"])
        if current.startswith("{"):
            mapping = yaml.safe_load(current)
            mapping[path[-1]] = value
            lines[parent] = f"{match['indent']}{match['key']}: {_scalar(mapping)}{comment}\n"
            return "".join(lines)
        if current == "":
            indent = _child_indent(lines, parent) or len(match["indent"]) + 2
            end = parent + 1
            while end < len(lines) and (not lines[end].strip() or _indent_of(lines[end]) >= indent):
                end += 1
            while end > parent + 1 and not lines[end - 1].strip():
                end -= 1
            lines.insert(end, f"{' ' * indent}{path[-1]}: {_scalar(value)}\n")
            return "".join(lines)
        return None
    # The parent is missing too: add it (one level at a time) under its own parent.
    with_parent = set_value(text, path[:-1], {})
    if with_parent is None:
        return None
    with_parent = with_parent.replace(f"{path[-2]}: {{}}\n", f"{path[-2]}:\n", 1)
    return set_value(with_parent, path, value)


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _child_indent(lines: list[str], parent: int) -> int | None:
    for line in lines[parent + 1 :]:
        if line.strip() and not line.lstrip().startswith("#"):
            indent = _indent_of(line)
            return indent if indent > _indent_of(lines[parent]) else None
    return None


def _dig(mapping: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(mapping, dict) or key not in mapping:
            return KeyError
        mapping = mapping[key]
    return mapping


def carry_params(base: str, ours: str, theirs: str) -> tuple[str, list[str], list[str]]:
    """theirs with the project's changes (ours relative to base) at their new keys, its comments included
    (carry_comments): (text, carried, not carried)."""
    base_values, our_values = _flatten(yaml.safe_load(base) or {}), _flatten(yaml.safe_load(ours) or {})
    text, carried, left = theirs, [], []
    release = yaml.safe_load(theirs) or {}
    for path in [*base_values, *(p for p in our_values if p not in base_values)]:
        removed = path not in our_values
        if not removed and path in base_values and our_values[path] == base_values[path]:
            continue
        old_value = None if removed else our_values[path]
        target, value = new_key(path, old_value, release)
        name, new_name = ".".join(path), ".".join(target)
        if removed and _dig(release, target) is KeyError:
            continue  # the new release has no such key either
        if path in RESEMANTICISED:
            left.append(f"`{name}`: {_scalar(old_value)} ({RESEMANTICISED[path]})")
            continue
        result = set_value(text, target, value, remove=removed)
        expected_ok = result is not None and (
            _dig(yaml.safe_load(result), target) is KeyError
            if removed
            else _dig(yaml.safe_load(result), target) == value
        )
        if not expected_ok:
            left.append(
                f"`{name}`: " + ("removed" if removed else f"{_scalar(old_value)}") + f" (no `{new_name}` to put it in)"
            )
            continue
        text = result  # type: ignore[assignment]
        where = "" if target == path else f" (now `{new_name}`)"
        carried.append(
            f"`{name}`{where}: " + ("removed" if removed else f"{_scalar(base_values.get(path))} -> {_scalar(value)}")
        )
    text, commented, uncommented = carry_comments(base, ours, text)
    return text, carried + commented, left + uncommented


def migrate_params(project: Path, note: Note) -> None:
    path = project / PARAMS
    if not path.is_file() or not _has_markers(path):
        return
    stages = {stage: _git_show(project, f":{stage}:{PARAMS}") for stage in (1, 2, 3)}
    base, theirs = stages[1], stages[3]
    ours = stages[2] or _git_show(project, f"HEAD:{PARAMS}")
    if base is None or theirs is None or ours is None:
        note.warn(f"{PARAMS} has conflict markers the migration could not resolve (no merge stages): resolve them.")
        return
    text, carried, left = carry_params(base, ours, theirs)
    path.write_text(text, encoding="utf-8")
    _resolve(project, PARAMS)
    lines = [
        f"copier could not merge your {PARAMS} into the new shape (conflicts), so the migration rebuilt it from the"
        " new release's file with each value you had changed:",
        "",
        *[f"- {item}" for item in carried],
    ]
    if left:
        lines += ["", "Not carried (no place, or a new meaning, in the new shape): set them by hand if needed:", ""]
        lines += [f"- {item}" for item in left]
        note.warn(f'{PARAMS}: some of your values have no place in the new shape (section "{PARAMS}").')
    lines += ["", "Your changes to the file as the old release rendered it (comments included):", ""]
    lines += fenced(unified_diff(base, ours, PARAMS), "diff")
    note.add(PARAMS, *lines)


def resolve_appended(project: Path, note: Note) -> None:
    """copier's conflicts where the project had only appended to a file (a README section, say) and the release
    changed the file's end: the release's file with the project's addition after it, which is what the project
    meant. Other conflicts stay for the team (copier-style markers, unmerged in the index)."""
    unmerged = {line.split("\t", 1)[1] for line in _git(project, "ls-files", "--unmerged").splitlines() if "\t" in line}
    resolved = []
    for path in sorted(unmerged):
        base, ours, theirs = (_git_show(project, f":{stage}:{path}") for stage in (1, 2, 3))
        if base is None or ours is None or theirs is None or not ours.startswith(base) or ours == base:
            continue
        if not (project / path).is_file() or not _has_markers(project / path):
            continue
        addition = ours[len(base) :]
        (project / path).write_text(theirs + ("" if theirs.endswith("\n") else "\n") + addition, encoding="utf-8")
        _resolve(project, path)
        resolved.append(path)
    if resolved:
        note.add(
            "Additions at the end of a file",
            "You had only added text at the end of these files and the release changed their end, so copier saw a"
            " conflict; the migration put your addition after the release's version:",
            "",
            *[f"- {path}" for path in resolved],
        )


# ------------------------------------------------------------------------------------------------------------
# 3. Files that become the team's, 4. files the update deleted
# ------------------------------------------------------------------------------------------------------------
def team_owned_patterns(template_root: Path) -> list[str]:
    config = yaml.safe_load((template_root / "copier.yml").read_text(encoding="utf-8")) or {}
    return [str(pattern) for pattern in config.get("_skip_if_exists", [])]


def head_files(project: Path) -> list[str]:
    return [path for path in _git(project, "ls-tree", "-r", "--name-only", "-z", "HEAD").split("\0") if path]


def migrate_team_owned(project: Path, renders: Renders, note: Note) -> None:
    patterns = team_owned_patterns(renders.template_root)
    for path in head_files(project):
        if not any(fnmatch.fnmatch(path, pattern) for pattern in patterns) or path == CONTRACT_YAML:
            continue
        ours = _git_show(project, f"HEAD:{path}")
        current = project / path
        if ours is None or not current.is_file() or current.read_text(encoding="utf-8") != ours:
            continue  # copier or a later edit changed it: not the file this step is about
        base, theirs = renders.file("old", path), renders.file("new", path)
        if base is None or theirs is None:
            if renders.errors:
                note.warn(f"{path}: compare it with the new release's by hand ({'; '.join(renders.errors)}).")
            continue
        if ours == base:
            if theirs != ours:
                current.write_text(theirs, encoding="utf-8")
            continue
        if path.startswith(DATA_PREFIX):
            if theirs != base:
                note.add(path, "The release changed its sample of this file; yours is edited, so it was kept.")
            continue
        merged, conflicted = merge_three_way(ours, base, theirs)
        if merged == ours:
            continue
        current.write_text(merged, encoding="utf-8")
        if conflicted:
            _record_conflict(project, path, base=base, ours=ours, theirs=theirs)
            note.warn(f"{path}: resolve the conflict markers (your edits and the release's changed the same lines).")
        note.add(
            path,
            "This file is the team's from 0.3.0 on (updates never touch it again). The migration merged the"
            " release's changes into your edited version" + (" (with conflicts)." if conflicted else "."),
        )


def report_deleted_edits(project: Path, package: str, renders: Renders, note: Note, skip: set[str]) -> None:
    new_paths = renders.paths("new")
    lines: list[str] = []
    for path in head_files(project):
        if (project / path).exists() or path in skip or (new_paths is not None and path in new_paths):
            continue
        ours = _git_show(project, f"HEAD:{path}")
        base = renders.file("old", path)
        if base is None and renders.directory("old") is not None:
            continue  # not a file of the old release: not deleted by the template
        if ours is None or ours == base:
            continue
        module = path.removeprefix(f"src/{package}/")
        hint = f" Its code now lives in src/{package}/{MODULE_MOVES[module]}." if module in MODULE_MOVES else ""
        edited = "" if base is not None else " (could not render the old release to compare: it may be unedited)"
        lines += [f"### {path}", "", f"Removed by the release; you had edited it{edited}.{hint} Your changes:", ""]
        lines += [*fenced(unified_diff(base or "", ours, path), "diff"), ""]
    if lines:
        note.warn('Port your edits of the files 0.3.0 removed (section "Edited files the release removed").')
        note.add("Edited files the release removed", *lines)


# ------------------------------------------------------------------------------------------------------------
# Helpers and entry point
# ------------------------------------------------------------------------------------------------------------
CONFLICT_MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)


def _has_markers(path: Path) -> bool:
    return bool(CONFLICT_MARKER.search(path.read_text(encoding="utf-8")))


def _resolve(project: Path, path: str) -> None:
    """Clear the unmerged stages copier recorded: the index holds HEAD's version again, as for a clean merge."""
    if _git(project, "ls-files", "--unmerged", "--", path).strip():
        _git(project, "reset", "--quiet", "--", path)


def moved_by_earlier_migrations() -> set[str]:
    try:
        from v0_2_0 import MOVES
    except ImportError:
        return set()
    return set(MOVES)


def migrate(template_root: Path, from_ref: str, to_ref: str, project: Path) -> Note | None:
    """Run the migration in `project` (see the module docstring); None when there was nothing to do."""
    if (project / NOTE).exists() or _git_show(project, f"HEAD:{CONTRACT_YAML}") is not None:
        print(f"copier-mlops migration {VERSION}: already migrated, nothing to do", file=sys.stderr)
        return None
    package = (yaml.safe_load((project / ANSWERS).read_text(encoding="utf-8")) or {})["package_name"]
    note = Note()
    with tempfile.TemporaryDirectory(prefix="copier-mlops-0.3.0-") as scratch:
        renders = Renders(template_root, from_ref, to_ref, project, Path(scratch))
        renders.start()
        migrate_contract(project, package, renders, note)
        migrate_params(project, note)
        resolve_appended(project, note)
        migrate_team_owned(project, renders, note)
        report_deleted_edits(project, package, renders, note, moved_by_earlier_migrations())
        for error in renders.errors:
            note.warn(f"The migration {error}; the steps that compare with it were skipped or approximated.")
    if not note.sections and not note.warnings:
        return note
    (project / NOTE).parent.mkdir(parents=True, exist_ok=True)
    (project / NOTE).write_text(note.text(from_ref), encoding="utf-8")
    return note


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: v0_3_0.py TEMPLATE_ROOT FROM_REF [TO_REF]  (run by copier from the project root)")
        return 2
    template_root, from_ref = Path(argv[0]), argv[1]
    to_ref = argv[2] if len(argv) == 3 else "HEAD"
    note = migrate(template_root, from_ref, to_ref, Path.cwd())
    if note is not None and (note.sections or note.warnings):
        print(f"copier-mlops migration {VERSION}: wrote {NOTE}; review it with the update.", file=sys.stderr)
        for title, _ in note.sections:
            print(f"  - {title}", file=sys.stderr)
        for warning in note.warnings:
            print(f"  ! {warning}", file=sys.stderr)
    elif note is not None:
        print(f"copier-mlops migration {VERSION}: nothing to carry over", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
