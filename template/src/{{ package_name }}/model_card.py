"""Write the model card (docs/model-card.md) of the champion: `make model-card`.

The facts come from the artifacts the pipeline wrote and the contract, so the card never disagrees with them:
models/champion/metadata.json (version, task, provenance, parameters, training ranges, imputation),
contract.yaml (what each input means and accepts), reports/metrics.json (test metrics, the baseline, slices)
and reports/gate.json (the quality-gate decision). So is the prose that depends on the task and the contract
(what a prediction is, what the metrics and slices mean, the limits every model of the task has): it is
written here ($task_summary, $metrics_note, $slices_note, $task_limitations), so a card never speaks of
probabilities for a regression model. The rest of the prose (intended use, limitations, ethical
considerations: the blocks marked team-owned) is the team's: edit docs/model-card.template.md, whose `$name`
placeholders this module fills in (write `$$` for a literal dollar sign).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

from .contract import Contract, ContractError, load_contract
from .metadata import ModelArtifactError, ModelMetadata, read_metadata

METRIC_ORDER = (
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "f1",
    "precision",
    "recall",
    "positive_rate",
    "predicted_positive_rate",
    "macro_f1",
    "accuracy",
    "rmse",
    "mae",
    "r2",
)


class ModelCardError(RuntimeError):
    """An input of the card is missing."""


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def _metric_names(*metric_sets: Mapping[str, Any]) -> list[str]:
    present = {
        name for metrics in metric_sets for name in metrics if isinstance(metrics.get(name), int | float)
    }
    return [name for name in METRIC_ORDER if name in present] + sorted(present - set(METRIC_ORDER) - {"rows"})


def metrics_table(model: Mapping[str, Any], baseline: Mapping[str, Any]) -> str:
    names = _metric_names(model, baseline)
    return markdown_table(
        ["metric", "model", f"baseline ({baseline.get('description', 'n/a')})"],
        [[name, model.get(name, "n/a"), baseline.get(name, "n/a")] for name in names],
    )


def slices_table(slices: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    if not slices:
        return "No slice metrics in reports/metrics.json."
    rows, names = [], []
    for column, groups in slices.items():
        names = _metric_names(*groups.values())
        rows += [
            [f"{column}={value}", metrics.get("rows", "n/a"), *(metrics.get(n, "n/a") for n in names)]
            for value, metrics in groups.items()
        ]
    return markdown_table(["slice", "rows", *names], rows)


def inputs_table(metadata: ModelMetadata, contract: Contract) -> str:
    rows = []
    for name, column in contract.columns.items():
        if column.dtype == "category":
            accepted, seen = ", ".join(column.categories), "all categories"
        else:
            low = "-inf" if column.minimum is None else column.minimum
            high = "inf" if column.maximum is None else column.maximum
            accepted = f"{low} .. {high}"
            ranges = metadata.training_ranges.get(name)
            seen = f"{ranges[0]} .. {ranges[1]}" if ranges else "n/a"
        if column.nullable:
            filled = metadata.imputation.get(name)
            how = f"filled with {filled}" if filled is not None else "own category"
            accepted += f"; missing allowed ({how})"
        rows.append([name, column.dtype, accepted, seen, column.description])
    return markdown_table(["input", "type", "contract accepts", "seen in training", "meaning"], rows)


def gate_table(gate: Mapping[str, Any]) -> str:
    checks = gate.get("checks", [])
    if not checks:
        return "No quality-gate report (reports/gate.json)."
    rows = [[c["name"], c["value"], c["limit"], "pass" if c["passed"] else "FAIL"] for c in checks]
    return markdown_table(["check", "value", "limit", "result"], rows)


def task_summary(contract: Contract, threshold: float | None) -> str:
    """What one prediction is, for the contract's task and target."""
    target = contract.target
    if target.task == "binary":
        cut = f" {threshold}" if threshold is not None else ""
        return (
            f"Binary classification. The score is the probability that `{target.column}` is "
            f"`{target.positive_class}`; `{target.positive_class}` is predicted when the score is at least "
            f"the decision threshold{cut}."
        )
    if target.task == "multiclass":
        return (
            f"Multiclass classification of `{target.column}` into {len(target.classes)} classes: the "
            "predicted class is the most probable one, and every class gets a probability."
        )
    return f"Regression: predicts the value of `{target.column}`. {_range_sentence(contract)}"


def _range_sentence(contract: Contract) -> str:
    low, high = contract.target.minimum, contract.target.maximum
    if low is None and high is None:
        return "The contract sets no range of the target, so predictions are not bounded."
    bounds = f"{'-inf' if low is None else f'{low:g}'} to {'inf' if high is None else f'{high:g}'}"
    return (
        f"Predictions are clipped to the target's range in the contract, {bounds}; the service counts "
        "the clipped ones (`model_predictions_clipped_total`)."
    )


METRICS_NOTES = {
    "binary": (
        "ROC AUC and PR AUC measure how well the score ranks positives above negatives; the Brier score and "
        "the log loss how close the probabilities are to the outcomes; F1, precision and recall are measured "
        "at the decision threshold."
    ),
    "multiclass": (
        "Macro F1 weighs every class the same, however rare; accuracy is the share of rows predicted right; "
        "the log loss measures the probabilities; recall_<class> is the share of each class found."
    ),
    "regression": (
        "RMSE and MAE are in the units of the target (RMSE weighs large errors more); R² is the share of the "
        "target's variance the model explains (0: no better than predicting the mean)."
    ),
}

