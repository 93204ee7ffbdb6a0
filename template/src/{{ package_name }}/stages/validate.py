"""The `validate` stage: check the raw data against every rule of the contract before anything learns from it.

The pandera schema is built from contract.yaml: the id (pattern, unique), the timestamp (parseable, not in the
future), every input (numeric and integral where the contract says int, in range, of a known category, not
missing unless nullable), the target (a known class, or a number in range) and the business rules. All rules
are checked (lazy validation) and reports/validation.json names each failing rule with its rows; the stage
exits 1 when any rule fails, which stops `dvc repro`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..contract import Column, Contract, load_contract
from ..metadata import write_json
from ..params import load_params
from ..tables.files import read_table
from ..tables.quality_report import MAX_LISTED_ROWS, QualityReport, RuleFailure

DEFAULT_REPORT = Path("reports/validation.json")


def _numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _integral(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    return values.isna() | (values == values.round())


def _input_column(column: Column) -> pa.Column:
    if not column.is_numeric:
        check = pa.Check.isin(list(column.categories), name="allowed_categories", error="allowed_categories")
        return pa.Column(checks=check, nullable=column.nullable)
    checks = [pa.Check(_numeric, element_wise=False, name="numeric", error="numeric")]
    if column.dtype == "int":
        checks.append(pa.Check(_integral, name="integer", error="integer"))
    if column.minimum is not None or column.maximum is not None:
        low = -np.inf if column.minimum is None else column.minimum
        high = np.inf if column.maximum is None else column.maximum
        checks.append(pa.Check.in_range(low, high, name="in_range", error="in_range"))
    return pa.Column(checks=checks, nullable=column.nullable)


def _target_column(contract: Contract) -> pa.Column:
    target = contract.target
    if target.is_classification:
        return pa.Column(checks=pa.Check.isin(list(target.classes), name="known_class", error="known_class"))
    checks = [pa.Check(_numeric, element_wise=False, name="numeric", error="numeric")]
    if target.minimum is not None or target.maximum is not None:
        low = -np.inf if target.minimum is None else target.minimum
        high = np.inf if target.maximum is None else target.maximum
        checks.append(pa.Check.in_range(low, high, name="in_range", error="in_range"))
    return pa.Column(checks=checks)


def rule_namespace(frame: pd.DataFrame, contract: Contract) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(values by name, missing mask by name) of the inputs, derived features and target of `frame`."""
    values: dict[str, Any] = {}
    missing: dict[str, np.ndarray] = {}
    for name, column in contract.columns.items():
        series = frame[name]
        missing[name] = series.isna().to_numpy()
        if column.is_numeric:
            values[name] = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        else:
            values[name] = series.astype(object).where(series.notna(), None).to_numpy()
    target = contract.target.column
    if target in frame.columns:
        values[target] = frame[target].to_numpy()
        missing[target] = frame[target].isna().to_numpy()
    for name, spec in contract.derived.items():
        values[name] = np.broadcast_to(spec.expression.evaluate(values), (len(frame),))
        missing[name] = np.logical_or.reduce([missing[used] for used in spec.expression.names])
    return values, missing


def _rule_check(contract: Contract, rule_name: str) -> pa.Check:
    rule = contract.rules[rule_name]

    def holds(frame: pd.DataFrame) -> pd.Series:
        values, missing = rule_namespace(frame, contract)
        # A row whose inputs of the rule are missing passes: `nullable` decides whether they may be missing.
        unknown = np.logical_or.reduce([missing[name] for name in rule.check.names])
        with np.errstate(all="ignore"):
            result = np.broadcast_to(np.asarray(rule.check.evaluate(values), dtype=bool), (len(frame),))
        return pd.Series(result | unknown, index=frame.index)

    return pa.Check(holds, name=rule_name, error=rule_name)  # the report names the rule (contract key)


def build_schema(
    contract: Contract, *, with_target: bool = True, with_rules: bool = True
) -> pa.DataFrameSchema:
    """The pandera schema of the contract's table."""
    columns: dict[str, pa.Column] = {name: _input_column(column) for name, column in contract.columns.items()}
    if contract.id_column:
        pattern = contract.id_pattern
        checks = [pa.Check.str_matches(pattern, name="id_format", error="id_format")] if pattern else []
        columns[contract.id_column] = pa.Column(str, checks, unique=True, report_duplicates="all")
    if contract.timestamp_column:
        columns[contract.timestamp_column] = pa.Column(
            checks=pa.Check(lambda stamps: stamps <= pd.Timestamp.now(tz="UTC"), name="not_in_future")
        )
    if with_target:
        columns[contract.target.column] = _target_column(contract)
    rules = [_rule_check(contract, name) for name in contract.rules] if with_rules else []
    return pa.DataFrameSchema(columns, checks=rules, name=contract.name)


def _failures(frame: pd.DataFrame, cases: pd.DataFrame, id_column: str | None) -> list[RuleFailure]:
    """One RuleFailure per (column, rule) from pandera's failure cases (one row per failing value)."""
    ids = frame[id_column] if id_column and id_column in frame.columns else None
    cases = cases.assign(rule=cases["check"].astype(str))
    # Checks on the whole frame are about rows, not one column; a missing column is named by its failure case.
    frame_level = cases["schema_context"] == "DataFrameSchema"
    missing_column = cases["rule"] == "column_in_dataframe"
    cases["column"] = cases["column"].where(~frame_level, "").where(~missing_column, cases["failure_case"])
    cases["column"] = cases["column"].fillna("")
    failures = []
    for (column, rule), group in cases.groupby(["column", "rule"], sort=True):
        indices = sorted({int(index) for index in group["index"].dropna()})
        listed = indices[:MAX_LISTED_ROWS]
        failures.append(
            RuleFailure(
                rule=str(rule),
                column=str(column) or None,
                count=len(indices) or len(group),
                row_indices=listed,
                row_ids=[str(ids.iloc[i]) for i in listed] if ids is not None else [],
                examples=[]
                if frame_level.loc[group.index].all()
                else [str(v) for v in group["failure_case"].head(5)],
            )
        )
    return failures


def validate_frame(
    frame: pd.DataFrame, source: str = "data", *, contract: Contract | None = None, with_target: bool = True
) -> QualityReport:
    """Check every rule (lazy validation) and return what failed; never raises on bad data."""
    contract = contract or load_contract()
    frame = frame.reset_index(drop=True)
    # The business rules cannot run without their columns: then the report names the missing columns only.
    complete = all(name in frame.columns for name in contract.columns)
    schema = build_schema(contract, with_target=with_target, with_rules=complete)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return QualityReport(source, len(frame), _failures(frame, errors.failure_cases, contract.id_column))
    return QualityReport(source, len(frame), [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate a table against the data contract (contract.yaml)."
    )
    parser.add_argument("data", nargs="?", help="CSV or Parquet path/URI (default: data.raw of params.yaml)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    args = parser.parse_args(argv)
    data = args.data or str(load_params(args.params).raw_data)
    report = validate_frame(read_table(data), source=data)
    write_json(args.report, report.to_dict())
    print(report.summary(), file=sys.stdout if report.passed else sys.stderr)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
