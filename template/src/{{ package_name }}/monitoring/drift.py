"""Drift: compare the inputs the model sees now, and what it predicts, with what it was trained and tested on.

    python -m <package>.monitoring.drift                    # drift.reference vs the logs in drift.current
    python -m <package>.monitoring.drift --current new.csv  # or a CSV / Parquet / JSONL file of model inputs

Inputs (contract.yaml columns) against the training split: numeric inputs by the population stability index
(PSI, on the reference deciles plus a "missing" bin; a value held by a decile's share of the reference or
more, such as the 0 of a 0/1 flag or of a zero-inflated count, and every value of an input with at most `bins`
distinct values, gets a bin of its own) and the two-sample Kolmogorov-Smirnov test, with a
chi-square test of the missing share when values are missing; categorical inputs by PSI over the categories
and the chi-square test of the reference vs current counts, a missing value counting as its own category.

Predictions against the served model's baseline (metadata.json `monitoring.expected_shares`, measured on its
test split): the share of each monitoring bucket (the predicted class, or the decile of the prediction for
regression) by PSI and the chi-square goodness-of-fit test. Inference logs carry the bucket of each
prediction (only records of the model in --model-dir count); a table of inputs is scored with that model.

Something drifts when BOTH its PSI reaches `psi_threshold` (the shift is large enough to matter) AND a test's
p-value is below `p_value_threshold` (the shift is not sampling noise): p-values alone flag trivial shifts on
large samples, PSI alone flags noise on small ones. Thresholds come from the `drift:` section of params.yaml.

No data is a warning while the served model is new and a failure after it: once `no_data_grace_days` have
passed since the champion's promotion (models/registry.json), a check without enough records means the
inference log stopped arriving (docs/runbooks/drift.md): status "no_data" with "grace_expired": true, exit
status 3. The report gives the time and age of the newest record either way.

Writes reports/drift.json and reports/drift.html. Exit status: 0 no drift, 1 drift, 2 not enough current data
(within the grace period), 3 not enough current data after it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from ..contract import Contract, load_contract
from ..metadata import METADATA_FILE, ModelArtifactError, ModelMetadata, read_metadata
from ..scoring.features import MISSING_CATEGORY
from ..scoring.model import load_onnx_model
from ..tables.files import input_columns_of, read_table
from .drift_logs import CurrentData, model_inputs, read_current
from .drift_report import write_reports

EXIT_NO_DRIFT, EXIT_DRIFT, EXIT_NO_DATA, EXIT_NO_DATA_AFTER_GRACE = 0, 1, 2, 3
DEFAULT_MODEL_DIR = Path("models/champion")
DEFAULT_REGISTRY = Path("models/registry.json")
DEFAULT_GRACE_DAYS = 7
PREDICTION = "prediction"
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
    model_dir: Path = DEFAULT_MODEL_DIR
    no_data_grace_days: int = DEFAULT_GRACE_DAYS
    registry: Path = DEFAULT_REGISTRY

    @classmethod
    def from_params(cls, path: Path) -> DriftSettings:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        section = raw.get("drift")
        if not isinstance(section, dict):
            raise ValueError(f"{path} has no `drift:` section")
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
                model_dir=Path(section.get("model_dir") or DEFAULT_MODEL_DIR),
                no_data_grace_days=int(section.get("no_data_grace_days", DEFAULT_GRACE_DAYS)),
                registry=Path(section.get("registry") or DEFAULT_REGISTRY),
            )
        except KeyError as missing:
            raise ValueError(f"{path}: drift.{missing.args[0]} is missing") from None


@dataclass
class FeatureDrift:
    """The verdict on one input (or on the predictions: feature "prediction", kind "prediction")."""

    feature: str
    kind: Literal["numeric", "categorical", "prediction"]
    psi: float
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    drifted: bool
    # Share of missing values in each sample; chi-square p-value of their difference (None: none missing).
    missing_share: dict[str, float] = field(default_factory=dict)
    missing_p_value: float | None = None
    reference_summary: dict[str, float] = field(default_factory=dict)
    current_summary: dict[str, float] = field(default_factory=dict)


@dataclass
class PredictionCheck:
    """The bucket shares of the current predictions against the served model's test split."""

    checked: bool
    note: str  # where the predictions come from, or why they were not checked
    model_version: str | None = None
    records: int = 0
    result: FeatureDrift | None = None

    @property
    def drifted(self) -> bool:
        return self.result is not None and self.result.drifted

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "checked": self.checked,
            "note": self.note,
            "model_version": self.model_version,
            "records": self.records,
            "drifted": self.drifted,
        }
        if self.result is not None:
            payload |= {k: v for k, v in asdict(self.result).items() if k not in ("feature", "drifted")}
        return payload


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
    prediction: PredictionCheck
    freshness: dict[str, Any] = field(default_factory=dict)

    @property
    def grace_expired(self) -> bool:
        return self.status == "no_data" and bool(self.freshness.get("grace_expired"))

    @property
    def exit_code(self) -> int:
        if self.grace_expired:
            return EXIT_NO_DATA_AFTER_GRACE
        return {"drift": EXIT_DRIFT, "no_drift": EXIT_NO_DRIFT, "no_data": EXIT_NO_DATA}[self.status]

    @property
    def checks(self) -> list[FeatureDrift]:
        """Every verdict: the inputs, then the predictions when they were checked."""
        return self.features + ([self.prediction.result] if self.prediction.result else [])

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "drift_detected": self.status == "drift",
            "message": self.message,
            "grace_expired": self.grace_expired,
            "freshness": self.freshness,
            "generated_at": self.generated_at,
            "reference": self.reference,
            "current": self.current,
            "thresholds": self.thresholds,
            "drifted_features": self.drifted_features,
            "features": {
                item.feature: {k: v for k, v in asdict(item).items() if k != "feature"}
                for item in self.features
            },
            PREDICTION: self.prediction.to_json(),
        }


