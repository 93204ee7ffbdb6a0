"""The `evaluate` stage: score the trained model on the test split and write the reports the gate reads.

reports/metrics.json                  the task's metrics for the model and its baseline, the improvement
                                      on the gate's metric, and metrics per slice (evaluate.slice_by)
reports/permutation_importance.json   drop of the gate's metric when each feature is shuffled
reports/plots/                        per task: ROC curve (binary), confusion matrix (classification),
                                      predicted vs actual (regression), permutation importance
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import confusion_matrix, roc_curve

from ..contract import Contract, load_contract
from ..metadata import write_json
from ..params import Params, load_params
from ..scoring.features import MISSING_CATEGORY
from ..tables.files import input_columns_of
from ..tracking import TrackingError, get_tracker
from ..training.artifacts import EstimatorModel, load_model
from ..training.estimators import baseline_output, encode_target
from ..training.metrics import LOWER_IS_BETTER, task_metrics

DEFAULT_REPORTS_DIR = Path("reports")
MAX_AUTO_SLICE_VALUES = 20
# scikit-learn scorer of each metric a gate may use, for permutation importance
SCORERS = {
    "roc_auc": "roc_auc",
    "pr_auc": "average_precision",
    "macro_f1": "f1_macro",
    "accuracy": "accuracy",
    "r2": "r2",
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "log_loss": "neg_log_loss",
    "brier": "neg_brier_score",
}


def slice_columns(contract: Contract, params: Params) -> tuple[str, ...]:
    """evaluate.slice_by, or (auto) every categorical input with at most MAX_AUTO_SLICE_VALUES categories."""
    if params.evaluate.slice_by is None:
        return tuple(
            name
            for name, column in contract.categorical.items()
            if len(column.categories) <= MAX_AUTO_SLICE_VALUES
        )
    unknown = [name for name in params.evaluate.slice_by if name not in contract.columns]
    if unknown:
        raise ValueError(
            f"evaluate.slice_by names {', '.join(unknown)}, which are not inputs of the contract"
        )
    return params.evaluate.slice_by


def slice_metrics(
    test_frame: pd.DataFrame, y: np.ndarray, output: np.ndarray, column: str, model: EstimatorModel
) -> dict[str, dict[str, float]]:
    """Metrics per value of `column`, to catch a model that is good on average and bad for one segment.

    Each slice reports its rows; a multiclass slice is scored over the classes present in it (macro F1 and the
    recalls of the classes it holds), so a slice of one class, all predicted right, is not marked down.
    """
    values = test_frame[column].astype(object).where(test_frame[column].notna(), MISSING_CATEGORY).astype(str)
    if model.features.contract.columns[column].is_numeric and values.nunique() > MAX_AUTO_SLICE_VALUES:
        values = pd.qcut(pd.to_numeric(test_frame[column], errors="coerce"), 4, duplicates="drop").astype(str)
    result = {}
    for value in sorted(values.unique()):
        mask = (values == value).to_numpy()
        metrics = task_metrics(
            model.metadata.task,
            y[mask],
            output[mask],
            model.metadata.classes,
            _threshold(model),
            present_only=True,
        )
        result[value] = {"rows": int(mask.sum()), **metrics}
    return result


def _threshold(model: EstimatorModel) -> float:
    return model.metadata.threshold if model.metadata.threshold is not None else 0.5


def improvement(metric: str, model_metrics: dict[str, float], baseline: dict[str, float]) -> float | None:
    """The share of the baseline's error on `metric` that the model removes: 0 no better, 1 perfect.

    Error is 1 - metric for the metrics whose best value is 1 (ROC AUC, F1, R², accuracy), the metric itself
    for those whose best is 0 (RMSE, MAE, Brier, log loss), so one threshold means the same on any dataset.
    """
    if metric not in model_metrics or metric not in baseline:
        return None
    if metric in LOWER_IS_BETTER:
        model_error, baseline_error = model_metrics[metric], baseline[metric]
    else:
        model_error, baseline_error = 1.0 - model_metrics[metric], 1.0 - baseline[metric]
    if baseline_error <= 0:
        return 0.0
    return round((baseline_error - model_error) / baseline_error, 6)


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_plots(model: EstimatorModel, y: np.ndarray, output: np.ndarray, plots_dir: Path) -> None:
    task = model.metadata.task
    if task == "binary":
        fpr, tpr, _ = roc_curve(y, output[:, 1])
        points = [
            {"fpr": round(float(f), 6), "tpr": round(float(t), 6)} for f, t in zip(fpr, tpr, strict=True)
        ]
        write_json(plots_dir / "roc.json", {"roc": points})
        figure, axes = plt.subplots(figsize=(5, 5))
        axes.plot(fpr, tpr, label="model")
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
        axes.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve (test split)")
        axes.legend(loc="lower right")
        _save(figure, plots_dir / "roc.png")
    if task == "regression":
        pd.DataFrame({"actual": y, "predicted": output}).to_csv(plots_dir / "predictions.csv", index=False)
        figure, axes = plt.subplots(figsize=(5, 5))
        axes.scatter(y, output, s=6, alpha=0.4)
        low, high = float(min(y.min(), output.min())), float(max(y.max(), output.max()))
        axes.plot([low, high], [low, high], linestyle="--", color="grey")
        axes.set(xlabel="Actual", ylabel="Predicted", title="Predicted vs actual (test split)")
        _save(figure, plots_dir / "predicted_vs_actual.png")
        return
    labels = [str(label) for label in model.metadata.classes]
    predicted = np.asarray(
        [
            model.metadata.classes.index(r["predicted_class"])
            for r in model.outputs.from_output(output).records
        ]
    )
    pd.DataFrame({"actual": [labels[i] for i in y], "predicted": [labels[i] for i in predicted]}).to_csv(
        plots_dir / "confusion.csv", index=False
    )
    matrix = confusion_matrix(y, predicted, labels=list(range(len(labels))))
    figure, axes = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 2))
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center")
    positions = list(range(len(labels)))
    axes.set(
        xticks=positions,
        yticks=positions,
        xticklabels=labels,
        yticklabels=labels,
        xlabel="Predicted",
        ylabel="Actual",
        title="Confusion matrix (test split)",
    )
    _save(figure, plots_dir / "confusion_matrix.png")


def importance(
    model: EstimatorModel, matrix: np.ndarray, y: np.ndarray, metric: str, params: Params
) -> dict[str, Any]:
    result = permutation_importance(
        model.estimator,
        matrix,
        y,
        scoring=SCORERS.get(metric),
        n_repeats=params.evaluate.permutation_repeats,
        random_state=params.model.seed,
    )
    ranked = sorted(
        zip(result.importances_mean, result.importances_std, model.features.names, strict=True),
        key=lambda item: item[0],
        reverse=True,
    )
    return {name: {"mean": round(float(mean), 6), "std": round(float(std), 6)} for mean, std, name in ranked}


def evaluate(
    model: EstimatorModel,
    train_frame: pd.DataFrame,
    test_frame: pd.DataFrame,
    params: Params,
    reports_dir: Path,
) -> dict[str, Any]:
    """Write every report into reports_dir and return the metrics (also in reports_dir/metrics.json)."""
    contract, metadata = model.features.contract, model.metadata
    plots_dir = reports_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    target = contract.target.column
    y_train = encode_target(train_frame[target].to_numpy(), metadata.task, contract.target.classes)
    y = encode_target(test_frame[target].to_numpy(), metadata.task, contract.target.classes)
    train_matrix = model.features.matrix(input_columns_of(train_frame, contract))
    matrix = model.features.matrix(input_columns_of(test_frame, contract))
    output = model.raw_output(matrix)

    model_metrics = task_metrics(metadata.task, y, output, metadata.classes, _threshold(model))
    baseline_raw, baseline_description = baseline_output(
        metadata.task,
        train_matrix,
        y_train,
        matrix,
        model.features.names,
        params.evaluate.baseline_feature,
        params.model.seed,
    )
    baseline = task_metrics(metadata.task, y, baseline_raw, metadata.classes, _threshold(model))
    metric = params.gate(metadata.task).metric
    metrics: dict[str, Any] = {
        "model_version": metadata.model_version,
        "task": metadata.task,
        "test_rows": len(test_frame),
        "gate_metric": metric,
        "model": model_metrics,
        "baseline": {"description": baseline_description, **baseline},
        "improvement_over_baseline": {metric: improvement(metric, model_metrics, baseline)},
        "slices": {
            column: slice_metrics(test_frame, y, output, column, model)
            for column in slice_columns(contract, params)
        },
    }
    write_json(reports_dir / "metrics.json", metrics)
    write_plots(model, y, output, plots_dir)

    ranked = importance(model, matrix, y, metric, params)
    write_json(reports_dir / "permutation_importance.json", ranked)
    names = list(ranked)[:25][::-1]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(names) + 1))
    axes.barh(names, [ranked[name]["mean"] for name in names], xerr=[ranked[name]["std"] for name in names])
    axes.set(xlabel=f"Drop in {metric} when the feature is shuffled", title="Permutation importance")
    _save(figure, plots_dir / "permutation_importance.png")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the trained model on the test split.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--reports-dir", type=Path, default=DEFAULT_REPORTS_DIR)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    model = load_model(args.model_dir, load_contract())
    metrics = evaluate(
        model,
        pd.read_parquet(args.data_dir / "train.parquet"),
        pd.read_parquet(args.data_dir / "test.parquet"),
        params,
        args.reports_dir,
    )
    try:
        get_tracker(params.tracking).log_evaluation(
            model.metadata.tracking, metrics, args.reports_dir / "plots"
        )
    except TrackingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    metric = metrics["gate_metric"]
    print(
        f"{model.model_version}: {metric} {metrics['model'].get(metric, float('nan')):.4f} "
        f"(baseline {metrics['baseline'].get(metric, float('nan')):.4f}: "
        f"{metrics['baseline']['description']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
