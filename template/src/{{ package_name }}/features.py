"""Model features: one code path for training, evaluation, batch scoring and the online service.

numpy only (no pandas) so the serving image stays small. A request is a few records, where numpy's per-call
overhead (~20-40 us for the column-wise path) would dominate, so `build_matrix` builds up to SMALL_BATCH_ROWS
rows with plain Python floats (~2 us a row) and falls back to the column-wise path, which gives the same
numbers and raises the errors, for larger inputs or anything the row-wise path cannot take.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .contract import CATEGORICAL, FEATURE_COLUMNS, NUMERIC

NUMERIC_FEATURES: tuple[str, ...] = tuple(NUMERIC)
DERIVED_FEATURES: tuple[str, ...] = (
    "charges_ratio",  # total billed / (monthly bill x tenure): < 1 after a price rise, > 1 after a discount
    "tickets_per_year",  # support load normalised by tenure
)
ONE_HOT_FEATURES: tuple[str, ...] = tuple(
    f"{field.name}={category}" for field in CATEGORICAL.values() for category in field.categories
)
FEATURE_NAMES: tuple[str, ...] = NUMERIC_FEATURES + DERIVED_FEATURES + ONE_HOT_FEATURES

_CATEGORY_INDEX: dict[str, dict[str, int]] = {
    name: {category: i for i, category in enumerate(field.categories)} for name, field in CATEGORICAL.items()
}
_NUMERIC_POSITION: dict[str, int] = {name: i for i, name in enumerate(NUMERIC_FEATURES)}
_DERIVED_INPUTS = ("tenure_months", "monthly_charges", "total_charges", "support_tickets")
_ONE_HOT_OFFSET: dict[str, int] = {}
_offset = len(NUMERIC_FEATURES) + len(DERIVED_FEATURES)
for _name, _field in CATEGORICAL.items():
    _ONE_HOT_OFFSET[_name] = _offset
    _offset += len(_field.categories)


def records_to_columns(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Turn records (request bodies, JSON lines) into the column mapping `build_matrix` takes.

    Keys other than the model inputs (ids, timestamps, the target) are ignored.
    """
    columns: dict[str, list[Any]] = {name: [] for name in FEATURE_COLUMNS}
    for position, record in enumerate(records):
        for name in FEATURE_COLUMNS:
            try:
                columns[name].append(record[name])
            except KeyError:
                raise ValueError(f"record {position} is missing the field {name!r}") from None
    return columns


SMALL_BATCH_ROWS = 8


def _numeric(columns: Mapping[str, Sequence[Any]], name: str) -> np.ndarray:
    try:
        values = np.asarray(columns[name], dtype=np.float64)
    except KeyError:
        raise ValueError(f"missing column {name!r}") from None
    except (TypeError, ValueError):
        raise ValueError(f"column {name!r} must be numeric") from None
    if not np.isfinite(values).all():
        raise ValueError(f"column {name!r} has missing or non-finite values")
    return values


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, and 0 where the denominator is 0 (a new customer has no history yet)."""
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def build_matrix(columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
    """The model matrix (float64, shape (n, len(FEATURE_NAMES))) for columns of raw model inputs.

    Raises ValueError naming the column when a column is missing, not numeric, or holds an unknown category.
    """
    small = _small_matrix(columns)
    return small if small is not None else _column_matrix(columns)


def _small_matrix(columns: Mapping[str, Sequence[Any]]) -> np.ndarray | None:
    """Row by row in plain Python for a few rows; None when the input is larger or not plainly valid."""
    try:
        n_rows = len(columns["tenure_months"])
        if not 0 < n_rows <= SMALL_BATCH_ROWS or any(
            isinstance(columns[name], str | bytes) or len(columns[name]) != n_rows for name in FEATURE_COLUMNS
        ):
            return None
        numeric = [[float(value) for value in columns[name]] for name in NUMERIC_FEATURES]
        one_hot = [
            (_ONE_HOT_OFFSET[name], [index[value] for value in columns[name]])
            for name, index in _CATEGORY_INDEX.items()
        ]
    except (KeyError, TypeError, ValueError):
        return None  # the column-wise path raises the error that names the column
    rows = []
    for i in range(n_rows):
        values = [column[i] for column in numeric]
        if not all(map(math.isfinite, values)):
            return None
        tenure, monthly, total, tickets = (values[_NUMERIC_POSITION[name]] for name in _DERIVED_INPUTS)
        billed = monthly * tenure
        row = [*values, total / billed if billed > 0 else 0.0, tickets * 12.0 / max(tenure, 1.0)]
        row.extend([0.0] * len(ONE_HOT_FEATURES))
        for offset, positions in one_hot:
            row[offset + positions[i]] = 1.0
        rows.append(row)
    return np.array(rows, dtype=np.float64)


def _column_matrix(columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
    numeric = {name: _numeric(columns, name) for name in NUMERIC_FEATURES}
    n_rows = numeric["tenure_months"].shape[0]
    if any(values.shape != (n_rows,) for values in numeric.values()):
        raise ValueError("all columns must be one-dimensional and of the same length")

    matrix = np.zeros((n_rows, len(FEATURE_NAMES)), dtype=np.float64)
    for position, values in enumerate(numeric.values()):
        matrix[:, position] = values
    tenure, tickets = numeric["tenure_months"], numeric["support_tickets"]
    derived = len(NUMERIC_FEATURES)
    matrix[:, derived] = _safe_divide(numeric["total_charges"], numeric["monthly_charges"] * tenure)
    matrix[:, derived + 1] = tickets * 12.0 / np.maximum(tenure, 1.0)

    for name, index in _CATEGORY_INDEX.items():
        try:
            labels = columns[name]
        except KeyError:
            raise ValueError(f"missing column {name!r}") from None
        if len(labels) != n_rows:
            raise ValueError("all columns must have the same length")
        try:
            positions = [index[value] for value in labels]
        except (KeyError, TypeError):
            unknown = next(value for value in labels if not isinstance(value, str) or value not in index)
            allowed = ", ".join(index)
            raise ValueError(
                f"column {name!r} has unknown category {unknown!r} (allowed: {allowed})"
            ) from None
        matrix[np.arange(n_rows), _ONE_HOT_OFFSET[name] + np.asarray(positions, dtype=np.intp)] = 1.0
    return matrix
