"""The model matrix: one code path from contract inputs to numbers, for training, batch scoring and serving.

Built from the contract alone plus the imputation values learned at training (stored in metadata.json), so a
new dataset needs no change here. Layout of a row, in this order:

    numeric inputs         the value, or the training median where a nullable input is missing
    <col>__missing         1.0 where a nullable numeric input was missing (the model can learn from absence)
    derived features       contract.yaml `derived` expressions on the imputed inputs (non-finite -> 0)
    <col>=<category>       one-hot of each categorical input; nullable ones add <col>=<missing>

A missing value of a non-nullable input, an unknown category or a non-numeric number is a ValueError that
names the column (the service and batch scoring check inputs before they get here; this is the last line).

A request is a few rows, where numpy's per-call overhead (a microsecond or two per operation, dozens of
operations) would dominate, so up to SMALL_BATCH_ROWS rows are built with plain Python values (the derived
features with the row evaluator of each expression) and anything larger, or anything the row path cannot take,
goes column-wise, which gives the same numbers and raises the errors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from ..contract import Contract

MISSING_CATEGORY = "<missing>"
MISSING_SUFFIX = "__missing"
SMALL_BATCH_ROWS = 8


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class FeatureSpace:
    """The feature matrix of a contract, with the imputation values of one trained model."""

    def __init__(self, contract: Contract, imputation: Mapping[str, float | None]) -> None:
        self.contract = contract
        self.numeric = tuple(contract.numeric)
        self.nullable_numeric = tuple(name for name, column in contract.numeric.items() if column.nullable)
        self.imputation = {name: float(imputation.get(name) or 0.0) for name in self.nullable_numeric}
        self.derived = tuple(contract.derived.values())
        self._category_index: dict[str, dict[str, int]] = {}
        self._missing_slot: dict[str, int | None] = {}
        self._offset: dict[str, int] = {}
        names = [*self.numeric, *(f"{name}{MISSING_SUFFIX}" for name in self.nullable_numeric)]
        names += [spec.name for spec in self.derived]
        for name, column in contract.categorical.items():
            self._offset[name] = len(names)
            self._category_index[name] = {category: i for i, category in enumerate(column.categories)}
            names += [f"{name}={category}" for category in column.categories]
            self._missing_slot[name] = len(column.categories) if column.nullable else None
            if column.nullable:
                names.append(f"{name}={MISSING_CATEGORY}")
        self.names: tuple[str, ...] = tuple(names)

    @staticmethod
    def learn_imputation(contract: Contract, columns: Mapping[str, Sequence[Any]]) -> dict[str, float | None]:
        """Median of every numeric input on the training data (None for an input that is never present)."""
        imputation: dict[str, float | None] = {}
        for name in contract.numeric:
            values = np.asarray(columns[name], dtype=np.float64)
            present = values[np.isfinite(values)]
            imputation[name] = round(float(np.median(present)), 6) if present.size else None
        return imputation

    def records_to_columns(self, records: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """Records (request bodies, JSON lines) as the columns `matrix` takes; other keys are ignored."""
        columns: dict[str, list[Any]] = {name: [] for name in self.contract.columns}
        required = [name for name, column in self.contract.columns.items() if not column.nullable]
        for position, record in enumerate(records):
            for name in required:
                if name not in record:
                    raise ValueError(f"record {position} is missing the field {name!r}")
            for name, values in columns.items():
                values.append(record.get(name))
        return columns

    def matrix(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """The model matrix (float64, shape (rows, len(names))) of columns of raw model inputs."""
        rows = self.row_count(columns)
        if rows <= SMALL_BATCH_ROWS:
            small = self._row_matrix(columns, rows)
            if small is not None:
                return small
        return self._column_matrix(columns, rows)

    def _row_matrix(self, columns: Mapping[str, Sequence[Any]], rows: int) -> np.ndarray | None:
        """Row by row in plain Python; None when a value is not plainly valid (the column path says why)."""
        width = len(self.names)
        derived_start = len(self.numeric) + len(self.nullable_numeric)
        matrix = []
        for i in range(rows):
            row = [0.0] * width
            values: dict[str, Any] = {}
            for position, name in enumerate(self.numeric):
                value = columns[name][i]
                if value is None or value != value:
                    if name not in self.imputation:
                        return None
                    value = self.imputation[name]
                    row[len(self.numeric) + self.nullable_numeric.index(name)] = 1.0
                elif isinstance(value, bool) or not isinstance(value, int | float) or math.isinf(value):
                    return None
                value = float(value)
                row[position] = value
                values[name] = value
            for name, index in self._category_index.items():
                label = columns[name][i]
                if label is None or (isinstance(label, float) and label != label):
                    slot = self._missing_slot[name]
                    label = None
                else:
                    slot = index.get(label) if isinstance(label, str) else None
                if slot is None:
                    return None
                row[self._offset[name] + slot] = 1.0
                values[name] = label
            for offset, spec in enumerate(self.derived):
                try:
                    value = float(spec.expression.evaluate_row(values))
                except (TypeError, ValueError, ZeroDivisionError, OverflowError):
                    return None
                value = value if math.isfinite(value) else 0.0
                row[derived_start + offset] = value
                values[spec.name] = value
            matrix.append(row)
        return np.array(matrix, dtype=np.float64)

    def _column_matrix(self, columns: Mapping[str, Sequence[Any]], rows: int) -> np.ndarray:
        matrix = np.zeros((rows, len(self.names)), dtype=np.float64)
        namespace: dict[str, Any] = {}
        for position, name in enumerate(self.numeric):
            values = self._numeric(columns, name)
            missing = np.isnan(values)
            if missing.any():
                if name not in self.imputation:
                    raise ValueError(
                        f"column {name!r} has missing values but the contract says it is not nullable"
                    )
                values = np.where(missing, self.imputation[name], values)
            matrix[:, position] = values
            namespace[name] = values
            if name in self.imputation:
                matrix[:, len(self.numeric) + self.nullable_numeric.index(name)] = missing
        slots: dict[str, np.ndarray] = {}
        for name in self._category_index:
            namespace[name], slots[name] = self._categories(columns, name)
        derived_start = len(self.numeric) + len(self.nullable_numeric)
        for offset, spec in enumerate(self.derived):
            values = np.broadcast_to(
                np.asarray(spec.expression.evaluate(namespace), dtype=np.float64), (rows,)
            )
            values = np.where(np.isfinite(values), values, 0.0)
            matrix[:, derived_start + offset] = values
            namespace[spec.name] = values
        for name, positions in slots.items():
            matrix[np.arange(rows), self._offset[name] + positions] = 1.0
        return matrix

    def row_count(self, columns: Mapping[str, Sequence[Any]]) -> int:
        lengths = set()
        for name in self.contract.columns:
            if name not in columns:
                raise ValueError(f"missing column {name!r}")
            lengths.add(len(columns[name]))
        if len(lengths) > 1:
            raise ValueError("all columns must have the same length")
        return lengths.pop()

    @staticmethod
    def _numeric(columns: Mapping[str, Sequence[Any]], name: str) -> np.ndarray:
        try:
            values = np.asarray(columns[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"column {name!r} must be numeric") from None
        if values.ndim != 1:
            raise ValueError(f"column {name!r} must be one-dimensional")
        if np.isinf(values).any():
            raise ValueError(f"column {name!r} has infinite values")
        return values

    def _categories(self, columns: Mapping[str, Sequence[Any]], name: str) -> tuple[np.ndarray, np.ndarray]:
        """The labels of a categorical input (missing as None) and the one-hot slot of each row.

        The slots come from one dict lookup per value, iterated in C (map + np.fromiter); only the values
        that lookup misses (NaN, a category the contract does not list, a missing non-nullable value, an
        unhashable or non-string value) are looked at one by one, to place them or to say what is wrong.
        """
        raw = columns[name]
        labels = np.empty(len(raw), dtype=object)
        labels[:] = list(raw)
        index = self._category_index[name]
        missing_slot = self._missing_slot[name]
        lookup: dict[Any, int] = {**index, None: -1 if missing_slot is None else missing_slot}
        try:
            slots = np.fromiter(map(lookup.get, labels, repeat(-1)), dtype=np.intp, count=len(labels))
        except TypeError:  # an unhashable value: the slow path below names it
            slots = np.full(len(labels), -1, dtype=np.intp)
        for row in np.flatnonzero(slots < 0):
            value = labels[row]
            if _is_missing(value):
                if missing_slot is None:
                    raise ValueError(
                        f"column {name!r} has missing values but the contract says it is not nullable"
                    )
                labels[row], slots[row] = None, missing_slot
            else:
                found = index.get(value) if isinstance(value, str) else None
                if found is None:
                    raise ValueError(
                        f"column {name!r} has unknown category {value!r} (allowed: {', '.join(index)})"
                    )
                slots[row] = found
        return labels, slots
