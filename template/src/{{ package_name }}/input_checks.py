"""Contract checks of model inputs for batch scoring: pandas only, so the batch image needs no training deps.

Training data goes through the full pandera schema in validation.py; this checks what scoring needs: every
model input present, complete, of the right type, in range and of a known category.
"""

from __future__ import annotations

import pandas as pd

from .contract import CATEGORICAL, ID_COLUMN, NUMERIC
from .quality_report import QualityReport, RuleFailure

MAX_LISTED_ROWS = 50


def _failure(frame: pd.DataFrame, column: str, rule: str, bad: pd.Series) -> RuleFailure | None:
    indices = [int(i) for i in bad[bad].index]
    if not indices:
        return None
    ids = frame[ID_COLUMN].astype(str) if ID_COLUMN in frame.columns else None
    listed = indices[:MAX_LISTED_ROWS]
    return RuleFailure(
        rule=rule,
        column=column,
        count=len(indices),
        row_indices=listed,
        row_ids=[ids.iloc[i] for i in listed] if ids is not None else [],
        examples=[str(value) for value in frame[column].iloc[listed[:5]]],
    )


def _numeric_failures(frame: pd.DataFrame, name: str) -> list[RuleFailure | None]:
    spec = NUMERIC[name]
    raw = frame[name]
    values = pd.to_numeric(raw, errors="coerce")
    checks = [
        (raw.isna(), "not_nullable"),
        (raw.notna() & values.isna(), "numeric"),
        (values.notna() & ((values < spec.minimum) | (values > spec.maximum)), "in_range"),
    ]
    if spec.dtype == "int":
        checks.append((values.notna() & (values != values.round()), "integer"))
    return [_failure(frame, name, rule, bad) for bad, rule in checks]


def check_inputs(frame: pd.DataFrame, source: str = "input") -> QualityReport:
    """Every contract rule the model inputs of `frame` break (row indices are positions in `frame`)."""
    frame = frame.reset_index(drop=True)
    failures: list[RuleFailure | None] = []
    for name in NUMERIC:
        if name not in frame.columns:
            failures.append(RuleFailure("column_in_dataframe", name, len(frame)))
        else:
            failures.extend(_numeric_failures(frame, name))
    for name, spec in CATEGORICAL.items():
        if name not in frame.columns:
            failures.append(RuleFailure("column_in_dataframe", name, len(frame)))
            continue
        raw = frame[name]
        failures.append(_failure(frame, name, "not_nullable", raw.isna()))
        failures.append(_failure(frame, name, "allowed_categories", raw.notna() & ~raw.isin(spec.categories)))
    return QualityReport(source, len(frame), [failure for failure in failures if failure is not None])
