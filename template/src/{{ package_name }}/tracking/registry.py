"""The model registry's champion from the command line: fetch its files, or move the alias (a rollback).

    python -m <package>.tracking.registry fetch-champion [--output models/champion]   # make fetch-champion
    python -m <package>.tracking.registry set-champion --version <n>   # make rollback-champion VERSION=<n>

The registered model and the server come from params.yaml (`tracking`) and MLFLOW_TRACKING_URI, as for the
pipeline. fetch-champion is what CD runs before it builds the image: the image holds the version the
registry's `champion` alias names, and that version is in its labels and in the service's /version. A rollback
moves the alias back to an earlier version, then redeploys (CD's workflow_dispatch, or fetch + deploy).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..params import load_params
from . import TrackingError
from .mlflow_backend import CHAMPION_ALIAS, fetch_champion, set_champion


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch or move the registry's champion.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch-champion", help="download the files of the version the alias names")
    fetch.add_argument("--output", type=Path, default=Path("models/champion"))
    fetch.add_argument("--alias", default=CHAMPION_ALIAS)
    move = commands.add_parser("set-champion", help="point the champion alias at an existing version")
    move.add_argument("--version", required=True, help="the registered model version, e.g. 3")
    args = parser.parse_args(argv)

    tracking = load_params(args.params).tracking
    if tracking.backend != "mlflow":
        print("tracking.backend is not mlflow: there is no registry to use", file=sys.stderr)
        return 2
    try:
        if args.command == "fetch-champion":
            metadata = fetch_champion(tracking.registered_model, args.output, args.alias, tracking.server)
            version = metadata.tracking["registered_version"]
            print(
                f"{tracking.registered_model} version {version} ({args.alias}: {metadata.model_version}) "
                f"is in {args.output}"
            )
        else:
            previous = set_champion(tracking.registered_model, args.version, tracking.server)
            print(
                f"{CHAMPION_ALIAS} of {tracking.registered_model}: version {previous or '(none)'} -> "
                f"{args.version}; redeploy to serve it (docs/runbooks/rollback.md)"
            )
    except TrackingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except Exception as error:  # the registry's refusal (unknown version or alias), as one line
        print(f"error: {type(error).__name__}: {str(error).strip().splitlines()[0][:500]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
