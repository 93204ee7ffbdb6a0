"""The `gate` stage: decide whether the trained model may replace the champion, and promote it if so.

Checks (params.yaml `gate`): a floor or ceiling per metric (`thresholds`), a minimum improvement over the
baseline on the gate's metric, and no regression beyond a tolerance on that metric against the current
champion, re-scored on the same test split.
Writes reports/gate.json; on a pass (and without --dry-run) copies the model to models/champion/, appends to
models/registry.json and moves the tracking backend's `champion` alias. Exits 1 when the gate fails.

A champion that exists but cannot be loaded or scored (the contract changed, its files are damaged) fails the
gate: the comparison cannot be skipped silently. `--force` (`make gate FORCE=1`, or GATE_FORCE=1 in the
environment of `dvc repro`) waives that comparison only, and reports/gate.json records the waiver.
Promotion replaces models/champion/ by renames (the new model is complete before it takes the name, the old
one is deleted last), and registry.json through a temporary file: an interrupted gate leaves a whole champion.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract import Contract, load_contract
from ..metadata import ModelArtifactError, ModelMetadata, write_json
from ..params import GateParams, load_params
from ..tables.files import input_columns_of
from ..tracking import TrackingError, get_tracker
from ..training.artifacts import MODEL_FILES, EstimatorModel, load_model
from ..training.estimators import encode_target
from ..training.metrics import LOWER_IS_BETTER, task_metrics


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | None
    limit: float
    detail: str


def _check(name: str, value: float | None, limit: float, *, at_least: bool, detail: str) -> Check:
    passed = value is not None and (value >= limit if at_least else value <= limit)
    return Check(name, passed, value, limit, detail)


def champion_metric(champion: EstimatorModel, test_frame: pd.DataFrame, metric: str) -> float | None:
    """The champion's `metric` on today's test split, so both models are judged on the same data."""
    contract, metadata = champion.features.contract, champion.metadata
    y = encode_target(test_frame[contract.target.column].to_numpy(), metadata.task, contract.target.classes)
    output = champion.raw_output(champion.features.matrix(input_columns_of(test_frame, contract)))
    threshold = metadata.threshold if metadata.threshold is not None else 0.5
    return task_metrics(metadata.task, y, output, metadata.classes, threshold).get(metric)


def run_checks(metrics: dict[str, Any], gate: GateParams, champion_value: float | None) -> list[Check]:
    model = metrics["model"]
    checks = []
    for name, bound in gate.thresholds.items():
        for kind, limit, at_least in (("min", bound.minimum, True), ("max", bound.maximum, False)):
            if limit is not None:
                detail = f"{name} on the test split"
                checks.append(
                    _check(f"{kind}_{name}", model.get(name), limit, at_least=at_least, detail=detail)
                )
    checks.append(
        _check(
            "min_improvement_over_baseline",
            metrics["improvement_over_baseline"].get(gate.metric),
            gate.min_improvement_over_baseline,
            at_least=True,
            detail=f"share of the {gate.metric} error of the baseline removed "
            f"({metrics['baseline']['description']})",
        )
    )
    value = model.get(gate.metric)
    if champion_value is not None:
        lost = None if value is None else champion_value - value
        if lost is not None and gate.metric in LOWER_IS_BETTER:
            lost = -lost
        checks.append(
            _check(
                "max_regression_vs_champion",
                None if lost is None else round(lost, 6),
                gate.max_regression_vs_champion,
                at_least=False,
                detail=f"{gate.metric} lost against the champion (champion scores {champion_value:.4f})",
            )
        )
    return checks


def promote(model_dir: Path, champion_dir: Path, registry_path: Path, metadata: ModelMetadata) -> None:
    """Replace the champion with the model in model_dir and record the promotion in the registry."""
    champion_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".champion-new-", dir=champion_dir.parent))
    staging.chmod(0o755)  # mkdtemp creates 0700; the serving image and other users must read the champion
    for name in MODEL_FILES:
        shutil.copy2(model_dir / name, staging / name)
    retired = None
    if champion_dir.exists():  # set aside by a rename: the old champion stays whole until the new one is in
        retired = Path(tempfile.mkdtemp(prefix=".champion-old-", dir=champion_dir.parent)) / champion_dir.name
        champion_dir.rename(retired)
    staging.rename(champion_dir)
    if retired is not None:
        shutil.rmtree(retired.parent)

    registry = json.loads(registry_path.read_text(encoding="utf-8")) if registry_path.is_file() else {}
    history = registry.get("history", [])
    history.append(
        {
            "model_version": metadata.model_version,
            "promoted_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "git_sha": metadata.git_sha,
            "data_hash": metadata.data_hash,
            "metrics": metadata.metrics,
        }
    )
    replace_json(registry_path, {"champion": metadata.model_version, "history": history})


def replace_json(path: Path, payload: Any) -> None:
    """Write `payload` to a temporary file beside `path`, then rename it over `path` (an atomic step)."""
    temporary = path.with_name(f".{path.name}.tmp")
    write_json(temporary, payload)
    os.replace(temporary, path)


def compare_with_champion(
    champion_dir: Path, contract: Contract, test_data: Path, metric: str
) -> tuple[str | None, float | None, str | None]:
    """(champion version, its metric on today's test split, why it cannot be compared); None: no champion."""
    if not champion_dir.is_dir() or not any(champion_dir.iterdir()):
        return None, None, None  # the first model: nothing to compare with
    try:
        champion = load_model(champion_dir, contract)
        value = champion_metric(champion, pd.read_parquet(test_data), metric)
    except (ModelArtifactError, OSError, KeyError, ValueError) as error:
        return None, None, f"the champion in {champion_dir} cannot be loaded or scored: {error}"
    return champion.model_version, value, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Quality gate: promote the trained model when it is good enough."
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--champion-dir", type=Path, default=Path("models/champion"))
    parser.add_argument("--registry", type=Path, default=Path("models/registry.json"))
    parser.add_argument("--metrics", type=Path, default=Path("reports/metrics.json"))
    parser.add_argument("--test-data", type=Path, default=Path("data/processed/test.parquet"))
    parser.add_argument("--report", type=Path, default=Path("reports/gate.json"))
    parser.add_argument("--dry-run", action="store_true", help="report the decision, promote nothing")
    parser.add_argument(
        "--force",
        action="store_true",
        default=os.environ.get("GATE_FORCE", "").strip() not in ("", "0"),
        help="waive the comparison with a champion that cannot be loaded (recorded in the report); "
        "default: the GATE_FORCE environment variable",
    )
    args = parser.parse_args(argv)

    params = load_params(args.params)
    contract: Contract = load_contract()
    candidate = load_model(args.model_dir, contract)
    gate = params.gate(contract.task)
    metrics = json.loads(args.metrics.read_text(encoding="utf-8"))
    if metrics.get("model_version") != candidate.model_version:
        print(
            f"{args.metrics} is not the evaluation of {candidate.model_version}: run evaluate first",
            file=sys.stderr,
        )
        return 2

    champion_version, champion_value, unusable = compare_with_champion(
        args.champion_dir, contract, args.test_data, gate.metric
    )
    checks = run_checks(metrics, gate, champion_value)
    notes, waiver = [], None
    if unusable is not None and args.force:
        waiver = f"comparison with the champion waived (--force / FORCE=1): {unusable}"
        notes.append(waiver)
    elif unusable is not None:
        detail = f"{unusable}; retrain it, or waive the comparison with `make gate FORCE=1`"
        checks.append(Check("champion_comparable", False, None, 1.0, detail))
    passed = all(check.passed for check in checks)
    promoted = passed and not args.dry_run
    write_json(
        args.report,
        {
            "passed": passed,
            "promoted": promoted,
            "dry_run": args.dry_run,
            "candidate_version": candidate.model_version,
            "champion_version": champion_version,
            "checks": [asdict(check) for check in checks],
            "reasons": [
                f"{c.name}: {c.value} vs limit {c.limit} ({c.detail})" for c in checks if not c.passed
            ],
            "notes": notes,
            "forced": waiver is not None,
            "waiver": waiver,
        },
    )
    for check in checks:
        print(f"  [{'pass' if check.passed else 'FAIL'}] {check.name}: {check.value} (limit {check.limit})")
    for note in notes:
        print(f"  note: {note}")
    if not passed:
        print(f"gate FAILED for {candidate.model_version}: see {args.report}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(f"gate passed for {candidate.model_version} (dry run: nothing promoted)")
        return 0
    try:
        # Reached before anything moves: a tracking server that is down leaves the old champion in place.
        tracker = get_tracker(params.tracking)
    except TrackingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    promote(args.model_dir, args.champion_dir, args.registry, candidate.metadata)
    registered = tracker.promote(candidate.metadata.tracking)
    where = f"; registry version {registered}" if registered else ""
    print(f"gate passed: {candidate.model_version} is the champion ({args.champion_dir}{where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
