"""Monitoring as code in every render: rules that promtool accepts and whose unit tests pass, alerts that
link runbooks that exist, dashboards that query only metrics the service exports, a compose file that
validates, and no trace of any of it when monitoring is off.

The model-health rules are generic over the contract and the task: they compare the service's metrics per
prediction bucket and per input with the baselines it publishes as gauges, so the rules name no column, no
class and no number measured on a model, and they are the same for every task (the promtool tests feed
task-shaped synthetic series: class labels, or deciles q0..q9).

The rules, their tests and the dashboards depend on few answers (the repository URL, the slug and the task),
so the expensive checks (promtool, check-jsonschema) run once per distinct content of monitoring/, not per
render.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from conftest import RENDER_MATRIX, combo_id, run, tool

# The renders of the pairwise matrix with monitoring on, and with it off (each cloud and serving mode is in both).
MONITORED = [answers for answers in RENDER_MATRIX if answers["monitoring"]]
UNMONITORED = [answers for answers in RENDER_MATRIX if not answers["monitoring"]]
RULES = "monitoring/prometheus/rules/slo.rules.yml"
TASKS = ("binary", "multiclass", "regression")
MODEL_ALERTS = {
    "PredictionDistributionShift",
    "PredictionScoreShift",
    "InputOutOfTrainingRange",
    "InputMissingRateHigh",
    "ModelStale",
    "InferenceLogNotShipped",
    "InferenceLogDropped",
}
PROMETHEUS_BUILTIN_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "inf", "nan",
}  # fmt: skip
# What monitoring=false must not leave behind (paths at the project root, targets, files).
MONITORING_ONLY_REFERENCES = (
    r"(?<![\w/.-])monitoring/",
    r"drift\.yml",
    r"slo_rules",
    r"drift_logs",
    r"\bmake (drift|monitoring-[a-z]+)\b",
    r"runbooks/alerts",
    r"runbooks/drift\.md",
    r"\bslo\.yaml\b",
)

_checked_contents: dict[tuple[str, str], str] = {}


def monitoring_digest(project: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((project / "monitoring").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def once_per_content(project: Path, check: str) -> bool:
    """True the first time `check` sees this content of monitoring/ (renders with equal content skip it)."""
    key = (check, monitoring_digest(project))
    if key in _checked_contents:
        return False
    _checked_contents[key] = str(project)
    return True


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH (Debian package `prometheus`; .ci/bootstrap installs it as root)")
    return path


def load_rules(project: Path) -> list[dict]:
    groups = yaml.safe_load((project / RULES).read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def metric_definitions(project: Path) -> list[tuple[str, str]]:
    """(kind, name) of every metric serving/metrics.py defines."""
    package = next((project / "src").iterdir())
    source = (package / "serving" / "metrics.py").read_text(encoding="utf-8")
    return re.findall(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"", source)


def exported_metric_names(project: Path) -> set[str]:
    """Series names the service exports, read from serving/metrics.py (histograms expand to their series)."""
    names: set[str] = set()
    for kind, name in metric_definitions(project):
        if kind == "Histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif kind == "Summary":
            names |= {name, f"{name}_sum", f"{name}_count"}
        elif kind == "Counter" and not name.endswith("_total"):
            names.add(f"{name}_total")
        else:
            names.add(name)
    assert names, f"no metric definitions found in {project}/src/*/serving/metrics.py"
    return names


def promql_series_names(expr: str) -> set[str]:
    """Metric and recording-rule names an expression selects (functions, keywords and labels removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    tokens = re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text)
    return {token for token in tokens if token.lower() not in PROMQL_WORDS}


