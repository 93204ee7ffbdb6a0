"""Deterministic synthetic customers with a learnable signal: the samples that ship in data/raw/.

One customer base, three targets (the `task` answer of the template picks which file a project ships):

    binary       data/raw/customers.csv         churned: 1 when the customer cancels within a month
    multiclass   data/raw/customer_plans.csv    next_plan: the plan a month later (cancelled when they left)
    regression   data/raw/customer_revenue.csv  next_quarter_revenue: billed over the following three months

The multiclass and regression samples also miss some support_tickets and payment_method values, as real
exports do (their contracts declare those columns nullable). Each shipped file is exactly
`python -m <package>.sample_data --task <task> --output <file>`; a test checks it. Replace it with real data
(README.md): nothing else in the pipeline uses this module.
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DEFAULT_ROWS = 5000
DEFAULT_SEED = 20240101
PERIOD_START = datetime(2023, 1, 1, tzinfo=UTC)
PERIOD_END = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
INPUTS = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_tickets",
    "contract_type",
    "payment_method",
    "plan",
)
TARGETS = {"binary": "churned", "multiclass": "next_plan", "regression": "next_quarter_revenue"}
FILES = {
    "binary": "data/raw/customers.csv",
    "multiclass": "data/raw/customer_plans.csv",
    "regression": "data/raw/customer_revenue.csv",
}
PLANS = ("basic", "standard", "premium")
# Share of values missing in the multiclass and regression samples (nullable columns of their contracts).
MISSING_SHARE = {"support_tickets": 0.04, "payment_method": 0.03}

# Category mix and plan price bands of the synthetic customer base.
CONTRACT_MIX = {"month_to_month": 0.5, "one_year": 0.3, "two_year": 0.2}
PAYMENT_MIX = {"card": 0.35, "bank_transfer": 0.3, "invoice": 0.2, "wallet": 0.15}
PLAN_MIX = {"basic": 0.4, "standard": 0.35, "premium": 0.25}
PLAN_PRICE_BAND = {"basic": (15.0, 50.0), "standard": (45.0, 95.0), "premium": (80.0, 190.0)}


def _draw(rng: np.random.Generator, mix: dict[str, float], size: int) -> np.ndarray:
    return rng.choice(np.array(list(mix)), size=size, p=np.array(list(mix.values())))


def generate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> dict[str, list[object]]:
    """Columns of `rows` synthetic customers; the same (rows, seed) always gives the same data."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(900_000, size=rows, replace=False) + 100_000
    span = int((PERIOD_END - PERIOD_START).total_seconds())
    offsets = np.sort(rng.integers(0, span + 1, size=rows))

    contract = _draw(rng, CONTRACT_MIX, rows)
    payment = _draw(rng, PAYMENT_MIX, rows)
    plan = _draw(rng, PLAN_MIX, rows)
    # Longer commitments go with longer tenures.
    tenure_scale = np.select([contract == "one_year", contract == "two_year"], [30.0, 45.0], default=14.0)
    tenure = np.clip(np.floor(rng.exponential(tenure_scale)), 0, 120).astype(int)

    low = np.array([PLAN_PRICE_BAND[p][0] for p in plan])
    high = np.array([PLAN_PRICE_BAND[p][1] for p in plan])
    monthly = np.round(low + (high - low) * rng.random(rows), 2)
    # Prices drift over a tenure: the total is the nominal bill within +-12%.
    total = np.round(monthly * tenure * rng.uniform(0.88, 1.12, size=rows), 2)
    tickets_rate = np.where(plan == "basic", 2.5, 1.5)  # tickets per year
    tickets = np.clip(rng.poisson(tickets_rate * np.maximum(tenure, 1) / 12.0 + 0.3), 0, 30)

    tickets_per_year = tickets * 12.0 / np.maximum(tenure, 1)
    logit = (
        -1.6
        + 1.3 * (contract == "month_to_month")
        - 0.9 * (contract == "two_year")
        - 0.035 * np.minimum(tenure, 60)
        + 0.012 * (monthly - 60.0)
        + 0.25 * np.minimum(tickets_per_year, 8.0)
        + 0.5 * (payment == "invoice")
        + rng.normal(0.0, 0.6, size=rows)
    )
    churned = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(int)

    timestamps = [
        datetime.fromtimestamp(PERIOD_START.timestamp() + int(offset), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for offset in offsets
    ]
    return {
        "customer_id": [f"C{i:06d}" for i in ids],
        "event_timestamp": timestamps,
        "tenure_months": tenure.tolist(),
        "monthly_charges": [f"{value:.2f}" for value in monthly],
        "total_charges": [f"{value:.2f}" for value in total],
        "support_tickets": tickets.tolist(),
        "contract_type": contract.tolist(),
        "payment_method": payment.tolist(),
        "plan": plan.tolist(),
        "churned": churned.tolist(),
    }


def with_task(
    columns: dict[str, list[object]], task: str, seed: int = DEFAULT_SEED
) -> dict[str, list[object]]:
    """The customers of `generate` with the target of `task` (and, beyond binary, some values missing)."""
    if task == "binary":
        return columns
    rng = np.random.default_rng(seed + 1)
    rows = len(columns["churned"])
    churned = np.asarray(columns["churned"]) == 1
    monthly = np.asarray(columns["monthly_charges"], dtype=float)
    tickets = np.asarray(columns["support_tickets"], dtype=float)
    tenure = np.asarray(columns["tenure_months"], dtype=float)
    contract = np.asarray(columns["contract_type"])
    result = {name: list(values) for name, values in columns.items() if name != "churned"}
    if task == "multiclass":
        plan_index = np.array([PLANS.index(plan) for plan in columns["plan"]])
        upgrade = 1 / (
            1 + np.exp(-(-2.2 + 0.03 * np.minimum(tenure, 48) - 0.25 * tickets / np.maximum(tenure / 12, 1)))
        )
        downgrade = 1 / (1 + np.exp(-(-2.6 + 0.012 * (monthly - 60) + 0.3 * (contract == "month_to_month"))))
        draw = rng.random(rows)
        step = np.where(draw < upgrade, 1, np.where(draw > 1 - downgrade, -1, 0))
        next_plan = np.array(PLANS)[np.clip(plan_index + step, 0, len(PLANS) - 1)]
        result["next_plan"] = np.where(churned, "cancelled", next_plan).tolist()
    else:
        months_billed = np.where(churned, rng.uniform(0.0, 1.0, rows), 3.0)
        add_ons = 6.0 * tickets / np.maximum(tenure / 12, 1) * (contract != "two_year")
        revenue = monthly * months_billed * rng.uniform(0.95, 1.08, rows) + add_ons
        result["next_quarter_revenue"] = [f"{value:.2f}" for value in np.round(revenue, 2)]
    for name, share in MISSING_SHARE.items():
        missing = rng.random(rows) < share
        result[name] = ["" if gone else value for value, gone in zip(result[name], missing, strict=True)]
    return result


def write_csv(columns: dict[str, list[object]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [
        "customer_id",
        "event_timestamp",
        *INPUTS,
        *(name for name in TARGETS.values() if name in columns),
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(zip(*(columns[name] for name in names), strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", choices=sorted(TARGETS), default="binary", help="which target to generate")
    parser.add_argument("--output", type=Path, required=True, help="CSV file to create")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--force", action="store_true", help="overwrite an existing file (raw data is immutable)"
    )
    args = parser.parse_args(argv)
    if args.output.exists() and not args.force:
        print(f"{args.output} exists: raw data is immutable, pass --force to overwrite it", file=sys.stderr)
        return 1
    write_csv(with_task(generate(args.rows, args.seed), args.task, args.seed), args.output)
    print(f"wrote {args.rows} rows to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