SLICE_NOTES = {
    "binary": "A metric undefined on a slice (ROC AUC of a slice holding one class) is left out.",
    "multiclass": (
        "A slice is scored over the classes present in it: macro F1 and the recalls of the classes it "
        "holds, so a slice of one class is not marked down for the classes it does not have."
    ),
    "regression": "R² is left out of a slice of one row.",
}

LIMITATION_NOTES = {
    "binary": (
        "The probabilities are calibrated on the training period: a change in the population degrades them "
        "(the Brier score) before the ranking (ROC AUC) shows it."
    ),
    "multiclass": (
        "Classes rare in the training data are predicted least reliably: read their recall above, not the "
        "accuracy alone."
    ),
    "regression": (
        "Errors are largest where the training data is thin, at the extremes of the target; a prediction "
        "says nothing about its own uncertainty."
    ),
}


def slices_note(contract: Contract) -> str:
    return (
        "Metrics per value of each sliced input (evaluate.slice_by), with the rows of each slice: the "
        f"metrics of a small slice are noisy. {SLICE_NOTES[contract.task]}"
    )


def task_limitations(contract: Contract) -> str:
    inputs = len(contract.input_columns)
    lines = [
        f"- The model sees only the {inputs} inputs of the contract (below): anything else that drives "
        f"`{contract.target.column}` is invisible to it.",
        "- Inputs outside the ranges seen in training are extrapolated (the service counts them: "
        "`model_input_out_of_range_total`).",
        f"- {LIMITATION_NOTES[contract.task]}",
    ]
    if contract.task == "regression":
        lines.append(f"- {_range_sentence(contract)}")
    return "\n".join(lines)


def card_values(
    metadata: ModelMetadata, contract: Contract, metrics: Mapping[str, Any], gate: Mapping[str, Any]
) -> dict[str, str]:
    model_params = metadata.params.get("model", {})
    model_metrics = metrics.get("model", metadata.metrics)
    shares = ", ".join(
        f"{bucket} {share:.1%}" for bucket, share in metadata.monitoring.expected_shares.items()
    )
    return {
        "model_version": metadata.model_version,
        "task": metadata.task,
        "target": metadata.target,
        "target_description": contract.target.description or metadata.target,
        "classes": ", ".join(str(label) for label in metadata.classes) or "n/a (regression)",
        "trained_at": metadata.trained_at,
        "git_sha": metadata.git_sha,
        "data_hash": metadata.data_hash,
        "training_rows": str(metadata.training_rows),
        "test_rows": str(metrics.get("test_rows", "n/a")),
        "model_type": str(model_params.get("type", "n/a")),
        "threshold": str(metadata.threshold if metadata.threshold is not None else "n/a"),
        "task_summary": task_summary(contract, metadata.threshold),
        "metrics_note": METRICS_NOTES[contract.task],
        "slices_note": slices_note(contract),
        "task_limitations": task_limitations(contract),
        "prediction_shares": shares,
        "metrics_table": metrics_table(model_metrics, metrics.get("baseline", {})),
        "slices_table": slices_table(metrics.get("slices", {})),
        "inputs_table": inputs_table(metadata, contract),
        "gate_table": gate_table(gate),
    }


def _read_json(path: Path, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise ModelCardError(f"{path} does not exist: train and promote a model first (make pipeline)")
        return {}
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return report


def _champion_report(path: Path, metadata: ModelMetadata, version_key: str) -> dict[str, Any]:
    """A report of the champion, or {} when it is missing or belongs to another (e.g. a rejected) model."""
    report = _read_json(path, required=False)
    if report and report.get(version_key) != metadata.model_version:
        print(
            f"model-card: {path} describes {report.get(version_key)}, not the champion: left out",
            file=sys.stderr,
        )
        return {}
    return report


def render_card(template: str, values: Mapping[str, str]) -> str:
    try:
        return Template(template).substitute(values)
    except KeyError as unknown:
        known = ", ".join(f"${name}" for name in sorted(values))
        raise ModelCardError(f"the template uses ${unknown.args[0]}, which is not one of {known}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the model card of the champion model.")
    parser.add_argument("--model-dir", type=Path, default=Path("models/champion"))
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("--template", type=Path, default=Path("docs/model-card.template.md"))
    parser.add_argument("--output", type=Path, default=Path("docs/model-card.md"))
    args = parser.parse_args(argv)

    try:
        metadata = read_metadata(args.model_dir)
        contract = load_contract()
        metrics = _champion_report(args.reports_dir / "metrics.json", metadata, version_key="model_version")
        gate = _champion_report(args.reports_dir / "gate.json", metadata, version_key="candidate_version")
        card = render_card(
            args.template.read_text(encoding="utf-8"), card_values(metadata, contract, metrics, gate)
        )
    except (ModelCardError, ModelArtifactError, ContractError, OSError, ValueError) as error:
        print(f"model-card: {error}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(card, encoding="utf-8")
    print(f"wrote {args.output} for model {metadata.model_version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
