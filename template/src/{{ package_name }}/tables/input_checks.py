"""Contract checks of the model inputs of a table, with pandas only (batch scoring has no training deps).

Training data goes through the full pandera schema of stages/validate.py; this checks what scoring needs:
every model input present, of the right type, in range, of a known category, and not missing unless the
contract says it may be.
"""

from __future__ import annotations

import pandas as pd

from ..contract import Column, Contract, load_contract
from .quality_report import QualityReport, RuleFailure, failure_of


def _numeric_failures(frame: pd.DataFrame, column: Column, ids: pd.Series | None) -> list[RuleFailure | None]:
    raw = frame[column.name]
    values = pd.to_numeric(raw, errors="coerce")
    checks = [(raw.notna() & values.isna(), "numeric")]
    if not column.nullable:
        checks.append((raw.isna(), "not_nullable"))
    if column.minimum is not None:
        checks.append((values < column.minimum, "in_range"))
    if column.maximum is not None:
        checks.append((values > column.maximum, "in_range"))
    if column.dtype == "int":
        checks.append((values.notna() & (values != values.round()), "integer"))
    merged: dict[str, pd.Series] = {}
    for bad, rule in checks:
        merged[rule] = merged[rule] | bad if rule in merged else bad
    return [failure_of(frame, column.name, rule, bad, ids) for rule, bad in merged.items()]


def check_inputs(
    frame: pd.DataFrame, source: str = "input", contract: Contract | None = None
) -> QualityReport:
    """Every contract rule the model inputs of `frame` break (row indices are positions in `frame`)."""
    contract = contract or load_contract()
    frame = frame.reset_index(drop=True)
    ids = frame[contract.id_column].astype(str) if contract.id_column in frame.columns else None
    failures: list[RuleFailure | None] = []
    for name, column in contract.columns.items():
        if name not in frame.columns:
            failures.append(RuleFailure("column_in_dataframe", name, len(frame)))
        elif column.is_numeric:
            failures.extend(_numeric_failures(frame, column, ids))
        else:
            raw = frame[name]
            if not column.nullable:
                failures.append(failure_of(frame, name, "not_nullable", raw.isna(), ids))
            unknown = raw.notna() & ~raw.astype(str).isin(column.categories)
            failures.append(failure_of(frame, name, "allowed_categories", unknown, ids))
    return QualityReport(source, len(frame), [failure for failure in failures if failure is not None])
