"""Contract checks of the model inputs of a table, with pandas only (batch scoring has no training deps).

Training data goes through the full pandera schema of stages/validate.py; this checks what scoring needs:
every model input present, of the right type, in range, of a known category, and not missing unless the
contract says it may be. `broken_rules` gives each rule's failing rows as a mask, so batch scoring can set
aside exactly the rows that break the contract; `check_inputs` reports them.
"""

from __future__ import annotations

import pandas as pd

from ..contract import Column, Contract, load_contract
from .quality_report import QualityReport, RuleFailure, failure_of

MISSING_COLUMN = "column_in_dataframe"


def _numeric_rules(raw: pd.Series, values: pd.Series, column: Column) -> dict[str, pd.Series]:
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
    return merged


def _categorical_rules(raw: pd.Series, column: Column) -> dict[str, pd.Series]:
    rules = {"not_nullable": raw.isna()} if not column.nullable else {}
    rules["allowed_categories"] = raw.notna() & ~raw.astype(str).isin(column.categories)
    return rules


def with_numbers(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """A copy of `frame` whose numeric model inputs are numbers (a value that does not parse becomes NaN).

    Text such as "29.85" in a CSV or a string column parses here once; broken_rules then tells the values
    that did not parse from those that were missing, and scoring takes the numbers as they are.
    """
    numbers = frame.copy(deep=False)
    for name in contract.numeric:
        if name in numbers.columns:
            numbers[name] = pd.to_numeric(numbers[name], errors="coerce")
    return numbers


def broken_rules(
    frame: pd.DataFrame, contract: Contract, numbers: pd.DataFrame | None = None
) -> dict[tuple[str, str], pd.Series]:
    """(column, rule) -> a boolean mask of the rows of `frame` (positional index) that break the rule.

    A model input missing from the table breaks `column_in_dataframe` on every row. Only rules some row
    breaks are returned (and a missing column, even in an empty table). `numbers`: `with_numbers(frame)`
    when the caller has it already (same index as `frame`).
    """
    frame = frame.reset_index(drop=True)
    numbers = with_numbers(frame, contract) if numbers is None else numbers.reset_index(drop=True)
    masks: dict[tuple[str, str], pd.Series] = {}
    for name, column in contract.columns.items():
        if name not in frame.columns:
            rules = {MISSING_COLUMN: pd.Series(True, index=frame.index)}
        elif column.is_numeric:
            rules = _numeric_rules(frame[name], numbers[name], column)
        else:
            rules = _categorical_rules(frame[name], column)
        for rule, bad in rules.items():
            bad = bad.fillna(False).astype(bool)
            if bad.any() or rule == MISSING_COLUMN:
                masks[(name, rule)] = bad
    return masks


def check_inputs(
    frame: pd.DataFrame, source: str = "input", contract: Contract | None = None
) -> QualityReport:
    """Every contract rule the model inputs of `frame` break (row indices are positions in `frame`)."""
    contract = contract or load_contract()
    frame = frame.reset_index(drop=True)
    return report_of(frame, broken_rules(frame, contract), source, contract)


def report_of(
    frame: pd.DataFrame, broken: dict[tuple[str, str], pd.Series], source: str, contract: Contract
) -> QualityReport:
    """The QualityReport of the masks `broken_rules` found in `frame` (a frame with a positional index)."""
    ids = frame[contract.id_column].astype(str) if contract.id_column in frame.columns else None
    failures: list[RuleFailure | None] = []
    for (name, rule), bad in broken.items():
        if rule == MISSING_COLUMN:
            failures.append(RuleFailure(MISSING_COLUMN, name, len(frame)))
        else:
            failures.append(failure_of(frame, name, rule, bad, ids))
    return QualityReport(source, len(frame), [failure for failure in failures if failure is not None])
