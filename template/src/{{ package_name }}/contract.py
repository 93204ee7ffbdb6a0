"""The data contract: contract.yaml, the team's one description of its data, read into typed specs.

contract.yaml belongs to the team (the template never overwrites it on `copier update`). Everything else is
derived from it at run time: the validation schema, the feature matrix, the request and response schemas of
the service, batch output, evaluation slices and baselines, drift checks, monitoring baselines, the model card
and the generic tests. `make contract DATA=<file> TARGET=<column>` drafts one from a table.

The file is found at $CONTRACT_PATH, else ./contract.yaml (the project root: make, dvc, pytest and the
container all run from there).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from .expressions import Expression, ExpressionError, compile_expression

DEFAULT_PATH = Path("contract.yaml")
PATH_VARIABLE = "CONTRACT_PATH"
DTYPES = ("int", "float", "category")
TASKS = ("binary", "multiclass", "regression")
# Feature names the matrix builds from a column name: `col=category` and `col__missing`.
_RESERVED_IN_NAMES = ("=",)
_MISSING_SUFFIX = "__missing"
# Keys of the batch bodies of the service: {"records": [...]}, and Vertex AI's {"instances", "parameters"}.
_RESERVED_NAMES = frozenset({"records", "instances", "parameters"})

Dtype = Literal["int", "float", "category"]
Task = Literal["binary", "multiclass", "regression"]
Label = int | str


class ContractError(ValueError):
    """contract.yaml is missing, malformed, or describes something the pipeline cannot use."""


@dataclass(frozen=True)
class Column:
    """A model input: its type, the values the contract accepts and whether it may be missing."""

    name: str
    dtype: Dtype
    description: str = ""
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()

    @property
    def is_numeric(self) -> bool:
        return self.dtype != "category"


@dataclass(frozen=True)
class Target:
    """What the model predicts, and so which task it learns."""

    column: str
    task: Task
    description: str = ""
    classes: tuple[Label, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    @property
    def positive_class(self) -> Label | None:
        """Binary: the class whose probability is the score (the second of `classes`)."""
        return self.classes[1] if self.task == "binary" else None


@dataclass(frozen=True)
class Derived:
    """A feature computed from the columns with an expression (expressions.py)."""

    name: str
    expression: Expression
    description: str = ""


@dataclass(frozen=True)
class Rule:
    """A business rule: an expression that is true for every valid row."""

    name: str
    check: Expression
    description: str = ""


@dataclass(frozen=True)
class Contract:
    name: str
    columns: dict[str, Column]
    target: Target
    description: str = ""
    id_column: str | None = None
    id_pattern: str | None = None
    timestamp_column: str | None = None
    derived: dict[str, Derived] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    source: str = str(DEFAULT_PATH)

    @property
    def task(self) -> Task:
        return self.target.task

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The model's inputs in request order (ids, timestamps and the target are never inputs)."""
        return tuple(self.columns)

    @property
    def numeric(self) -> dict[str, Column]:
        return {name: column for name, column in self.columns.items() if column.is_numeric}

    @property
    def categorical(self) -> dict[str, Column]:
        return {name: column for name, column in self.columns.items() if not column.is_numeric}

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The id and timestamp columns the contract names (carried through to predictions)."""
        return tuple(name for name in (self.id_column, self.timestamp_column) if name)

    def to_dict(self) -> dict[str, Any]:
        """The contract as plain data (the model card, the service's /version, metadata.json)."""
        return {
            "name": self.name,
            "task": self.task,
            "target": self.target.column,
            "classes": list(self.target.classes),
            "inputs": {
                name: {
                    key: value
                    for key, value in {
                        "dtype": column.dtype,
                        "nullable": column.nullable,
                        "min": column.minimum,
                        "max": column.maximum,
                        "categories": list(column.categories) or None,
                        "description": column.description,
                    }.items()
                    if value is not None
                }
                for name, column in self.columns.items()
            },
            "derived": {name: spec.expression.text for name, spec in self.derived.items()},
            "rules": {name: spec.check.text for name, spec in self.rules.items()},
        }


def contract_path() -> Path:
    return Path(os.environ.get(PATH_VARIABLE) or DEFAULT_PATH)


def load_contract(path: Path | None = None) -> Contract:
    """The contract at `path` (default: $CONTRACT_PATH or ./contract.yaml), read once per path."""
    return _load(str((path or contract_path()).resolve()))


@lru_cache(maxsize=8)
def _load(path: str) -> Contract:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(
            f"{path} does not exist: run from the project root, set {PATH_VARIABLE}, or draft one with "
            "`make contract DATA=<file> TARGET=<column>`"
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ContractError(f"{path} is not valid YAML: {error}") from None
    return parse_contract(document, source=path)


def parse_contract(document: Any, source: str = str(DEFAULT_PATH)) -> Contract:
    """Check and type a contract mapping; raise ContractError naming the key that is wrong."""
    where = _Where(source)
    mapping = where.mapping(document, "the contract")
    columns_section = where.mapping(mapping.get("columns"), "columns")
    if not columns_section:
        raise ContractError(f"{source}: columns must list at least one model input")
    columns = {str(name): _column(str(name), spec, where) for name, spec in columns_section.items()}
    target = _target(where.mapping(mapping.get("target"), "target"), where)
    id_column, id_pattern = _optional_column(mapping, "id", where)
    timestamp_column, _ = _optional_column(mapping, "timestamp", where)

    special = [name for name in (target.column, id_column, timestamp_column) if name]
    if len(set(special)) != len(special):
        raise ContractError(f"{source}: the target, id and timestamp must be different columns")
    for name in special:
        if name in columns:
            raise ContractError(
                f"{source}: {name!r} is the target, id or timestamp, so it cannot be in columns"
            )

    known = set(columns)
    derived: dict[str, Derived] = {}
    for name, spec in where.mapping(mapping.get("derived") or {}, "derived").items():
        name = str(name)
        spec = where.mapping(spec, f"derived.{name}")
        if name in known or name in special:
            raise ContractError(f"{source}: derived.{name} has the name of a column")
        _check_feature_name(name, f"derived.{name}", where)
        expression = _expression(spec, "expression", known, f"derived.{name}", where)
        derived[name] = Derived(name, expression, str(spec.get("description", "")))
        known.add(name)
    rules: dict[str, Rule] = {}
    for name, spec in where.mapping(mapping.get("rules") or {}, "rules").items():
        spec = where.mapping(spec, f"rules.{name}")
        check = _expression(spec, "check", known | {target.column}, f"rules.{name}", where)
        rules[str(name)] = Rule(str(name), check, str(spec.get("description", "")))
    return Contract(
        name=str(mapping.get("name") or "data"),
        description=str(mapping.get("description") or ""),
        columns=columns,
        target=target,
        id_column=id_column,
        id_pattern=id_pattern,
        timestamp_column=timestamp_column,
        derived=derived,
        rules=rules,
        source=source,
    )


@dataclass(frozen=True)
class _Where:
    source: str

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if value is None:
            raise ContractError(f"{self.source}: {key} is missing")
        if not isinstance(value, dict):
            raise ContractError(f"{self.source}: {key} must be a mapping, not {type(value).__name__}")
        return value

    def number(self, value: Any, key: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ContractError(f"{self.source}: {key} must be a number, not {value!r}")
        return float(value)


def _check_feature_name(name: str, key: str, where: _Where) -> None:
    if not name.strip() or any(mark in name for mark in _RESERVED_IN_NAMES) or name.endswith(_MISSING_SUFFIX):
        raise ContractError(
            f"{where.source}: {key}: {name!r} cannot be a feature name (empty, contains '=' or ends in "
            f"{_MISSING_SUFFIX!r}, which the feature matrix uses)"
        )
    if name in _RESERVED_NAMES:
        raise ContractError(
            f"{where.source}: {key}: {name!r} is a key of the service's batch requests; rename the column"
        )


def _column(name: str, spec: Any, where: _Where) -> Column:
    key = f"columns.{name}"
    spec = where.mapping(spec, key)
    _check_feature_name(name, key, where)
    dtype = spec.get("dtype")
    if dtype not in DTYPES:
        raise ContractError(f"{where.source}: {key}.dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    nullable = spec.get("nullable", False)
    if not isinstance(nullable, bool):
        raise ContractError(f"{where.source}: {key}.nullable must be true or false")
    description = str(spec.get("description", ""))
    if dtype == "category":
        categories = spec.get("categories")
        if not isinstance(categories, list) or not categories:
            raise ContractError(f"{where.source}: {key}.categories must be a non-empty list")
        labels = tuple(str(category) for category in categories)
        if len(set(labels)) != len(labels):
            raise ContractError(f"{where.source}: {key}.categories has duplicates")
        return Column(name, "category", description, nullable, categories=labels)
    minimum = where.number(spec.get("min"), f"{key}.min")
    maximum = where.number(spec.get("max"), f"{key}.max")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ContractError(f"{where.source}: {key}.min is larger than {key}.max")
    return Column(name, dtype, description, nullable, minimum, maximum)


def _target(spec: dict[str, Any], where: _Where) -> Target:
    column = spec.get("column")
    if not isinstance(column, str) or not column:
        raise ContractError(f"{where.source}: target.column must name the column the model predicts")
    task = spec.get("task")
    if task not in TASKS:
        raise ContractError(f"{where.source}: target.task must be one of {', '.join(TASKS)}, not {task!r}")
    description = str(spec.get("description", ""))
    if task == "regression":
        minimum = where.number(spec.get("min"), "target.min")
        maximum = where.number(spec.get("max"), "target.max")
        return Target(column, "regression", description, minimum=minimum, maximum=maximum)
    classes = spec.get("classes")
    if not isinstance(classes, list) or any(isinstance(label, bool) for label in classes):
        raise ContractError(f"{where.source}: target.classes must list the labels (numbers or strings)")
    if not all(isinstance(label, int) for label in classes) and not all(
        isinstance(label, str) for label in classes
    ):
        raise ContractError(f"{where.source}: target.classes must be all integers or all strings")
    if len(set(classes)) != len(classes):
        raise ContractError(f"{where.source}: target.classes has duplicates")
    wanted = "exactly 2" if task == "binary" else "at least 3"
    if (task == "binary" and len(classes) != 2) or (task == "multiclass" and len(classes) < 3):
        raise ContractError(f"{where.source}: a {task} target needs {wanted} classes, got {len(classes)}")
    return Target(column, task, description, classes=tuple(classes))


def _optional_column(mapping: dict[str, Any], key: str, where: _Where) -> tuple[str | None, str | None]:
    section = mapping.get(key)
    if section is None:
        return None, None
    section = where.mapping(section, key)
    column = section.get("column")
    if not isinstance(column, str) or not column:
        raise ContractError(f"{where.source}: {key}.column must name a column (or leave {key} out)")
    pattern = section.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as error:
            raise ContractError(
                f"{where.source}: {key}.pattern is not a regular expression: {error}"
            ) from None
        pattern = str(pattern)
    return column, pattern


def _expression(spec: dict[str, Any], key: str, known: set[str], where_key: str, where: _Where) -> Expression:
    text = spec.get(key)
    if not isinstance(text, str) or not text.strip():
        raise ContractError(f"{where.source}: {where_key}.{key} must be an expression")
    try:
        return compile_expression(text, frozenset(known), f"{where.source}: {where_key}")
    except ExpressionError as error:
        raise ContractError(str(error)) from None
