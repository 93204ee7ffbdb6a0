"""The `gate` stage: decide whether the trained model may replace the champion, and promote it if so.

Checks (params.yaml `gate`): a floor or ceiling per metric (`thresholds`), a minimum improvement over the
baseline on the gate's metric, and no regression beyond a tolerance on that metric against the current
champion, re-scored on the same test split.
Writes reports/gate.json; on a pass (and without --dry-run) copies the model to models/champion/, appends to
models/registry.json and moves the tracking backend's `champion` alias. Exits 1 when the gate fails.
"""

from __future__ import annotations

import argparse
import json
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
from ..tracking import get_tracker
from ..training.artifacts import MODEL_FILE, MODEL_FILES, EstimatorModel, load_model
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
    staging = Path(tempfile.mkdtemp(prefix=".champion-", dir=champion_dir.parent))
    staging.chmod(0o755)  # mkdtemp creates 0700; the serving image and other users must read the champion
    for name in MODEL_FILES:
        shutil.copy2(model_dir / name, staging / name)
    if champion_dir.exists():
        shutil.rmtree(champion_dir)
    staging.rename(champion_dir)

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
    write_json(registry_path, {"champion": metadata.model_version, "history": history})


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

    champion_version, champion_value, notes = None, None, []
    if (args.champion_dir / MODEL_FILE).is_file():
        try:
            champion = load_model(args.champion_dir, contract)
        except ModelArtifactError as error:
            notes.append(f"champion not compared: {error}")
        else:
            champion_version = champion.model_version
            champion_value = champion_metric(champion, pd.read_parquet(args.test_data), gate.metric)

    checks = run_checks(metrics, gate, champion_value)
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
    promote(args.model_dir, args.champion_dir, args.registry, candidate.metadata)
    get_tracker(params.tracking).promote(candidate.metadata.tracking)
    print(f"gate passed: {candidate.model_version} is the champion ({args.champion_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
