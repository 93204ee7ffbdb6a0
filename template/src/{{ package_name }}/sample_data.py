"""Deterministic synthetic customers with a learnable churn signal: the sample that ships in data/raw/.

The shipped file is exactly `python -m <package>.sample_data --output data/raw/customers.csv` (defaults);
a test checks it. Replace it with real data (see README.md): nothing else in the pipeline uses this module.
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .contract import CATEGORICAL, ID_COLUMN, NUMERIC, TARGET, TIMESTAMP_COLUMN

DEFAULT_ROWS = 5000
DEFAULT_SEED = 20240101
PERIOD_START = datetime(2023, 1, 1, tzinfo=UTC)
PERIOD_END = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
COLUMNS = (ID_COLUMN, TIMESTAMP_COLUMN, *NUMERIC, *CATEGORICAL, TARGET)

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
        ID_COLUMN: [f"C{i:06d}" for i in ids],
        TIMESTAMP_COLUMN: timestamps,
        "tenure_months": tenure.tolist(),
        "monthly_charges": [f"{value:.2f}" for value in monthly],
        "total_charges": [f"{value:.2f}" for value in total],
        "support_tickets": tickets.tolist(),
        "contract_type": contract.tolist(),
        "payment_method": payment.tolist(),
        "plan": plan.tolist(),
        TARGET: churned.tolist(),
    }


def write_csv(columns: dict[str, list[object]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(zip(*(columns[name] for name in COLUMNS), strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
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
    write_csv(generate(args.rows, args.seed), args.output)
    print(f"wrote {args.rows} rows to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
