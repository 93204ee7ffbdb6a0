"""The data contract: the single source of truth for the columns of the data and the model's inputs.

Validation (pandera schema), features, the serving request model and batch scoring are all built from these
specs, so a change here is a change everywhere. Plugging in real data starts with editing this file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class NumericField:
    """A numeric column and the closed range of values the contract accepts."""

    name: str
    dtype: Literal["int", "float"]
    minimum: float
    maximum: float
    description: str


@dataclass(frozen=True)
class CategoricalField:
    """A categorical column and its allowed values (their order is the one-hot column order)."""

    name: str
    categories: tuple[str, ...]
    description: str
    dtype: Literal["str"] = "str"


ID_COLUMN = "customer_id"
ID_PATTERN = r"^C\d{6}$"
TIMESTAMP_COLUMN = "event_timestamp"
TARGET = "churned"

NUMERIC: dict[str, NumericField] = {
    field.name: field
    for field in (
        NumericField("tenure_months", "int", 0, 120, "Months since the customer signed up."),
        NumericField("monthly_charges", "float", 10.0, 200.0, "Current monthly bill."),
        NumericField("total_charges", "float", 0.0, 30_000.0, "Amount billed over the whole tenure."),
        NumericField("support_tickets", "int", 0, 30, "Support tickets opened over the whole tenure."),
    )
}

CATEGORICAL: dict[str, CategoricalField] = {
    field.name: field
    for field in (
        CategoricalField(
            "contract_type", ("month_to_month", "one_year", "two_year"), "Commitment of the current contract."
        ),
        CategoricalField(
            "payment_method", ("card", "bank_transfer", "invoice", "wallet"), "How the customer pays."
        ),
        CategoricalField("plan", ("basic", "standard", "premium"), "Product tier."),
    )
}

# The model's inputs, in the order of a /predict request. Ids, timestamps and the target are never inputs.
FEATURE_COLUMNS: tuple[str, ...] = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_tickets",
    "contract_type",
    "payment_method",
    "plan",
)

# Business and consistency rules checked by validation (here, so the whole contract reads in one place).
PREMIUM_MIN_MONTHLY_CHARGES = 50.0
# total_charges must lie within this fraction of monthly_charges x tenure_months (prices change over time).
TOTAL_CHARGES_TOLERANCE = 0.35
# ... with this absolute slack in currency units for short tenures (a partial first month, a one-off fee).
TOTAL_CHARGES_SLACK = 250.0


def input_schema() -> dict[str, Any]:
    """The model inputs as plain JSON (stored in models/metadata.json and served by /version)."""
    fields: dict[str, Any] = {}
    for name in FEATURE_COLUMNS:
        spec = NUMERIC.get(name) or CATEGORICAL[name]
        entry = asdict(spec)
        if isinstance(spec, CategoricalField):
            entry["categories"] = list(spec.categories)
        fields[name] = entry
    return {"feature_columns": list(FEATURE_COLUMNS), "fields": fields}
