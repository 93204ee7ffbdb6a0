"""The small expression language of contract.yaml: derived features and business rules.

An expression is a safe subset of Python, parsed with `ast` and never passed to `eval`: column names, numbers,
strings, arithmetic (+ - * / // % **), comparisons (chains allowed), `and`/`or`/`not`, `a if cond else b`, and
calls of the functions in FUNCTIONS. It is evaluated column-wise on numpy arrays, so one expression serves
training (thousands of rows) and the online service (one row) alike.

Division by zero gives 0 (a new customer has no history to divide by); `isnull(x)` is true where x is missing.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Values = Any  # a numpy array (or a scalar that broadcasts against the arrays)


class ExpressionError(ValueError):
    """An expression of the contract is not valid in the expression language."""


def _divide(numerator: Values, denominator: Values) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    shape = np.broadcast_shapes(numerator.shape, denominator.shape)
    out = np.zeros(shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _floor_divide(numerator: Values, denominator: Values) -> np.ndarray:
    return np.floor(_divide(numerator, denominator))


def _isnull(values: Values) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind == "f":
        return np.isnan(array)
    if array.dtype.kind == "O":
        return np.array([value is None or value != value for value in array.ravel()]).reshape(array.shape)
    return np.zeros(array.shape, dtype=bool)


FUNCTIONS: dict[str, Callable[..., Values]] = {
    "abs": np.abs,
    "log": np.log,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "minimum": np.minimum,
    "maximum": np.maximum,
    "clip": np.clip,
    "where": np.where,
    "isnull": _isnull,
}

_BINARY: dict[type[ast.operator], Callable[[Values, Values], Values]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
    ast.FloorDiv: _floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Values, Values], Values]] = {
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
}

Evaluator = Callable[[Mapping[str, Values]], Values]


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, the names it reads, and a function of a column mapping."""

    text: str
    names: frozenset[str]
    evaluate: Evaluator


def compile_expression(text: str, known_names: set[str] | frozenset[str], where: str) -> Expression:
    """Parse `text`; raise ExpressionError (prefixed with `where`) for bad syntax or unknown names."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"{where}: {text!r} is not a valid expression ({error.msg})") from None
    names: set[str] = set()
    evaluate = _compile(tree.body, known_names, names, where)
    return Expression(text=text, names=frozenset(names), evaluate=evaluate)


def _compile(node: ast.AST, known: set[str] | frozenset[str], names: set[str], where: str) -> Evaluator:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float | str)
        and not isinstance(node.value, bool)
    ):
        value = node.value
        return lambda _: value
    if isinstance(node, ast.Name):
        if node.id not in known:
            raise ExpressionError(
                f"{where}: unknown name {node.id!r} "
                f"(columns and derived features: {', '.join(sorted(known))})"
            )
        name = node.id
        names.add(name)
        return lambda columns: columns[name]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        function = _BINARY[type(node.op)]
        left, right = _compile(node.left, known, names, where), _compile(node.right, known, names, where)
        return lambda columns: function(left(columns), right(columns))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
        operand = _compile(node.operand, known, names, where)
        if isinstance(node.op, ast.Not):
            return lambda columns: np.logical_not(operand(columns))
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return lambda columns: sign * np.asarray(operand(columns), dtype=np.float64)
    if isinstance(node, ast.BoolOp):
        parts = [_compile(value, known, names, where) for value in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

        def boolean(columns: Mapping[str, Values]) -> Values:
            result = parts[0](columns)
            for part in parts[1:]:
                result = combine(result, part(columns))
            return result

        return boolean
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        operands = [_compile(item, known, names, where) for item in (node.left, *node.comparators)]
        comparisons = [_COMPARE[type(op)] for op in node.ops]

        def compare(columns: Mapping[str, Values]) -> Values:
            values = [operand(columns) for operand in operands]
            result = comparisons[0](values[0], values[1])
            for position, comparison in enumerate(comparisons[1:], start=1):
                result = np.logical_and(result, comparison(values[position], values[position + 1]))
            return result

        return compare
    if isinstance(node, ast.IfExp):
        test = _compile(node.test, known, names, where)
        body, orelse = _compile(node.body, known, names, where), _compile(node.orelse, known, names, where)
        return lambda columns: np.where(test(columns), body(columns), orelse(columns))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id not in FUNCTIONS:
            raise ExpressionError(
                f"{where}: unknown function {node.func.id!r} (available: {', '.join(sorted(FUNCTIONS))})"
            )
        function = FUNCTIONS[node.func.id]
        arguments = [_compile(argument, known, names, where) for argument in node.args]
        return lambda columns: function(*(argument(columns) for argument in arguments))
    raise ExpressionError(f"{where}: {ast.unparse(node)!r} is not allowed in a contract expression")