@pytest.mark.parametrize("answers", MONITORED, ids=combo_id)
def test_rules_are_generated_from_the_slo_file(render, answers: dict) -> None:
    project = render(**answers)
    package = next((project / "src").iterdir()).name

    result = run(
        [sys.executable, "-m", f"{package}.monitoring.slo_rules", "--check"],
        cwd=project,
        env={"PYTHONPATH": str(project / "src"), "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("answers", MONITORED, ids=combo_id)
def test_promtool_accepts_the_rules_and_their_unit_tests_pass(render, answers: dict) -> None:
    project = render(**answers)
    if not once_per_content(project, "promtool"):
        pytest.skip("same monitoring/ content as a render already checked")
    binary = promtool()
    rules = sorted(str(path) for path in (project / "monitoring/prometheus/rules").glob("*.yml"))
    tests = sorted(str(path) for path in (project / "monitoring/prometheus/tests").glob("*.yml"))
    assert rules and tests

    checked = run([binary, "check", "rules", *rules], cwd=project)
    tested = run([binary, "test", "rules", *tests], cwd=project)
    config = run([binary, "check", "config", "--syntax-only", "monitoring/prometheus/prometheus.yml"], cwd=project)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert config.returncode == 0, config.stdout + config.stderr


@pytest.mark.parametrize("answers", MONITORED, ids=combo_id)
def test_every_alert_is_complete_and_links_an_existing_runbook(render, answers: dict) -> None:
    project = render(**answers)
    alerts = [rule for rule in load_rules(project) if "alert" in rule]
    answers_file = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    base = f"https://github.com/{answers_file['github_org']}/{answers_file['project_slug']}/blob/main/"

    names = {alert["alert"] for alert in alerts}
    assert {
        "AvailabilityErrorBudgetBurn",
        "LatencyErrorBudgetBurn",
        "HighServerErrorRate",
        "NoPredictionTraffic",
        *MODEL_ALERTS,
    } <= names
    for alert in alerts:
        assert alert["expr"].strip() and alert["for"], alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], alert["alert"]
        url = annotations["runbook_url"]
        assert url.startswith(base), f"{alert['alert']}: {url} is not in this repository"
        runbook = project / url.removeprefix(base)
        assert runbook.is_file(), f"{alert['alert']}: {url} points to a file the render does not contain"


@pytest.mark.parametrize("answers", MONITORED, ids=combo_id)
def test_burn_rate_alerts_pair_a_long_and_a_short_window(render, answers: dict) -> None:
    project = render(**answers)
    slo = yaml.safe_load((project / "monitoring/slo.yaml").read_text(encoding="utf-8"))
    burns = [rule for rule in load_rules(project) if rule.get("alert", "").endswith("ErrorBudgetBurn")]

    assert len(burns) == len(slo["slos"]) * len(slo["burn_rate_alerts"])
    fast = next(
        rule for rule in burns if rule["labels"] == {**rule["labels"], "slo": "availability", "long_window": "1h"}
    )
    budget = 1 - slo["slos"]["availability"]["objective"]
    assert fast["expr"] == (
        f"slo:availability_errors:ratio_rate1h > {14.4 * budget:.6g}\nand\n"
        f"slo:availability_errors:ratio_rate5m > {14.4 * budget:.6g}"
    )


@pytest.mark.parametrize("answers", MONITORED, ids=combo_id)
def test_rules_and_dashboards_query_only_series_that_exist(render, answers: dict) -> None:
    project = render(**answers)
    rules = load_rules(project)
    recorded = {rule["record"] for rule in rules if "record" in rule}
    known = exported_metric_names(project) | recorded | PROMETHEUS_BUILTIN_SERIES

    for rule in rules:
        unknown = promql_series_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')} selects unknown series {unknown}"

    dashboards = sorted((project / "monitoring/grafana/dashboards").glob("*.json"))
    assert len(dashboards) >= 2
    for path in dashboards:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert dashboard["uid"] and dashboard["title"] and dashboard["panels"], path.name
        for panel in dashboard["panels"]:
            assert panel["targets"], f"{path.name}: panel {panel['title']!r} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "prometheus", f"{path.name}: {panel['title']}"
                unknown = promql_series_names(target["expr"]) - known
                assert not unknown, f"{path.name}: panel {panel['title']!r} queries unknown series {unknown}"


def test_model_rules_are_the_same_for_every_task_and_copy_no_baseline(render) -> None:
    """Baselines are the service's gauges (from the served model's metadata.json), never numbers in the rules."""
    projects = {task: render(task=task) for task in TASKS}
    texts = {task: (project / RULES).read_text(encoding="utf-8") for task, project in projects.items()}

    assert len(set(texts.values())) == 1, "the rules differ between tasks"
    rules = {rule.get("alert") or rule["record"]: rule for rule in load_rules(projects["binary"])}
    text = texts["binary"]
    assert not re.search(r"\b(feature|bucket|predicted_class)\s*=~?\s*\"", text), "a rule selects an input or a bucket"
    assert "expected_positive_share" not in text
    slo = (projects["binary"] / "monitoring/slo.yaml").read_text(encoding="utf-8")
    assert "expected_positive_share" not in slo
    # PredictionDistributionShift: the observed share of every bucket against the expected-share gauge.
    expected = next(rule for name, rule in rules.items() if name.startswith("model:expected_prediction_share"))
    assert expected["expr"] == "max by (bucket) (model_expected_prediction_share)"
    observed = next(rule for name, rule in rules.items() if name.startswith("model:prediction_share:ratio"))
    assert "sum by (bucket) (rate(model_predictions_total" in observed["expr"]
    shift = next(rule for name, rule in rules.items() if name.startswith("model:prediction_share_shift"))
    assert observed["record"] in shift["expr"] and expected["record"] in shift["expr"]
    assert rules["PredictionDistributionShift"]["expr"].startswith(shift["record"] + " > ")
    # PredictionScoreShift: the median of the score histogram against the expected-median gauge.
    score = rules["PredictionScoreShift"]["expr"]
    median = next(rule for name, rule in rules.items() if name.startswith("model:prediction_score:median"))
    assert median["expr"].startswith("histogram_quantile(0.5, ") and "model_prediction_score_bucket" in median["expr"]
    assert median["record"] in score
    assert "model_expected_prediction_score_median" in rules["model:expected_prediction_score_median:max"]["expr"]
    # Input alerts: per-feature counters over the scored records.
    for alert, counter in (
        ("InputOutOfTrainingRange", "model_input_out_of_range_total"),
        ("InputMissingRateHigh", "model_input_missing_total"),
    ):
        ratio = rules[rules[alert]["expr"].split(" ")[0]]["expr"]
        assert counter in ratio and "model_scored_records_total" in ratio, alert


@pytest.mark.parametrize("task", TASKS)
def test_promtool_tests_feed_the_expected_share_gauges_and_cover_firing_and_silence(render, task: str) -> None:
    project = render(task=task)
    tests = [
        test
        for path in sorted((project / "monitoring/prometheus/tests").glob("*.yml"))
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
    ]
    outcomes: dict[str, set[bool]] = {}
    for test in tests:
        for case in test.get("alert_rule_test", []):
            outcomes.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    gauges = [
        series["series"]
        for test in tests
        for series in test["input_series"]
        if series["series"].startswith("model_expected_prediction_share{")
    ]

    for alert in MODEL_ALERTS - {"ModelStale"}:
        assert outcomes.get(alert) == {True, False}, f"{alert}: promtool tests must cover firing and silence"
    buckets = {re.search(r'bucket="([^"]+)"', series).group(1) for series in gauges}
    assert len(buckets) == (10 if task == "regression" else 2 if task == "binary" else 3), buckets


@pytest.mark.parametrize("answers", [{}, {"task": "regression"}], ids=combo_id)
def test_dashboards_show_every_model_metric(render, answers: dict) -> None:
    """Each model_* metric of serving/metrics.py is on a dashboard or in a rule a dashboard panel reads."""
    project = render(**answers)
    rules = load_rules(project)
    recorded = {rule["record"]: rule["expr"] for rule in rules if "record" in rule}
    queries = [
        target["expr"]
        for path in sorted((project / "monitoring/grafana/dashboards").glob("*.json"))
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]
        for target in panel["targets"]
    ]
    selected: set[str] = set()
    for expr in queries:
        names = promql_series_names(expr)
        selected |= names | {n for name in names & set(recorded) for n in promql_series_names(recorded[name])}
    alerted = {name for rule in rules if "alert" in rule for name in promql_series_names(rule["expr"])}

    for kind, name in metric_definitions(project):
        if not name.startswith("model_"):
            continue
        series = {f"{name}_bucket", f"{name}_count"} if kind == "Histogram" else {name}
        assert series & (selected | alerted), f"{name} is on no dashboard and in no alert"
        if name.startswith(("model_expected_", "model_predictions", "model_input_", "model_prediction_score")):
            assert series & selected, f"{name} is on no dashboard panel"


