"""Typed access to params.yaml, the single place where the pipeline is configured."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

DEFAULT_PATH = Path("params.yaml")
MODEL_TYPES = ("logistic_regression", "hist_gradient_boosting")
SPLIT_STRATEGIES = ("time", "stratified")
TRACKING_BACKENDS = ("mlflow", "none")


class ParamsError(ValueError):
    """params.yaml is missing a value or holds one the pipeline cannot use."""


@dataclass(frozen=True)
class SplitParams:
    strategy: Literal["time", "stratified"]
    test_size: float
    seed: int


@dataclass(frozen=True)
class ModelParams:
    type: Literal["logistic_regression", "hist_gradient_boosting"]
    seed: int
    threshold: float
    hyperparameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluateParams:
    slice_by: str
    baseline_feature: str
    permutation_repeats: int


@dataclass(frozen=True)
class GateParams:
    min_roc_auc: float
    max_brier: float
    min_improvement_over_baseline: float
    max_regression_vs_champion: float


@dataclass(frozen=True)
class TrackingParams:
    backend: Literal["mlflow", "none"]
    experiment: str
    registered_model: str


@dataclass(frozen=True)
class Params:
    raw_data: Path
    split: SplitParams
    model: ModelParams
    evaluate: EvaluateParams
    gate: GateParams
    tracking: TrackingParams
    raw: dict[str, Any]


def _choice(value: Any, allowed: tuple[str, ...], key: str) -> Any:
    if value not in allowed:
        raise ParamsError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def parse_params(raw: dict[str, Any]) -> Params:
    """Check and type a params.yaml mapping; raise ParamsError naming the bad key."""
    try:
        model = raw["model"]
        model_type = _choice(model["type"], MODEL_TYPES, "model.type")
        test_size = float(raw["split"]["test_size"])
        if not 0.0 < test_size < 1.0:
            raise ParamsError(f"split.test_size must be between 0 and 1, not {test_size}")
        threshold = float(model["threshold"])
        if not 0.0 < threshold < 1.0:
            raise ParamsError(f"model.threshold must be between 0 and 1, not {threshold}")
        return Params(
            raw_data=Path(raw["data"]["raw"]),
            split=SplitParams(
                strategy=_choice(raw["split"]["strategy"], SPLIT_STRATEGIES, "split.strategy"),
                test_size=test_size,
                seed=int(raw["split"]["seed"]),
            ),
            model=ModelParams(
                type=model_type,
                seed=int(model["seed"]),
                threshold=threshold,
                hyperparameters=dict(model.get(model_type) or {}),
            ),
            evaluate=EvaluateParams(
                slice_by=str(raw["evaluate"]["slice_by"]),
                baseline_feature=str(raw["evaluate"]["baseline_feature"]),
                permutation_repeats=int(raw["evaluate"]["permutation_repeats"]),
            ),
            gate=GateParams(**{key: float(value) for key, value in raw["gate"].items()}),
            tracking=TrackingParams(
                backend=_choice(raw["tracking"]["backend"], TRACKING_BACKENDS, "tracking.backend"),
                experiment=str(raw["tracking"]["experiment"]),
                registered_model=str(raw["tracking"]["registered_model"]),
            ),
            raw=raw,
        )
    except KeyError as error:
        raise ParamsError(f"params.yaml is missing the key {error.args[0]!r}") from None
    except TypeError as error:
        raise ParamsError(f"params.yaml has an unexpected key or value: {error}") from None


def load_params(path: Path = DEFAULT_PATH) -> Params:
    with path.open(encoding="utf-8") as handle:
        return parse_params(yaml.safe_load(handle))
