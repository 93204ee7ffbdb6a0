"""The generated project's operating docs are true to the answers: they name the services the render deploys
and no others, every repository path and `make` target they cite exists, and every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import CLOUD_SERVING_COMBOS, RENDER_MATRIX, combo_id

# Service names that belong to one cloud; a doc of another cloud must not mention them.
CLOUD_TERMS = {
    "aws": ("AWS", "Amazon", "ECS", "Fargate", "SageMaker", "EventBridge", "CloudWatch", "ECR"),
    "gcp": (
        "Google Cloud",
        "Cloud Run",
        "Vertex AI",
        "Cloud Scheduler",
        "Cloud Logging",
        "Artifact Registry",
    ),
    "azure": ("Azure", "Container Apps", "Entra ID", "Key Vault", "Log Analytics"),
}
# What architecture.md must name for each deployed cloud x serving, and serving terms it must then not name.
SERVING_TERMS = {
    ("aws", "container"): ("ECS Fargate", "Application Load Balancer"),
    ("aws", "managed"): ("SageMaker real-time endpoint",),
    ("aws", "batch"): ("EventBridge Scheduler", "ECS Fargate task"),
    ("gcp", "container"): ("Cloud Run service",),
    ("gcp", "managed"): ("Vertex AI endpoint",),
    ("gcp", "batch"): ("Cloud Scheduler", "Cloud Run job"),
    ("azure", "container"): ("Azure Container Apps app",),
    ("azure", "managed"): ("Azure Machine Learning managed online endpoint",),
    ("azure", "batch"): ("Container Apps job",),
    ("aws", "kubernetes"): ("Amazon EKS cluster",),
    ("gcp", "kubernetes"): ("GKE cluster",),
    ("azure", "kubernetes"): ("AKS cluster",),
}
# Paths the docs cite that exist only after the pipeline or a service ran (not in a fresh render).
RUNTIME_PREFIXES = ("data/", "models/", "reports/", "docs/model-card.md")
PATH_PATTERN = re.compile(
    r"(?<![\w/.:-])((?:\.github|src|docs|monitoring|infra|tests)/[\w.*/{}-]*[\w*/}]"
    r"|Makefile|Dockerfile|dvc\.yaml|params\.yaml|pyproject\.toml|SECURITY\.md|\.pre-commit-config\.yaml)"
)


def operating_docs(project: Path) -> list[Path]:
    docs = [path for path in sorted((project / "docs").rglob("*.md")) if path.name != "template-updates.md"]
    assert docs, "the render has no docs/"
    return docs


def cited_paths(text: str) -> set[str]:
    return {match.rstrip(".") for match in PATH_PATTERN.findall(text)}


def exists(project: Path, cited: str) -> bool:
    if any(char in cited for char in "*{"):
        pattern = re.sub(r"\{[^}]*\}", "*", cited).rstrip("/")
        return any(project.glob(pattern))
    return (project / cited.rstrip("/")).exists()


def makefile_targets(project: Path) -> set[str]:
    return set(re.findall(r"^([a-zA-Z0-9_-]+):", (project / "Makefile").read_text(encoding="utf-8"), re.M))


ALL_RENDERS = RENDER_MATRIX


@pytest.mark.parametrize("answers", ALL_RENDERS, ids=combo_id)
def test_docs_cite_only_paths_and_targets_the_render_has(render, answers: dict) -> None:
    project = render(**answers)
    targets = makefile_targets(project)

    for doc in operating_docs(project):
        text = doc.read_text(encoding="utf-8")
        name = doc.relative_to(project)
        assert "{{" not in text and "{%" not in text, f"{name} has unrendered Jinja"
        assert "<built-in method" not in text and "Undefined" not in text, f"{name} renders a wrong Jinja value"
        # the project's pre-commit hooks (trailing-whitespace, end-of-file-fixer) must find nothing to fix
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{name} does not end with one newline"
        assert not re.search(r"[ \t]+$", text, re.M), f"{name} has trailing whitespace"
        for cited in sorted(cited_paths(text)):
            if cited.startswith(RUNTIME_PREFIXES):
                continue
            assert exists(project, cited), f"{name} cites {cited}, which this render does not contain"
        # `make x` in inline code, or a code-block line that starts with make
        for target in re.findall(r"(?:`|^\s*)make ([a-z][a-z0-9-]*)", text, re.M):
            assert target in targets, f"{name} tells people to run `make {target}`, which the Makefile lacks"
        for link in re.findall(r"\]\(([^)#:]+\.md)\)", text):
            assert (doc.parent / link).is_file(), f"{name} links {link}, which does not exist"


@pytest.mark.parametrize("answers", ALL_RENDERS, ids=combo_id)
def test_well_architected_covers_the_six_pillars_with_existing_files(render, answers: dict) -> None:
    project = render(**answers)
    text = (project / "docs/well-architected.md").read_text(encoding="utf-8")

    pillars = re.findall(r"^## (.+)$", text, re.M)
    assert pillars == [
        "Operational excellence",
        "Security",
        "Reliability",
        "Performance efficiency",
        "Cost optimization",
        "Sustainability",
    ]
    assert text.count("**The team's job**") == 6
    cited = {path for path in cited_paths(text) if not path.startswith(RUNTIME_PREFIXES)}
    assert len(cited) >= 15
    missing = sorted(path for path in cited if not exists(project, path))
    assert not missing, f"well-architected.md cites files the render lacks: {missing}"


@pytest.mark.parametrize("answers", CLOUD_SERVING_COMBOS, ids=combo_id)
def test_docs_name_only_the_chosen_clouds_services(render, answers: dict) -> None:
    project = render(**answers)
    cloud, serving = answers["cloud_provider"], answers["serving"]
    architecture = (project / "docs/architecture.md").read_text(encoding="utf-8")
    all_docs = "\n".join(doc.read_text(encoding="utf-8") for doc in operating_docs(project))

    assert "```mermaid" in architecture and "flowchart" in architecture
    for other_cloud, terms in CLOUD_TERMS.items():
        if other_cloud == cloud:
            continue
        for term in terms:
            assert not re.search(rf"\b{re.escape(term)}\b", all_docs), f"{cloud} docs mention {term} ({other_cloud})"
    for (term_cloud, term_serving), terms in SERVING_TERMS.items():
        for term in terms:
            if (term_cloud, term_serving) == (cloud, serving):
                assert term in architecture, f"architecture.md of {cloud}/{serving} does not name {term}"
            elif term_cloud == cloud and not any(term in own for own in SERVING_TERMS.get((cloud, serving), ())):
                assert term not in architecture, f"architecture.md of {cloud}/{serving} names {term}"
    if cloud == "none":
        assert "No cloud" in architecture and "infra/terraform" not in all_docs
    if answers.get("orchestrator") == "airflow":
        host = {"aws": "Amazon MWAA", "gcp": "Cloud Composer 3", "azure": "Airflow on AKS", "none": "a local Airflow"}
        assert f"Airflow DAG `customer-churn-training` on {host[cloud]}" in architecture


@pytest.mark.parametrize(
    "answers",
    [{"monitoring": True}, {"monitoring": False}, {"cloud_provider": "none", "serving": "batch"}],
    ids=combo_id,
)
def test_runbooks_match_the_alerts_that_ship(render, answers: dict) -> None:
    project = render(**answers)
    runbooks = {
        path.relative_to(project / "docs/runbooks").as_posix() for path in (project / "docs/runbooks").rglob("*.md")
    }

    assert {"rollback.md", "retraining.md", "incident-response.md"} <= runbooks
    alert_runbooks = {
        "drift.md",
        "alerts/high-error-rate.md",
        "alerts/latency.md",
        "alerts/no-traffic.md",
        "alerts/model-staleness.md",
    }
    if answers.get("monitoring", True):
        assert alert_runbooks <= runbooks
        incident = (project / "docs/runbooks/incident-response.md").read_text(encoding="utf-8")
        assert all(f"({name})" in incident for name in alert_runbooks)
    else:
        assert runbooks.isdisjoint(alert_runbooks)


# The model card's prose outside the team-owned blocks is the template's, for every task and dataset: no word of a
# task it may not be (the card is generated for whichever task the contract has) and none of the shipped sample.
TASK_WORDS = re.compile(
    r"(?i)probability|probabilities|\bROC\b|\bAUC\b|\bRMSE\b|\bR²|calibrat|churn|retention|customer"
)
TEAM_OWNED_BLOCK = re.compile(r"<!-- team-owned: start\b.*?<!-- team-owned: end -->", re.DOTALL)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_the_model_card_template_leaves_task_prose_to_the_generator(render, task: str) -> None:
    project = render(task=task)
    template = (project / "docs" / "model-card.template.md").read_text(encoding="utf-8")
    blocks = TEAM_OWNED_BLOCK.findall(template)
    assert len(blocks) >= 3, "intended use, limitations and ethics are marked as the team's"
    assert template.count("<!-- team-owned: start") == template.count("<!-- team-owned: end -->") == len(blocks)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    generic = TEAM_OWNED_BLOCK.sub("", template)
    for name in ("project_name", "package_name", "description"):  # the team's answers are not template prose
        generic = generic.replace(answers[name], "")
    assert not TASK_WORDS.findall(generic), TASK_WORDS.findall(generic)
    for placeholder in ("$task_summary", "$metrics_note", "$slices_note", "$task_limitations"):
        assert placeholder in generic

    readme = (project / "README.md").read_text(encoding="utf-8")
    bring_your_own = readme.split("## Bring your own data", 1)[1].split("\n## ", 1)[0]
    assert "docs/model-card.template.md" in bring_your_own
    assert "README.md" in bring_your_own
