"""Data drift: compare the inputs the model sees now with the data it was trained on, feature by feature.

    python -m <package>.drift                    # data/processed/train.parquet vs data/inference/*.jsonl
    python -m <package>.drift --current new.csv  # or any CSV / Parquet / JSONL file of model inputs

Numeric features: population stability index (PSI, on reference deciles) and the two-sample
Kolmogorov-Smirnov test. Categorical features: PSI over the categories and the chi-square test of the
reference vs current counts. A feature drifts when BOTH its PSI reaches `psi_threshold` (the shift is large
enough to matter) AND its test's p-value is below `p_value_threshold` (the shift is not sampling noise):
p-values alone flag trivial shifts on large samples, PSI alone flags noise on small ones. Thresholds come
from the `drift:` section of params.yaml.

Writes reports/drift.json and reports/drift.html. Exit status: 0 no drift, 1 drift, 2 not enough current data.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from .contract import FEATURE_COLUMNS, NUMERIC
from .drift_logs import model_inputs, read_current
from .drift_report import write_reports
from .tables import read_table

EXIT_NO_DRIFT, EXIT_DRIFT, EXIT_NO_DATA = 0, 1, 2
# Share given to an empty bin so the PSI logarithm stays finite.
_EMPTY_BIN_SHARE = 1e-4


@dataclass(frozen=True)
class DriftSettings:
    reference: Path
    current: Path
    output_dir: Path
    psi_threshold: float
    p_value_threshold: float
    bins: int
    min_records: int
    window_days: int

    @classmethod
    def from_params(cls, path: Path) -> DriftSettings:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if "drift" not in raw:
            raise ValueError(f"{path} has no `drift:` section")
        section = raw["drift"]
        try:
            return cls(
                reference=Path(section["reference"]),
                current=Path(section["current"]),
                output_dir=Path(section["output_dir"]),
                psi_threshold=float(section["psi_threshold"]),
                p_value_threshold=float(section["p_value_threshold"]),
                bins=int(section["bins"]),
                min_records=int(section["min_records"]),
                window_days=int(section["window_days"]),
            )
        except KeyError as missing:
            raise ValueError(f"{path}: drift.{missing.args[0]} is missing") from None


@dataclass
class FeatureDrift:
    feature: str
    kind: Literal["numeric", "categorical"]
    psi: float
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    drifted: bool
    reference_summary: dict[str, float] = field(default_factory=dict)
    current_summary: dict[str, float] = field(default_factory=dict)


@dataclass
class DriftReport:
    status: Literal["drift", "no_drift", "no_data"]
    message: str
    generated_at: str
    reference: dict[str, Any]
    current: dict[str, Any]
    thresholds: dict[str, float]
    drifted_features: list[str]
    features: list[FeatureDrift]

    @property
    def exit_code(self) -> int:
        return {"drift": EXIT_DRIFT, "no_drift": EXIT_NO_DRIFT, "no_data": EXIT_NO_DATA}[self.status]

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["drift_detected"] = self.status == "drift"
        payload["features"] = {
            item.feature: {k: v for k, v in asdict(item).items() if k != "feature"} for item in self.features
        }
        return payload


# --- reading the data ---------------------------------------------------------------------------------------
def read_reference(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ValueError(f"{path} does not exist: build the training split first (make features)")
    return model_inputs(read_table(str(path)), str(path))


# --- statistics ---------------------------------------------------------------------------------------------
def population_stability_index(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """PSI = sum((current - reference) * ln(current / reference)) over bins; 0: identical distributions."""
    reference = np.clip(reference_shares, _EMPTY_BIN_SHARE, None)
    current = np.clip(current_shares, _EMPTY_BIN_SHARE, None)
    return float(np.sum((current - reference) * np.log(current / reference)))


def quantile_bin_shares(
    reference: np.ndarray, current: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each sample in bins cut at the reference quantiles (open-ended first and last bins)."""
    inner_edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    edges = np.concatenate(([-np.inf], inner_edges, [np.inf]))
    reference_counts = np.histogram(reference, edges)[0]
    current_counts = np.histogram(current, edges)[0]
    return reference_counts / reference_counts.sum(), current_counts / current_counts.sum()


def numeric_drift(
    name: str, reference: pd.Series, current: pd.Series, settings: DriftSettings
) -> FeatureDrift:
    ref, cur = reference.dropna().to_numpy(float), current.dropna().to_numpy(float)
    psi = population_stability_index(*quantile_bin_shares(ref, cur, settings.bins))
    ks = stats.ks_2samp(ref, cur)
    return FeatureDrift(
        feature=name,
        kind="numeric",
        psi=round(psi, 6),
        test="ks",
        statistic=round(float(ks.statistic), 6),
        p_value=float(ks.pvalue),
        drifted=bool(psi >= settings.psi_threshold and ks.pvalue < settings.p_value_threshold),
        reference_summary=_numeric_summary(ref),
        current_summary=_numeric_summary(cur),
    )