@pytest.mark.parametrize("answers", MONITORED, ids=combo_id)
def test_compose_file_and_grafana_provisioning_are_valid(render, answers: dict) -> None:
    project = render(**answers)
    if not once_per_content(project, "compose"):
        pytest.skip("same monitoring/ content as a render already checked")
    compose = project / "monitoring/docker-compose.yml"

    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose)], cwd=project)

    assert result.returncode == 0, result.stdout + result.stderr
    services = yaml.safe_load(compose.read_text(encoding="utf-8"))["services"]
    assert (project / "monitoring" / services["app"]["build"]["context"] / "Dockerfile").is_file()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (compose.parent / source).exists(), f"compose mounts {source}, which the render lacks"
    datasource = yaml.safe_load(
        (project / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    )
    assert datasource["datasources"][0]["uid"] == "prometheus"


@pytest.mark.parametrize("answers", UNMONITORED, ids=combo_id)
def test_monitoring_off_leaves_no_dangling_reference(render, answers: dict) -> None:
    project = render(**answers)

    assert not (project / "monitoring").exists()
    assert not (project / ".github/workflows/drift.yml").exists()
    assert not (project / "docs/runbooks/alerts").exists()
    assert not (project / "docs/runbooks/drift.md").exists()
    assert not list(project.glob("src/*/monitoring")) and not list(project.glob("src/*/**/slo_rules.py"))
    assert not list(project.glob("tests/test_drift.py")) and not list(project.glob("tests/test_slo_rules.py"))
    assert "drift:" not in (project / "params.yaml").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-zA-Z0-9_-]+):", (project / "Makefile").read_text(encoding="utf-8"), re.M))
    assert targets.isdisjoint(
        {"drift", "drift-pull", "monitoring-rules", "monitoring-check", "monitoring-up", "monitoring-down"}
    )
    assert "model-card" in targets
    for path in sorted(project.rglob("*")):
        if not path.is_file() or path.name == ".copier-answers.yml" or "/data/" in str(path):
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        for pattern in MONITORING_ONLY_REFERENCES:
            match = re.search(pattern, text)
            assert match is None, f"{path.relative_to(project)} mentions {match.group(0)!r} with monitoring off"


@pytest.mark.parametrize(
    "answers",
    [{"cloud_provider": "aws", "serving": "container"}, {"cloud_provider": "none", "serving": "container"}],
    ids=combo_id,
)
def test_drift_workflow_exists_only_with_a_cloud_to_pull_logs_from(render, answers: dict) -> None:
    project = render(**answers)
    workflow = project / ".github/workflows/drift.yml"

    if answers["cloud_provider"] == "none":
        assert not workflow.exists()
        return
    document = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    assert document["permissions"] == {}
    assert document["jobs"]["retrain"]["permissions"] == {"actions": "write"}
    assert "actions" not in document["jobs"]["check"]["permissions"]
    triggers = document[True]  # YAML 1.1 reads the key `on` as True
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    steps = document["jobs"]["check"]["steps"]
    assert any(
        step.get("run") == 'make drift-pull ${INFERENCE_LOG_URI:+INFERENCE_LOG_URI="$INFERENCE_LOG_URI"}'
        for step in steps
    )
    for job in document["jobs"].values():
        assert job["timeout-minutes"] <= 30
        for step in job["steps"]:
            if "uses" in step and not step["uses"].startswith("./"):
                assert re.search(r"@[0-9a-f]{40}$", step["uses"]), step["uses"]
