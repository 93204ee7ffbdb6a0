"""The small expression language of contract.yaml: derived features and business rules.

An expression is a safe subset of Python, parsed with `ast` and never passed to `eval`: column names, numbers,
strings, arithmetic (+ - * / // % **), comparisons (chains allowed), `and`/`or`/`not`, `a if cond else b`, and
calls of the functions in FUNCTIONS. Each expression is compiled twice, with the same meaning: column-wise on
numpy arrays (training, batch, validation) and on plain Python values of one row (the online service scores a
few rows, where numpy's per-call overhead would dominate).

Division by zero gives 0 (a new customer has no history to divide by); `isnull(x)` is true where x is missing.
A math error (log of a negative number) gives NaN.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

FUNCTIONS = ("abs", "clip", "exp", "isnull", "log", "log1p", "maximum", "minimum", "sqrt", "where")


class ExpressionError(ValueError):
    """An expression of the contract is not valid in the expression language."""


# --- column-wise: numpy arrays ------------------------------------------------------------------------------
def _divide(numerator: Any, denominator: Any) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _isnull(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind == "f":
        missing: np.ndarray = np.isnan(array)  # numpy's ufuncs are typed as returning Any
        return missing
    if array.dtype.kind == "O":
        return np.array([value is None or value != value for value in array.ravel()]).reshape(array.shape)
    return np.zeros(array.shape, dtype=bool)


# --- one row: Python values ---------------------------------------------------------------------------------
def _scalar_divide(numerator: Any, denominator: Any) -> float:
    return numerator / denominator if denominator != 0 else 0.0


def _scalar_floor_divide(numerator: Any, denominator: Any) -> float:
    return float(math.floor(numerator / denominator)) if denominator != 0 else 0.0


def _scalar_power(base: Any, exponent: Any) -> float:
    try:
        result = float(base) ** exponent
    except (OverflowError, ZeroDivisionError):
        return math.nan
    return result if isinstance(result, float) else math.nan  # a complex result: as numpy, NaN


def _math(function: Callable[[float], float]) -> Callable[[Any], float]:
    def safe(value: Any) -> float:
        try:
            return function(value)
        except (ValueError, OverflowError):  # log(-1), sqrt(-1); exp(1000) is inf in numpy
            return math.inf if function is math.exp else math.nan

    return safe


def _scalar_isnull(value: Any) -> bool:
    return value is None or value != value


@dataclass(frozen=True)
class _Operations:
    binary: dict[type[ast.operator], Callable[[Any, Any], Any]]
    compare: dict[type[ast.cmpop], Callable[[Any, Any], Any]]
    logical_and: Callable[[Any, Any], Any]
    logical_or: Callable[[Any, Any], Any]
    logical_not: Callable[[Any], Any]
    negative: Callable[[Any], Any]
    where: Callable[[Any, Any, Any], Any]
    functions: dict[str, Callable[..., Any]]


_VECTOR = _Operations(
    binary={
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: _divide,
        ast.FloorDiv: lambda a, b: np.floor(_divide(a, b)),
        ast.Mod: np.mod,
        ast.Pow: np.power,
    },
    compare={
        ast.Eq: np.equal,
        ast.NotEq: np.not_equal,
        ast.Lt: np.less,
        ast.LtE: np.less_equal,
        ast.Gt: np.greater,
        ast.GtE: np.greater_equal,
    },
    logical_and=np.logical_and,
    logical_or=np.logical_or,
    logical_not=np.logical_not,
    negative=lambda value: -np.asarray(value, dtype=np.float64),
    where=np.where,
    functions={
        "abs": np.abs,
        "clip": np.clip,
        "exp": np.exp,
        "isnull": _isnull,
        "log": np.log,
        "log1p": np.log1p,
        "maximum": np.maximum,
        "minimum": np.minimum,
        "sqrt": np.sqrt,
        "where": np.where,
    },
)
_SCALAR = _Operations(
    binary={
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: _scalar_divide,
        ast.FloorDiv: _scalar_floor_divide,
        ast.Mod: lambda a, b: math.nan if b == 0 else a % b,
        ast.Pow: _scalar_power,
    },
    compare={
        ast.Eq: operator.eq,
        ast.NotEq: operator.ne,
        ast.Lt: operator.lt,
        ast.LtE: operator.le,
        ast.Gt: operator.gt,
        ast.GtE: operator.ge,
    },
    logical_and=lambda a, b: bool(a) and bool(b),
    logical_or=lambda a, b: bool(a) or bool(b),
    logical_not=operator.not_,
    negative=lambda value: -float(value),
    where=lambda condition, a, b: a if condition else b,
    functions={
        "abs": abs,
        "clip": lambda value, low, high: min(max(value, low), high),
        "exp": _math(math.exp),
        "isnull": _scalar_isnull,
        "log": _math(math.log),
        "log1p": _math(math.log1p),
        "maximum": max,
        "minimum": min,
        "sqrt": _math(math.sqrt),
        "where": lambda condition, a, b: a if condition else b,
    },
)

Evaluator = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, the names it reads, and its two evaluators.

    evaluate(columns) takes numpy arrays by name; evaluate_row(values) takes the Python values of one row.
    """

    text: str
    names: frozenset[str]
    evaluate: Evaluator
    evaluate_row: Evaluator