# --- reading the data ---------------------------------------------------------------------------------------
def read_reference(path: Path, contract: Contract) -> pd.DataFrame:
    if not path.is_file():
        raise ValueError(f"{path} does not exist: build the training split first (make features)")
    return model_inputs(read_table(str(path), contract), str(path), contract)


# --- statistics ---------------------------------------------------------------------------------------------
def population_stability_index(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """PSI = sum((current - reference) * ln(current / reference)) over bins; 0: identical distributions."""
    reference = np.clip(np.asarray(reference_shares, dtype=float), _EMPTY_BIN_SHARE, None)
    current = np.clip(np.asarray(current_shares, dtype=float), _EMPTY_BIN_SHARE, None)
    return float(np.sum((current - reference) * np.log(current / reference)))


def quantile_bin_counts(
    reference: np.ndarray, current: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each sample in bins cut at the reference quantiles (open-ended first and last bins).

    A value that holds a bin's share of the reference or more (the 0 of a 0/1 flag or of a zero-inflated
    count) gets a bin of its own, as does every value when the reference has no more distinct values than
    bins: quantile edges alone would merge such a value with its neighbours, or collapse to one bin, and
    hide a shift of its share. The gaps between those values are bins too, so a value the reference never
    took counts.
    """
    if reference.size == 0:
        return np.array([reference.size]), np.array([current.size])
    values, counts = np.unique(reference, return_counts=True)
    heavy = values if values.size <= bins else values[counts >= reference.size / bins]
    quantiles = np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]) if values.size > bins else []
    # [v, next float after v) holds v alone (np.histogram's bins are half-open, the last one closed).
    inner_edges = np.unique(np.concatenate([quantiles, heavy, np.nextafter(heavy, np.inf)]))
    edges = np.concatenate(([-np.inf], inner_edges, [np.inf]))
    return np.histogram(reference, edges)[0], np.histogram(current, edges)[0]


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def _missing_test(ref_missing: int, ref_total: int, cur_missing: int, cur_total: int) -> float | None:
    """p-value of the chi-square test of the missing shares (None when neither sample misses a value)."""
    if ref_missing + cur_missing == 0:
        return None
    table = np.array([[ref_missing, ref_total - ref_missing], [cur_missing, cur_total - cur_missing]])
    if (table.sum(axis=0) == 0).any():  # every value missing in both samples: nothing differs
        return 1.0
    return float(stats.chi2_contingency(table)[1])


def numeric_drift(
    name: str, reference: pd.Series, current: pd.Series, settings: DriftSettings
) -> FeatureDrift:
    ref_all, cur_all = reference.to_numpy(float), current.to_numpy(float)
    ref, cur = ref_all[~np.isnan(ref_all)], cur_all[~np.isnan(cur_all)]
    ref_missing, cur_missing = ref_all.size - ref.size, cur_all.size - cur.size
    # The value bins plus a bin of missing values: PSI sees a moved distribution and a moved missing share.
    ref_counts, cur_counts = quantile_bin_counts(ref, cur, settings.bins)
    psi = population_stability_index(
        _shares(np.append(ref_counts, ref_missing)), _shares(np.append(cur_counts, cur_missing))
    )
    if ref.size and cur.size:
        ks = stats.ks_2samp(ref, cur)
        statistic, p_value = float(ks.statistic), float(ks.pvalue)
    else:
        statistic, p_value = 0.0, 1.0
    missing_p = _missing_test(ref_missing, ref_all.size, cur_missing, cur_all.size)
    return FeatureDrift(
        feature=name,
        kind="numeric",
        psi=round(psi, 6),
        test="ks",
        statistic=round(statistic, 6),
        p_value=p_value,
        drifted=_drifted(psi, min(p_value, 1.0 if missing_p is None else missing_p), settings),
        missing_share=_missing_shares(ref_missing, ref_all.size, cur_missing, cur_all.size),
        missing_p_value=missing_p,
        reference_summary=_numeric_summary(ref),
        current_summary=_numeric_summary(cur),
    )


def categorical_drift(
    name: str, reference: pd.Series, current: pd.Series, settings: DriftSettings, known: Sequence[str] = ()
) -> FeatureDrift:
    """Category counts with missing values as the category MISSING_CATEGORY; `known` orders the categories."""
    ref_counts = reference.fillna(MISSING_CATEGORY).astype(str).value_counts()
    cur_counts = current.fillna(MISSING_CATEGORY).astype(str).value_counts()
    seen = set(ref_counts.index) | set(cur_counts.index)
    categories = [c for c in known if c in seen]
    categories += sorted(seen - set(categories) - {MISSING_CATEGORY})
    categories += [MISSING_CATEGORY] if MISSING_CATEGORY in seen else []
    table = np.array([[ref_counts.get(c, 0) for c in categories], [cur_counts.get(c, 0) for c in categories]])
    psi = population_stability_index(_shares(table[0]), _shares(table[1]))
    if len(categories) > 1 and table[0].sum() and table[1].sum():
        chi2, p_value = (float(value) for value in stats.chi2_contingency(table)[:2])
    else:
        chi2, p_value = 0.0, 1.0
    ref_missing, cur_missing = (
        int(ref_counts.get(MISSING_CATEGORY, 0)),
        int(cur_counts.get(MISSING_CATEGORY, 0)),
    )
    return FeatureDrift(
        feature=name,
        kind="categorical",
        psi=round(psi, 6),
        test="chi2",
        statistic=round(chi2, 6),
        p_value=p_value,
        drifted=_drifted(psi, p_value, settings),
        missing_share=_missing_shares(ref_missing, len(reference), cur_missing, len(current)),
        missing_p_value=_missing_test(ref_missing, len(reference), cur_missing, len(current)),
        reference_summary=_share_summary(table[0], categories),
        current_summary=_share_summary(table[1], categories),
    )


def prediction_drift(
    expected_shares: Mapping[str, float],
    buckets: Sequence[str],
    settings: DriftSettings,
    order: Sequence[str] = (),
) -> FeatureDrift:
    """Bucket shares of `buckets` against the expected shares: PSI and the chi-square goodness-of-fit test.

    `order` lists the buckets in report order (the model's buckets); others follow, sorted.
    """
    counts_by_bucket = pd.Series(list(buckets), dtype=object).value_counts()
    categories = [bucket for bucket in order if bucket in expected_shares]
    categories += sorted((set(expected_shares) | set(counts_by_bucket.index)) - set(categories))
    counts = np.array([counts_by_bucket.get(bucket, 0) for bucket in categories], dtype=float)
    expected = np.array([expected_shares.get(bucket, 0.0) for bucket in categories], dtype=float)
    expected = _shares(np.clip(expected, _EMPTY_BIN_SHARE, None))
    psi = population_stability_index(expected, _shares(counts))
    if len(categories) > 1 and counts.sum():
        result = stats.chisquare(counts, expected * counts.sum())
        chi2, p_value = float(result.statistic), float(result.pvalue)
    else:
        chi2, p_value = 0.0, 1.0
    return FeatureDrift(
        feature=PREDICTION,
        kind="prediction",
        psi=round(psi, 6),
        test="chi2",
        statistic=round(chi2, 6),
        p_value=p_value,
        drifted=_drifted(psi, p_value, settings),
        reference_summary={
            bucket: round(float(expected_shares.get(bucket, 0.0)), 4) for bucket in categories
        },
        current_summary=_share_summary(counts, categories),
    )


def _drifted(psi: float, p_value: float, settings: DriftSettings) -> bool:
    return bool(psi >= settings.psi_threshold and p_value < settings.p_value_threshold)


def _missing_shares(ref_missing: int, ref_total: int, cur_missing: int, cur_total: int) -> dict[str, float]:
    return {
        "reference": round(ref_missing / ref_total, 4) if ref_total else 0.0,
        "current": round(cur_missing / cur_total, 4) if cur_total else 0.0,
    }


def _numeric_summary(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {}
    quartiles = np.quantile(values, [0.25, 0.5, 0.75])
    return {
        "mean": round(float(values.mean()), 4),
        "p25": round(float(quartiles[0]), 4),
        "median": round(float(quartiles[1]), 4),
        "p75": round(float(quartiles[2]), 4),
    }


def _share_summary(counts: np.ndarray, categories: Sequence[str]) -> dict[str, float]:
    shares = _shares(np.asarray(counts, dtype=float))
    return {str(category): round(float(share), 4) for category, share in zip(categories, shares, strict=True)}


# --- the predictions ----------------------------------------------------------------------------------------
def read_served_metadata(model_dir: Path) -> ModelMetadata | None:
    """The metadata of the model whose predictions are judged (None when there is no model yet)."""
    if not (model_dir / METADATA_FILE).is_file():
        return None
    return read_metadata(model_dir)


def check_predictions(
    current: CurrentData, metadata: ModelMetadata | None, settings: DriftSettings, contract: Contract
) -> PredictionCheck:
    """Judge the bucket shares of the logged predictions of the model, or of the model's scores of a table."""
    if metadata is None:
        return PredictionCheck(
            False, f"no model in {settings.model_dir} (train and promote one: make pipeline)"
        )
    version = metadata.model_version
    if current.buckets is not None and current.model_versions is not None:
        mask = (current.model_versions == version).to_numpy()
        buckets = [str(bucket) for bucket in current.buckets[mask] if bucket is not None]
        note = f"the logged predictions of model {version}"
        if len(buckets) < len(current):
            others = sorted({str(v) for v in current.model_versions[~mask] if v is not None})
            left_out = len(current) - len(buckets)
            note += f" ({left_out} records of other models left out: {', '.join(others) or '-'})"
    else:
        try:
            model = load_onnx_model(settings.model_dir, contract)
            buckets = model.predict_columns(input_columns_of(current.inputs, contract)).buckets
        except (ModelArtifactError, ValueError) as error:
            return PredictionCheck(
                False, f"could not score the current records with {settings.model_dir}: {error}"
            )
        note = f"the predictions of model {version} ({settings.model_dir}) for the current records"
    if len(buckets) < settings.min_records:
        return PredictionCheck(
            False, f"{note}: {len(buckets)} records, fewer than {settings.min_records}", version, len(buckets)
        )
    baseline = metadata.monitoring
    result = prediction_drift(baseline.expected_shares, buckets, settings, order=baseline.buckets)
    return PredictionCheck(True, note, version, len(buckets), result)


# --- the check ----------------------------------------------------------------------------------------------
def no_data_hint(makefile: Path = Path("Makefile")) -> str:
    """How to get current data: pull the deployed service's logs when the project can, else pass a file."""
    text = makefile.read_text(encoding="utf-8") if makefile.is_file() else ""
    if re.search(r"^drift-pull\s*:", text, re.MULTILINE):
        return "pull the inference logs (make drift-pull) or pass --current <file>"
    return "or pass --current <file> (a CSV / Parquet table or a JSONL inference log of model inputs)"


def deployed_at(registry: Path) -> tuple[str | None, datetime | None]:
    """(model version, promotion time) of the champion in models/registry.json; (None, None) without one."""
    if not registry.is_file():
        return None, None
    try:
        payload = json.loads(registry.read_text(encoding="utf-8"))
        champion = payload.get("champion")
        entries = [entry for entry in payload.get("history", []) if entry.get("model_version") == champion]
        stamp = datetime.fromisoformat(str(entries[-1]["promoted_at"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, IndexError, AttributeError, TypeError):
        return None, None
    return champion, stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def freshness(current: CurrentData, settings: DriftSettings, now: datetime) -> dict[str, Any]:
    """The newest record's time and age, the champion's promotion time, whether the grace period is over."""
    version, promoted = deployed_at(settings.registry)
    newest = current.newest
    days_deployed = (now - promoted).total_seconds() / 86_400 if promoted else None
    return {
        "newest_record_at": newest.isoformat(timespec="seconds") if newest else None,
        "newest_record_age_seconds": round((now - newest).total_seconds()) if newest else None,
        "champion": version,
        "promoted_at": promoted.isoformat(timespec="seconds") if promoted else None,
        "no_data_grace_days": settings.no_data_grace_days,
        "grace_expired": days_deployed is not None and days_deployed > settings.no_data_grace_days,
    }


def detect_drift(
    reference: pd.DataFrame,
    current: CurrentData,
    settings: DriftSettings,
    current_source: str,
    contract: Contract,
    metadata: ModelMetadata | None = None,
    now: datetime | None = None,
) -> DriftReport:
    now = now or datetime.now(UTC)
    fresh = freshness(current, settings, now)
    base: dict[str, Any] = {
        "freshness": fresh,
        "generated_at": now.isoformat(timespec="seconds"),
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
            f"{no_data_hint()}."
        )
        age = fresh["newest_record_age_seconds"]
        newest = (
            f"the newest record is {age / 86_400:.1f} days old" if age is not None else "no record at all"
        )
        if fresh["grace_expired"]:
            message = (
                f"the inference log stopped arriving: {len(current)} records in {current_source} and "
                f"{newest}, {settings.no_data_grace_days} days (drift.no_data_grace_days) after model "
                f"{fresh['champion']} was promoted on {fresh['promoted_at']} (docs/runbooks/drift.md). "
                + message
            )
        else:
            message += f" ({newest}; a failure once drift.no_data_grace_days have passed since the promotion)"
        skipped = PredictionCheck(False, "not enough current data")
        return DriftReport(
            status="no_data", message=message, drifted_features=[], features=[], prediction=skipped, **base
        )
    features = [
        numeric_drift(name, reference[name], current.inputs[name], settings)
        if column.is_numeric
        else categorical_drift(name, reference[name], current.inputs[name], settings, column.categories)
        for name, column in contract.columns.items()
    ]
    prediction = check_predictions(current, metadata, settings, contract)
    drifted = [item.feature for item in features if item.drifted]
    findings = [f"drift on {', '.join(drifted)}"] if drifted else []
    findings += (
        ["prediction drift (bucket shares moved from the model's test split)"] if prediction.drifted else []
    )
    if findings:
        message = "; ".join(findings)
    else:
        checked = (
            "and the predictions" if prediction.checked else f"(predictions not checked: {prediction.note})"
        )
        message = f"no drift on {len(features)} inputs {checked}"
    return DriftReport(
        status="drift" if findings else "no_drift",
        message=message,
        drifted_features=drifted,
        features=features,
        prediction=prediction,
        **base,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare current model inputs and predictions with training."
    )
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
    parser.add_argument(
        "--model-dir",
        type=Path,
        help=f"the served model, for prediction drift (default: {DEFAULT_MODEL_DIR})",
    )
    args = parser.parse_args(argv)

    try:
        contract = load_contract()
        settings = DriftSettings.from_params(args.params)
        settings = replace(
            settings,
            reference=args.reference or settings.reference,
            current=args.current or settings.current,
            output_dir=args.output_dir or settings.output_dir,
            model_dir=args.model_dir or settings.model_dir,
        )
        reference = read_reference(settings.reference, contract)
        current = read_current(settings.current, settings.window_days, contract=contract)
        metadata = read_served_metadata(settings.model_dir)
    except (OSError, ValueError, ModelArtifactError) as error:
        print(f"drift: {error}", file=sys.stderr)
        return EXIT_NO_DATA
    report = detect_drift(reference, current, settings, str(settings.current), contract, metadata)
    json_path, html_path = write_reports(report, reference, current.inputs, settings.output_dir)
    print(f"drift: {report.message}\n  report: {json_path} and {html_path}")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
