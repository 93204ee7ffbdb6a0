"""Validate raw customer data against the contract (pandera), reporting every failing rule at once.

`python -m <package>.validation [path]` writes reports/validation.json (each failing rule with the ids and row
indices that break it), prints a summary and exits 1 when any rule fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from .artifacts import write_json
from .contract import (
    CATEGORICAL,
    ID_COLUMN,
    ID_PATTERN,
    NUMERIC,
    PREMIUM_MIN_MONTHLY_CHARGES,
    TARGET,
    TIMESTAMP_COLUMN,
    TOTAL_CHARGES_SLACK,
    TOTAL_CHARGES_TOLERANCE,
)
from .quality_report import QualityReport, RuleFailure
from .tables import read_table

DEFAULT_REPORT = Path("reports/validation.json")
MAX_LISTED_ROWS = 50  # per rule in the report; `count` always has the full number


def _total_charges_consistent(frame: pd.DataFrame) -> pd.Series:
    """total_charges is close to monthly_charges x tenure_months (prices change over a tenure)."""
    expected = frame["monthly_charges"] * frame["tenure_months"]
    within = (
        frame["total_charges"] - expected
    ).abs() <= TOTAL_CHARGES_TOLERANCE * expected + TOTAL_CHARGES_SLACK
    return within | expected.isna() | frame["total_charges"].isna()


def _premium_pays_minimum(frame: pd.DataFrame) -> pd.Series:
    """The premium plan costs at least PREMIUM_MIN_MONTHLY_CHARGES a month."""
    premium = frame["plan"] == "premium"
    return (
        ~premium | (frame["monthly_charges"] >= PREMIUM_MIN_MONTHLY_CHARGES) | frame["monthly_charges"].isna()
    )


def _not_in_future(timestamps: pd.Series) -> pd.Series:
    return timestamps <= pd.Timestamp.now(tz="UTC")


def build_schema(*, with_target: bool = True) -> pa.DataFrameSchema:
    """The pandera schema of a customer table, built from contract.py."""
    columns: dict[str, pa.Column] = {
        ID_COLUMN: pa.Column(
            str, pa.Check.str_matches(ID_PATTERN, name="id_format", error="id_format"), unique=True
        ),
        TIMESTAMP_COLUMN: pa.Column(checks=pa.Check(_not_in_future, name="not_in_future")),
    }
    for name, spec in NUMERIC.items():
        columns[name] = pa.Column(
            int if spec.dtype == "int" else float,
            pa.Check.in_range(spec.minimum, spec.maximum, name="in_range", error="in_range"),
        )
    for name, categorical in CATEGORICAL.items():
        columns[name] = pa.Column(
            str,
            pa.Check.isin(
                list(categorical.categories), name="allowed_categories", error="allowed_categories"
            ),
        )
    if with_target:
        columns[TARGET] = pa.Column(int, pa.Check.isin([0, 1], name="binary_target", error="binary_target"))
    return pa.DataFrameSchema(
        columns,
        checks=[
            pa.Check(_total_charges_consistent, name="total_charges_consistent"),
            pa.Check(_premium_pays_minimum, name="premium_min_monthly_charges"),
        ],
        name="customers",
    )


def _failures(frame: pd.DataFrame, cases: pd.DataFrame) -> list[RuleFailure]:
    """One RuleFailure per (column, rule) from pandera's failure cases (one row per failing value)."""
    ids = frame[ID_COLUMN] if ID_COLUMN in frame.columns else None
    cases = cases.assign(rule=cases["check"].astype(str))
    # Checks on the whole frame are about rows, not one column; a missing column is named by its failure case.
    frame_level = cases["schema_context"] == "DataFrameSchema"
    missing_column = cases["rule"] == "column_in_dataframe"
    cases["column"] = cases["column"].where(~frame_level, "").where(~missing_column, cases["failure_case"])
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


def validate_frame(frame: pd.DataFrame, source: str = "data", *, with_target: bool = True) -> QualityReport:
    """Check every rule (lazy validation) and return what failed; never raises on bad data."""
    frame = frame.reset_index(drop=True)
    try:
        build_schema(with_target=with_target).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return QualityReport(source, len(frame), _failures(frame, errors.failure_cases))
    return QualityReport(source, len(frame), [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate customer data against the data contract.")
    parser.add_argument("data", nargs="?", default="data/raw/customers.csv", help="CSV or Parquet path/URI")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    args = parser.parse_args(argv)
    report = validate_frame(read_table(args.data), source=args.data)
    write_json(args.report, report.to_dict())
    print(report.summary(), file=sys.stdout if report.passed else sys.stderr)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
