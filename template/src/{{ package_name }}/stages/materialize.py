"""The `materialize` stage: the feature view's values of the window in params.yaml into the online store.

The window is fixed (feature_store.materialize.start/end), so a re-run loads the same values: move `end` to
publish newer features (docs/runbooks/feature-store.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..contract import load_contract
from ..feature_store.repository import FeatureStoreError, FeatureStoreParams, open_store, view_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load the feature view's window into the online store.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--report", type=Path, default=Path("reports/materialization.json"))
    args = parser.parse_args(argv)
    contract = load_contract()
    try:
        settings = FeatureStoreParams.load(args.params)
        store = open_store()
    except FeatureStoreError as error:
        print(f"materialize: {error}", file=sys.stderr)
        return 1
    name = view_name(contract)
    store.materialize(start_date=settings.start, end_date=settings.end, feature_views=[name])
    report = {
        "feature_view": name,
        "start": settings.start.isoformat(),
        "end": settings.end.isoformat(),
        "online_store": store.config.online_store.type,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"materialised {name} from {report['start']} to {report['end']} into {report['online_store']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
