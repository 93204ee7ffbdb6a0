"""The `feature_apply` stage: the validated data becomes the feature view's source, and `feast apply`
registers the feature repository generated from contract.yaml (feature_store/repository.py).

A contract without an id or a timestamp stops here, naming the key to add.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..contract import load_contract
from ..feature_store.offline import write_source
from ..feature_store.repository import (
    OFFLINE_SOURCE,
    FeatureStoreError,
    FeatureStoreParams,
    apply,
    offline_source,
    open_store,
    require_keys,
)
from ..params import load_params
from ..tables.files import read_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the feature view's source and apply the feature repository."
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--report", type=Path, default=Path("reports/feature_store.json"))
    args = parser.parse_args(argv)
    contract = load_contract()
    try:
        require_keys(contract)
        settings = FeatureStoreParams.load(args.params)
        params = load_params(args.params)
        rows = write_source(
            read_table(str(params.raw_data), contract), contract, OFFLINE_SOURCE, copy_to=offline_source()
        )
        names = apply(open_store(), contract, settings.ttl_days)
    except FeatureStoreError as error:
        print(f"feature_apply: {error}", file=sys.stderr)
        return 1
    report = {"source": offline_source(), "rows": rows, "applied": names, "ttl_days": settings.ttl_days}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"feature store: {rows} rows in {offline_source()}; applied {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
