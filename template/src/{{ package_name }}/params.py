"""Typed access to params.yaml, the one place where the pipeline is configured (its values are the team's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

DEFAULT_PATH = Path("params.yaml")
MODEL_TYPES = ("linear", "hist_gradient_boosting")
SPLIT_STRATEGIES = ("auto", "time", "stratified", "random")
TRACKING_BACKENDS = ("mlflow", "none")
INVALID_ROW_POLICIES = ("quarantine", "reject")
AUTO = "auto"


class ParamsError(ValueError):
    """params.yaml is missing a value or holds one the pipeline cannot use."""


@dataclass(frozen=True)
class SplitParams:
    strategy: Literal["auto", "time", "stratified", "random"]
    test_size: float
    seed: int


@dataclass(frozen=True)
class ModelParams:
    type: Literal["linear", "hist_gradient_boosting"]
    seed: int
    threshold: float  # binary tasks: the score from which the positive class is predicted
    hyperparameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluateParams:
    slice_by: (
        tuple[str, ...] | None
    )  # None: every categorical input with at most MAX_AUTO_SLICE_VALUES values
    baseline_feature: str | None  # None: the best single feature on the train split (binary tasks)
    permutation_repeats: int


@dataclass(frozen=True)
class Bound:
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class GateParams:
    """The gate of one task (params.yaml has a section per task; the contract's task picks one)."""

    metric: str  # compared with the baseline and the champion
    min_improvement_over_baseline: float  # share of the baseline's error the model must remove (0..1)
    max_regression_vs_champion: float  # in units of `metric`
    thresholds: dict[str, Bound]


@dataclass(frozen=True)
class TrackingParams:
    backend: Literal["mlflow", "none"]
    experiment: str
    registered_model: str


@dataclass(frozen=True)
class BatchParams:
    """Batch scoring (batch.py): params.yaml's `batch` section, the one source of these values (the image
    ships params.yaml; BATCH_* environment variables override them per run)."""

    on_invalid: Literal["quarantine", "reject"]
    max_rejected_fraction: float  # quarantine: a larger share of rejected rows fails the run
    workers: int  # scoring processes; 0: one per available core
    rows_per_batch: int


@dataclass(frozen=True)
class Params:
    raw_data: Path
    split: SplitParams
    model: ModelParams
    evaluate: EvaluateParams
    gates: dict[str, GateParams]
    tracking: TrackingParams
    raw: dict[str, Any]
    batch: BatchParams

    def gate(self, task: str) -> GateParams:
        """The gate section of `task` (binary, multiclass or regression)."""
        if task not in self.gates:
            raise ParamsError(f"params.yaml has no gate.{task} section, but the contract's task is {task}")
        return self.gates[task]


def _choice(value: Any, allowed: tuple[str, ...], key: str) -> Any:
    if value not in allowed:
        raise ParamsError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _fraction(value: Any, key: str) -> float:
    number = float(value)
    if not 0.0 < number < 1.0:
        raise ParamsError(f"{key} must be between 0 and 1, not {number}")
    return number


def _slice_by(value: Any) -> tuple[str, ...] | None:
    if value == AUTO:
        return None
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ParamsError("evaluate.slice_by must be `auto` or a list of input column names")
    return tuple(value)


def _thresholds(value: Any) -> dict[str, Bound]:
    if not isinstance(value, dict):
        raise ParamsError("gate.thresholds must map metric names to {min: ...} and/or {max: ...}")
    bounds = {}
    for metric, bound in value.items():
        if not isinstance(bound, dict) or not set(bound) <= {"min", "max"} or not bound:
            raise ParamsError(f"gate.thresholds.{metric} must be {{min: <number>}} and/or {{max: <number>}}")
        bounds[str(metric)] = Bound(
            None if bound.get("min") is None else float(bound["min"]),
            None if bound.get("max") is None else float(bound["max"]),
        )
    return bounds


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParamsError(f"{key} must be a mapping, not {type(value).__name__}")
    return value


def _gate(task: str, section: Any) -> GateParams:
    if not isinstance(section, dict):
        raise ParamsError(f"gate.{task} must be a mapping with metric, thresholds and the two limits")
    improvement = float(section["min_improvement_over_baseline"])
    if not 0.0 <= improvement <= 1.0:
        raise ParamsError(
            f"gate.{task}.min_improvement_over_baseline must be between 0 and 1, not {improvement}"
        )
    return GateParams(
        metric=str(section["metric"]),
        min_improvement_over_baseline=improvement,
        max_regression_vs_champion=float(section["max_regression_vs_champion"]),
        thresholds=_thresholds(section.get("thresholds") or {}),
    )


def parse_batch(section: Any) -> BatchParams:
    """The `batch` section; every key is required (a KeyError names the missing one)."""
    section = _mapping(section, "batch")
    fraction = float(section["max_rejected_fraction"])
    if not 0.0 <= fraction <= 1.0:
        raise ParamsError(f"batch.max_rejected_fraction must be between 0 and 1, not {fraction}")
    workers = int(section["workers"])
    rows = int(section["rows_per_batch"])
    if workers < 0 or rows < 1:
        raise ParamsError(
            "batch.workers must be 0 (one per core) or more, and batch.rows_per_batch at least 1"
        )
    return BatchParams(
        on_invalid=_choice(section["on_invalid"], INVALID_ROW_POLICIES, "batch.on_invalid"),
        max_rejected_fraction=fraction,
        workers=workers,
        rows_per_batch=rows,
    )


def parse_params(raw: dict[str, Any]) -> Params:
    """Check and type a params.yaml mapping; raise ParamsError naming the bad key."""
    try:
        model = raw["model"]
        model_type = _choice(model["type"], MODEL_TYPES, "model.type")
        evaluate, gate = raw["evaluate"], raw["gate"]
        baseline = evaluate.get("baseline_feature", AUTO)
        return Params(
            raw_data=Path(raw["data"]["raw"]),
            split=SplitParams(
                strategy=_choice(raw["split"]["strategy"], SPLIT_STRATEGIES, "split.strategy"),
                test_size=_fraction(raw["split"]["test_size"], "split.test_size"),
                seed=int(raw["split"]["seed"]),
            ),
            model=ModelParams(
                type=model_type,
                seed=int(model["seed"]),
                threshold=_fraction(model.get("threshold", 0.5), "model.threshold"),
                hyperparameters=dict(model.get(model_type) or {}),
            ),
            evaluate=EvaluateParams(
                slice_by=_slice_by(evaluate.get("slice_by", AUTO)),
                baseline_feature=None if baseline in (AUTO, None) else str(baseline),
                permutation_repeats=int(evaluate["permutation_repeats"]),
            ),
            gates={str(task): _gate(task, section) for task, section in _mapping(gate, "gate").items()},
            tracking=TrackingParams(
                backend=_choice(raw["tracking"]["backend"], TRACKING_BACKENDS, "tracking.backend"),
                experiment=str(raw["tracking"]["experiment"]),
                registered_model=str(raw["tracking"]["registered_model"]),
            ),
            raw=raw,
            batch=parse_batch(raw["batch"]),
        )
    except KeyError as error:
        raise ParamsError(f"params.yaml is missing the key {error.args[0]!r}") from None
    except (TypeError, ValueError) as error:
        if isinstance(error, ParamsError):
            raise
        raise ParamsError(f"params.yaml has an unexpected key or value: {error}") from None


def load_params(path: Path = DEFAULT_PATH) -> Params:
    with path.open(encoding="utf-8") as handle:
        return parse_params(yaml.safe_load(handle))