def compile_expression(text: str, known_names: set[str] | frozenset[str], where: str) -> Expression:
    """Parse `text`; raise ExpressionError (prefixed with `where`) for bad syntax or unknown names."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"{where}: {text!r} is not a valid expression ({error.msg})") from None
    names: set[str] = set()
    vector = _Compiler(known_names, names, where, _VECTOR).compile(tree.body)
    scalar = _Compiler(known_names, names, where, _SCALAR).compile(tree.body)
    return Expression(text=text, names=frozenset(names), evaluate=vector, evaluate_row=scalar)


@dataclass
class _Compiler:
    known: set[str] | frozenset[str]
    names: set[str]
    where: str
    ops: _Operations

    def compile(self, node: ast.AST) -> Evaluator:
        ops = self.ops
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
            if isinstance(node.value, bool):
                raise self._refuse(node)
            value = node.value
            return lambda _: value
        if isinstance(node, ast.Name):
            if node.id not in self.known:
                raise ExpressionError(
                    f"{self.where}: unknown name {node.id!r} "
                    f"(columns and derived features: {', '.join(sorted(self.known))})"
                )
            name = node.id
            self.names.add(name)
            return lambda columns: columns[name]
        if isinstance(node, ast.BinOp) and type(node.op) in ops.binary:
            function = ops.binary[type(node.op)]
            left, right = self.compile(node.left), self.compile(node.right)
            return lambda columns: function(left(columns), right(columns))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            operand = self.compile(node.operand)
            if isinstance(node.op, ast.Not):
                return lambda columns: ops.logical_not(operand(columns))
            if isinstance(node.op, ast.UAdd):
                return operand
            return lambda columns: ops.negative(operand(columns))
        if isinstance(node, ast.BoolOp):
            parts = [self.compile(value) for value in node.values]
            combine = ops.logical_and if isinstance(node.op, ast.And) else ops.logical_or

            def boolean(columns: Mapping[str, Any]) -> Any:
                result = parts[0](columns)
                for part in parts[1:]:
                    result = combine(result, part(columns))
                return result

            return boolean
        if isinstance(node, ast.Compare) and all(type(op) in ops.compare for op in node.ops):
            operands = [self.compile(item) for item in (node.left, *node.comparators)]
            comparisons = [ops.compare[type(op)] for op in node.ops]

            def compare(columns: Mapping[str, Any]) -> Any:
                values = [operand(columns) for operand in operands]
                result = comparisons[0](values[0], values[1])
                for position, comparison in enumerate(comparisons[1:], start=1):
                    result = ops.logical_and(result, comparison(values[position], values[position + 1]))
                return result

            return compare
        if isinstance(node, ast.IfExp):
            test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
            return lambda columns: ops.where(test(columns), body(columns), orelse(columns))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            if node.func.id not in ops.functions:
                raise ExpressionError(
                    f"{self.where}: unknown function {node.func.id!r} (available: {', '.join(FUNCTIONS)})"
                )
            function = ops.functions[node.func.id]
            arguments = [self.compile(argument) for argument in node.args]
            return lambda columns: function(*(argument(columns) for argument in arguments))
        raise self._refuse(node)

    def _refuse(self, node: ast.AST) -> ExpressionError:
        return ExpressionError(f"{self.where}: {ast.unparse(node)!r} is not allowed in a contract expression")
