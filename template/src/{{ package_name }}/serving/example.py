"""An example model input built from the data contract (OpenAPI docs, `make predict`, tests).

Stdlib only, so the client and the container health check can import it without loading the service's stack.
"""

from __future__ import annotations

from ..contract import CATEGORICAL, FEATURE_COLUMNS, NUMERIC


def example_record() -> dict[str, int | float | str]:
    """A valid record: numbers at the middle of their contract range, categoricals at their first value."""
    record: dict[str, int | float | str] = {}
    for name in FEATURE_COLUMNS:
        if name in NUMERIC:
            spec = NUMERIC[name]
            middle = (spec.minimum + spec.maximum) / 2
            record[name] = round(middle) if spec.dtype == "int" else round(middle, 2)
        else:
            record[name] = CATEGORICAL[name].categories[0]
    return record
