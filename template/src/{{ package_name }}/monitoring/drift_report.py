"""The drift report files: reports/drift.json (for machines) and reports/drift.html (a self-contained page).

The HTML page embeds its distribution plot as a base64 PNG, so it can be attached to a CI run or an issue: one
panel per input (reference vs current) and one for the predictions (expected vs current bucket shares).
"""

from __future__ import annotations

import base64
import io
import json
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from .drift import DriftReport, FeatureDrift

PLOT_COLUMNS = 3
_REFERENCE_COLOR, _CURRENT_COLOR = "#4c72b0", "#dd8452"


def write_reports(
    report: DriftReport, reference: pd.DataFrame, current: pd.DataFrame, output_dir: Path
) -> tuple[Path, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = output_dir / "drift.json", output_dir / "drift.html"
    json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    checks = report.checks
    plot = distribution_plot_png(checks, reference, current) if checks else None
    html_path.write_text(render_html(report, plot), encoding="utf-8")
    return json_path, html_path


def distribution_plot_png(
    features: list[FeatureDrift], reference: pd.DataFrame, current: pd.DataFrame
) -> bytes:
    """One panel per check: reference vs current densities (numeric) or shares (categories, buckets)."""
    rows = math.ceil(len(features) / PLOT_COLUMNS)
    figure = Figure(figsize=(4.2 * PLOT_COLUMNS, 3.2 * rows), layout="constrained")
    axes = figure.subplots(rows, PLOT_COLUMNS, squeeze=False).ravel()
    for axis, item in zip(axes, features, strict=False):
        reference_label = "expected" if item.kind == "prediction" else "reference"
        if item.kind == "numeric":
            ref = reference[item.feature].dropna().to_numpy(float)
            cur = current[item.feature].dropna().to_numpy(float)
            values = np.concatenate([ref, cur])
            if values.size:
                edges = np.histogram_bin_edges(values, bins=30)
                if ref.size:
                    axis.hist(
                        ref, bins=edges, density=True, alpha=0.55, color=_REFERENCE_COLOR, label="reference"
                    )
                if cur.size:
                    axis.hist(
                        cur, bins=edges, density=True, alpha=0.55, color=_CURRENT_COLOR, label="current"
                    )
        else:
            categories = list(item.reference_summary)
            positions = np.arange(len(categories))
            axis.bar(
                positions - 0.2,
                [item.reference_summary[c] for c in categories],
                0.4,
                color=_REFERENCE_COLOR,
                label=reference_label,
            )
            axis.bar(
                positions + 0.2,
                [item.current_summary.get(c, 0.0) for c in categories],
                0.4,
                color=_CURRENT_COLOR,
                label="current",
            )
            axis.set_xticks(positions, categories, rotation=20, fontsize=8)
        verdict = "DRIFT" if item.drifted else "ok"
        title = "predictions (buckets)" if item.kind == "prediction" else item.feature
        axis.set_title(
            f"{title}: PSI {item.psi:.3f} ({verdict})",
            fontsize=10,
            color="#c0392b" if item.drifted else "black",
        )
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    for axis in axes[len(features) :]:
        axis.set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def render_html(report: DriftReport, plot_png: bytes | None) -> str:
    rows = "\n".join(_feature_row(item) for item in report.checks)
    table = (
        "<table><thead><tr><th>feature</th><th>kind</th><th>PSI</th><th>test</th><th>statistic</th>"
        "<th>p-value</th><th>missing (reference / current)</th><th>drift</th></tr></thead>"
        f"<tbody>\n{rows}\n</tbody></table>"
        if report.checks
        else ""
    )
    prediction = report.prediction
    predictions = (
        f"<p>Predictions: {escape(prediction.note)} against the bucket shares of the model's test split"
        f"{' (drift)' if prediction.drifted else ''}.</p>"
        if prediction.checked
        else f"<p>Predictions not checked: {escape(prediction.note)}.</p>"
    )
    image = (
        f'<img alt="reference vs current distributions" src="data:image/png;base64,'
        f'{base64.b64encode(plot_png).decode("ascii")}">'
        if plot_png
        else ""
    )
    thresholds = ", ".join(f"{escape(name)} {value}" for name, value in report.thresholds.items())
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Drift report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
tr.drift td {{ background: #fdecea; }}
.status-drift {{ color: #c0392b; }}
.status-no_drift {{ color: #1e8449; }}
.status-no_data {{ color: #7f8c8d; }}
</style>
</head>
<body>
<h1>Drift report</h1>
<p class="status-{escape(report.status)}">
<strong>{escape(report.status)}</strong>: {escape(report.message)}</p>
<p>Reference: {escape(str(report.reference["path"]))} ({report.reference["records"]} records).
Current: {escape(str(report.current["path"]))} ({report.current["records"]} records).
Generated {escape(report.generated_at)}. Thresholds: {thresholds}.
An input (or the prediction mix) drifts when its PSI reaches the threshold and a test's p-value is below the
threshold; a missing value counts as a category, or as one more bin for a numeric input.</p>
{predictions}
{table}
{image}
</body>
</html>
"""


def _feature_row(item: FeatureDrift) -> str:
    css = ' class="drift"' if item.drifted else ""
    missing = (
        f"{item.missing_share['reference']:.1%} / {item.missing_share['current']:.1%}"
        if item.missing_share
        else "-"
    )
    return (
        f"<tr{css}><td>{escape(item.feature)}</td><td>{item.kind}</td><td>{item.psi:.4f}</td><td>{item.test}</td>"
        f"<td>{item.statistic:.4f}</td><td>{item.p_value:.3g}</td><td>{missing}</td>"
        f"<td>{'yes' if item.drifted else 'no'}</td></tr>"
    )