def categorical_drift(
    name: str, reference: pd.Series, current: pd.Series, settings: DriftSettings
) -> FeatureDrift:
    ref_counts = reference.dropna().value_counts()
    cur_counts = current.dropna().value_counts()
    categories = sorted(set(ref_counts.index) | set(cur_counts.index))
    table = np.array([[ref_counts.get(c, 0) for c in categories], [cur_counts.get(c, 0) for c in categories]])
    psi = population_stability_index(table[0] / table[0].sum(), table[1] / table[1].sum())
    if len(categories) > 1:
        chi2, p_value = stats.chi2_contingency(table)[:2]
    else:
        chi2, p_value = 0.0, 1.0
    return FeatureDrift(
        feature=name,
        kind="categorical",
        psi=round(psi, 6),
        test="chi2",
        statistic=round(float(chi2), 6),
        p_value=float(p_value),
        drifted=bool(psi >= settings.psi_threshold and p_value < settings.p_value_threshold),
        reference_summary=_shares(table[0], categories),
        current_summary=_shares(table[1], categories),
    )


def _numeric_summary(values: np.ndarray) -> dict[str, float]:
    quartiles = np.quantile(values, [0.25, 0.5, 0.75])
    return {
        "mean": round(float(values.mean()), 4),
        "p25": round(float(quartiles[0]), 4),
        "median": round(float(quartiles[1]), 4),
        "p75": round(float(quartiles[2]), 4),
    }


def _shares(counts: np.ndarray, categories: list[str]) -> dict[str, float]:
    total = counts.sum()
    return {
        str(category): round(float(count / total), 4)
        for category, count in zip(categories, counts, strict=True)
    }


# --- the check ----------------------------------------------------------------------------------------------
def detect_drift(
    reference: pd.DataFrame, current: pd.DataFrame, settings: DriftSettings, current_source: str
) -> DriftReport:
    base: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reference": {"path": str(settings.reference), "records": len(reference)},
        "current": {"path": current_source, "records": len(current)},
        "thresholds": {
            "psi": settings.psi_threshold,
            "p_value": settings.p_value_threshold,
            "min_records": settings.min_records,
        },
    }
    if len(current) < settings.min_records:
        message = (
            f"not enough current data: {len(current)} records in {current_source} "
            f"(need at least {settings.min_records}). Serve traffic with INFERENCE_LOG_SAMPLE_RATE > 0, "
            "pull the inference logs (make drift-pull) or pass --current <file>."
        )
        return DriftReport(status="no_data", message=message, drifted_features=[], features=[], **base)
    features = [
        numeric_drift(name, reference[name], current[name], settings)
        if name in NUMERIC
        else categorical_drift(name, reference[name], current[name], settings)
        for name in FEATURE_COLUMNS
    ]
    drifted = [item.feature for item in features if item.drifted]
    message = f"drift on {', '.join(drifted)}" if drifted else f"no drift on {len(features)} features"
    return DriftReport(
        status="drift" if drifted else "no_drift",
        message=message,
        drifted_features=drifted,
        features=features,
        **base,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare current model inputs with the training data.")
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="params file (drift: section)"
    )
    parser.add_argument("--reference", type=Path, help="reference table (default: drift.reference)")
    parser.add_argument(
        "--current",
        type=Path,
        help="inference-log directory, JSONL, CSV or Parquet file (default: drift.current)",
    )
    parser.add_argument(
        "--output-dir", type=Path, help="where drift.json and drift.html go (default: drift.output_dir)"
    )
    args = parser.parse_args(argv)

    try:
        settings = DriftSettings.from_params(args.params)
        settings = replace(
            settings,
            reference=args.reference or settings.reference,
            current=args.current or settings.current,
            output_dir=args.output_dir or settings.output_dir,
        )
        reference = read_reference(settings.reference)
        current = read_current(settings.current, settings.window_days)
    except (OSError, ValueError) as error:
        print(f"drift: {error}", file=sys.stderr)
        return EXIT_NO_DATA
    report = detect_drift(reference, current, settings, current_source=str(settings.current))
    json_path, html_path = write_reports(report, reference, current, settings.output_dir)
    print(f"drift: {report.message}\n  report: {json_path} and {html_path}")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
