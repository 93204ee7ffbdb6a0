"""The `evaluate` stage: score the trained model on the test split and write the reports the gate reads.

reports/metrics.json       model and baseline metrics, the improvement over the baseline, metrics per slice
reports/plots/roc.json     ROC curve points (a DVC plot), reports/plots/confusion.csv (a DVC confusion plot)
reports/permutation_importance.json and PNG figures in reports/plots/
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
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, roc_curve

from .artifacts import ModelArtifact, load_model, write_json
from .contract import TARGET
from .features import FEATURE_NAMES
from .metrics import classification_metrics
from .params import Params, load_params
from .tracking import get_tracker
from .train import matrix_of

DEFAULT_REPORTS_DIR = Path("reports")


def baseline_scores(
    train_frame: pd.DataFrame, test_frame: pd.DataFrame, feature: str, seed: int
) -> np.ndarray:
    """Scores of a one-feature logistic regression: what the model must clearly beat to be worth serving."""
    if feature not in FEATURE_NAMES:
        raise ValueError(f"evaluate.baseline_feature {feature!r} is not one of {', '.join(FEATURE_NAMES)}")
    column = FEATURE_NAMES.index(feature)
    baseline = LogisticRegression(random_state=seed)
    baseline.fit(matrix_of(train_frame)[:, [column]], train_frame[TARGET].to_numpy())
    return np.asarray(baseline.predict_proba(matrix_of(test_frame)[:, [column]])[:, 1])


def slice_metrics(
    test_frame: pd.DataFrame, scores: np.ndarray, column: str, threshold: float
) -> dict[str, dict[str, float]]:
    """Metrics per value of `column`, to catch a model that is good on average and bad for one segment."""
    result = {}
    for value in sorted(test_frame[column].astype(str).unique()):
        mask = (test_frame[column].astype(str) == value).to_numpy()
        metrics = classification_metrics(test_frame[TARGET].to_numpy()[mask], scores[mask], threshold)
        result[value] = {"rows": int(mask.sum()), **metrics}
    return result


def _plot_roc(fpr: np.ndarray, tpr: np.ndarray, roc_auc: float | None, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(fpr, tpr, label=f"model (ROC AUC {roc_auc:.3f})" if roc_auc is not None else "model")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_confusion(matrix: np.ndarray, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center")
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xlabel="Predicted",
        ylabel="Actual",
        title="Confusion matrix (test split)",
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_importance(importance: dict[str, dict[str, float]], path: Path) -> None:
    names = list(importance)[::-1]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(names) + 1))
    axes.barh(
        names,
        [importance[name]["mean"] for name in names],
        xerr=[importance[name]["std"] for name in names],
    )
    axes.set(xlabel="Drop in ROC AUC when the feature is shuffled", title="Permutation importance")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def evaluate(
    model: ModelArtifact,
    train_frame: pd.DataFrame,
    test_frame: pd.DataFrame,
    params: Params,
    reports_dir: Path,
) -> dict[str, Any]:
    """Write every report into reports_dir and return the metrics (also in reports_dir/metrics.json)."""
    plots_dir = reports_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    y_true = test_frame[TARGET].to_numpy()
    matrix = matrix_of(test_frame)
    scores = model.score_matrix(matrix)
    threshold = model.threshold

    model_metrics = classification_metrics(y_true, scores, threshold)
    baseline = classification_metrics(
        y_true,
        baseline_scores(train_frame, test_frame, params.evaluate.baseline_feature, params.model.seed),
        threshold,
    )
    metrics: dict[str, Any] = {
        "model_version": model.model_version,
        "test_rows": len(test_frame),
        "model": model_metrics,
        "baseline": {"feature": params.evaluate.baseline_feature, **baseline},
        "improvement_over_baseline": {
            "roc_auc": round(model_metrics.get("roc_auc", 0.0) - baseline.get("roc_auc", 0.0), 6)
        },
        "slices": {
            params.evaluate.slice_by: slice_metrics(test_frame, scores, params.evaluate.slice_by, threshold)
        },
    }
    write_json(reports_dir / "metrics.json", metrics)

    fpr, tpr, _ = roc_curve(y_true, scores)
    write_json(
        plots_dir / "roc.json",
        {
            "roc": [
                {"fpr": round(float(f), 6), "tpr": round(float(t), 6)} for f, t in zip(fpr, tpr, strict=True)
            ]
        },
    )
    _plot_roc(fpr, tpr, model_metrics.get("roc_auc"), plots_dir / "roc.png")
    predicted = model.predict(scores)
    pd.DataFrame({"actual": y_true, "predicted": predicted}).to_csv(plots_dir / "confusion.csv", index=False)
    _plot_confusion(confusion_matrix(y_true, predicted, labels=[0, 1]), plots_dir / "confusion_matrix.png")

    result = permutation_importance(
        model.estimator,
        matrix,
        y_true,
        scoring="roc_auc",
        n_repeats=params.evaluate.permutation_repeats,
        random_state=params.model.seed,
    )
    importance = {
        name: {"mean": round(float(mean), 6), "std": round(float(std), 6)}
        for mean, std, name in sorted(
            zip(result.importances_mean, result.importances_std, FEATURE_NAMES, strict=True), reverse=True
        )
    }
    write_json(reports_dir / "permutation_importance.json", importance)
    _plot_importance(importance, plots_dir / "permutation_importance.png")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the trained model on the test split.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--reports-dir", type=Path, default=DEFAULT_REPORTS_DIR)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    model = load_model(args.model_dir)
    metrics = evaluate(
        model,
        pd.read_parquet(args.data_dir / "train.parquet"),
        pd.read_parquet(args.data_dir / "test.parquet"),
        params,
        args.reports_dir,
    )
    get_tracker(params.tracking).log_evaluation(
        model.metadata.get("tracking", {}), metrics, args.reports_dir / "plots"
    )
    model_metrics, baseline = metrics["model"], metrics["baseline"]
    print(
        f"{model.model_version}: roc_auc {model_metrics.get('roc_auc', float('nan')):.4f} "
        f"(baseline {baseline.get('roc_auc', float('nan')):.4f}), f1 {model_metrics['f1']:.4f}, "
        f"brier {model_metrics['brier']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
