"""copier.yml: every question is documented, and every invalid answer is refused before a file is written."""

from __future__ import annotations

import keyword
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_ROOT, run

COPIER_YML = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
QUESTIONS = {name: spec for name, spec in COPIER_YML.items() if not name.startswith("_")}
ASKED = {name: spec for name, spec in QUESTIONS.items() if spec.get("when") is not False}
COMPUTED = {name: spec for name, spec in QUESTIONS.items() if spec.get("when") is False}


def copy_into(dst: Path, **answers: str) -> tuple[int, str]:
    """Run the copier CLI exactly as a user would (no --trust) and return (exit code, stderr + stdout)."""
    cmd = [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD"]
    for key, value in answers.items():
        cmd += ["--data", f"{key}={value}"]
    result = run([*cmd, str(TEMPLATE_ROOT), str(dst)], cwd=TEMPLATE_ROOT)
    return result.returncode, result.stderr + result.stdout


def test_settings_need_no_trust() -> None:
    assert "_tasks" not in COPIER_YML, "_tasks would make every copy and update need --trust"
    assert "_jinja_extensions" not in COPIER_YML, "_jinja_extensions would make every copy need --trust"
    assert COPIER_YML["_subdirectory"] == "template"
    assert COPIER_YML["_templates_suffix"] == ".jinja"
    assert (TEMPLATE_ROOT / "template" / "{{_copier_conf.answers_file}}.jinja").is_file()


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_every_question_has_help_and_default(name: str) -> None:
    spec = QUESTIONS[name]
    assert "default" in spec, f"{name} has no default: `copier update --defaults` could not be a no-op"
    if name in ASKED:
        assert spec.get("help", "").strip(), f"{name} has no help text"


def test_free_text_questions_have_validators() -> None:
    free_text = {n for n, s in ASKED.items() if s.get("type") == "str" and "choices" not in s}
    missing = sorted(n for n in free_text if "validator" not in QUESTIONS[n])
    assert not missing, f"free-text questions without a validator: {missing}"


def test_reserved_names_cover_keywords_and_stdlib() -> None:
    reserved = set(COMPUTED["reserved_keywords"]["default"].split()) | set(
        COMPUTED["reserved_stdlib"]["default"].split()
    )
    public_stdlib = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert set(keyword.kwlist) <= reserved
    assert public_stdlib <= reserved, sorted(public_stdlib - reserved)


REFUSED = [
    ({"project_slug": "Customer_Churn"}, "project_slug must be 3 to 24"),
    ({"project_slug": "ab"}, "project_slug must be 3 to 24"),
    ({"project_slug": "1churn"}, "project_slug must be 3 to 24"),
    ({"project_slug": "churn-"}, "project_slug must be 3 to 24"),
    ({"project_slug": "a-very-long-project-slug-indeed"}, "project_slug must be 3 to 24"),
    ({"project_slug": "churn--model"}, "two hyphens"),
    ({"package_name": "json"}, "standard-library"),
    ({"package_name": "test"}, "would shadow"),
    ({"package_name": "class"}, "keyword"),
    ({"package_name": "sklearn"}, "dependency"),
    ({"package_name": "pandas"}, "dependency"),
    ({"package_name": "Churn"}, "lowercase Python identifier"),
    ({"package_name": "churn-model"}, "lowercase Python identifier"),
    ({"author_email": "not-an-email"}, "author_email must look like"),
    ({"author_email": "a@b"}, "author_email must look like"),
    ({"github_org": "-my-org"}, "github_org must be"),
    ({"github_org": "my--org"}, "github_org must be"),
    ({"cost_center": "Cost Center"}, "cost_center must start"),
    ({"project_name": "   "}, "project_name must not be empty"),
    ({"cloud_provider": "aws", "region": "europe-west1"}, "is not a aws region"),
    ({"cloud_provider": "gcp", "region": "us-east-1"}, "is not a gcp region"),
    ({"cloud_provider": "azure", "region": "mars-north1"}, "is not a azure region"),
    ({"cloud_provider": "none", "serving": "managed"}, "cannot be combined with cloud_provider"),
    ({"cloud_provider": "none", "serving": "kubernetes"}, 'serving "kubernetes" deploys to a cloud\'s managed cluster'),
    ({"cloud_provider": "gcp", "tracking_server": "managed"}, "gcp has no managed MLflow service"),
    ({"cloud_provider": "none", "serving": "container", "tracking_server": "managed"}, "managed needs a cloud"),
    ({"tracking_server": "sagemaker"}, "tracking_server"),
    ({"cloud_provider": "kubernetes"}, "cloud_provider"),
    ({"serving": "lambda"}, "serving"),
    ({"python_version": "3.9"}, "python_version"),
    (
        {"cloud_provider": "aws", "serving": "batch", "feature_store": "feast"},
        'feature_store "feast" in aws runs with serving "container"',
    ),
    ({"cloud_provider": "gcp", "serving": "managed", "feature_store": "feast"}, "choose serving container or"),
    ({"feature_store": "tecton"}, "feature_store"),
    ({"orchestrator": "prefect"}, "orchestrator"),
    ({"cloud_provider": "gcp", "orchestrator": "sagemaker"}, 'orchestrator "sagemaker" runs on Amazon SageMaker'),
    ({"cloud_provider": "none", "serving": "container", "orchestrator": "sagemaker"}, "which only aws has"),
    ({"orchestrator": "sagemaker"}, 'tracking_server "local" (a sqlite file in the container) would lose'),
    ({"orchestrator": "sagemaker", "tracking_server": "self_hosted"}, "a SageMaker job has neither"),
]


@pytest.mark.parametrize(("answers", "message"), REFUSED, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_invalid_answer_is_refused_and_writes_nothing(tmp_path: Path, answers: dict, message: str) -> None:
    dst = tmp_path / "project"
    code, output = copy_into(dst, **answers)
    assert code != 0, f"copier accepted {answers}"
    assert message in output, f"expected {message!r} in copier's error, got:\n{output[-2000:]}"
    assert not dst.exists() or not any(dst.iterdir()), f"files were written for refused answers {answers}"


def test_refusal_into_existing_directory_leaves_it_untouched(tmp_path: Path) -> None:
    dst = tmp_path / "existing"
    dst.mkdir()
    (dst / "notes.txt").write_text("mine\n")
    code, _ = copy_into(dst, cloud_provider="none", serving="managed")
    assert code != 0
    assert sorted(p.name for p in dst.iterdir()) == ["notes.txt"]
    assert (dst / "notes.txt").read_text() == "mine\n"


def test_region_is_not_asked_without_a_cloud(render) -> None:
    answers = yaml.safe_load((render(cloud_provider="none", serving="container") / ".copier-answers.yml").read_text())
    assert "region" not in answers
    assert answers["cloud_provider"] == "none"


@pytest.mark.parametrize(("cloud", "region"), [("aws", "us-east-1"), ("gcp", "us-central1"), ("azure", "westeurope")])
def test_region_default_follows_the_cloud(render, cloud: str, region: str) -> None:
    answers = yaml.safe_load((render(cloud_provider=cloud) / ".copier-answers.yml").read_text())
    assert answers["region"] == region


def test_answers_file_records_answers_not_computed_values(render) -> None:
    answers = yaml.safe_load((render() / ".copier-answers.yml").read_text())
    assert answers["project_slug"] == "customer-churn"
    assert answers["package_name"] == "customer_churn"
    for computed in COMPUTED:
        assert computed not in answers, f"computed value {computed} leaked into .copier-answers.yml"


@pytest.mark.parametrize("serving", ["container", "managed", "batch", "none"])
def test_kserve_is_asked_only_with_serving_kubernetes(render, serving: str) -> None:
    assert QUESTIONS["kserve"]["when"] == "{{ serving == 'kubernetes' }}"
    assert QUESTIONS["kserve"]["default"] is False, "existing projects must update to kserve: false"
    answers = yaml.safe_load((render(serving=serving) / ".copier-answers.yml").read_text())
    assert "kserve" not in answers, f"kserve recorded for serving {serving}"


def test_kserve_is_recorded_with_serving_kubernetes(render) -> None:
    answers = yaml.safe_load((render(serving="kubernetes", kserve=True) / ".copier-answers.yml").read_text())
    assert answers["serving"] == "kubernetes" and answers["kserve"] is True
    answers = yaml.safe_load((render(serving="kubernetes") / ".copier-answers.yml").read_text())
    assert answers["kserve"] is False


def test_tracking_server_defaults_to_the_local_file() -> None:
    assert QUESTIONS["tracking_server"]["when"] == "{{ experiment_tracking == 'mlflow' }}"
    assert QUESTIONS["tracking_server"]["default"] == "local", "existing projects must update to the sqlite file"


@pytest.mark.parametrize(
    ("answers", "server"),
    [
        ({"cloud_provider": "aws", "tracking_server": "managed"}, "managed"),
        ({"cloud_provider": "azure", "tracking_server": "managed"}, "managed"),
        ({"cloud_provider": "gcp", "tracking_server": "self_hosted"}, "self_hosted"),
        ({"cloud_provider": "none", "serving": "container", "tracking_server": "self_hosted"}, "self_hosted"),
    ],
    ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else "",
)
def test_tracking_server_is_accepted_where_it_exists(render, answers: dict, server: str) -> None:
    answers_file = yaml.safe_load((render(**answers) / ".copier-answers.yml").read_text())
    assert answers_file["tracking_server"] == server


def test_tracking_server_is_not_asked_without_mlflow(render) -> None:
    answers = yaml.safe_load((render(experiment_tracking="none") / ".copier-answers.yml").read_text())
    assert "tracking_server" not in answers


def test_feature_store_defaults_to_none_so_updates_add_nothing() -> None:
    assert QUESTIONS["feature_store"]["default"] == "none", "existing projects must update to feature_store: none"


def test_feature_store_is_recorded_and_picks_its_lock_profile(render) -> None:
    project = render(cloud_provider="none", serving="none", feature_store="feast")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["feature_store"] == "feast"
    assert (TEMPLATE_ROOT / "locks" / "none-mlflow-feast.lock").is_file()
    assert "feast" in (project / "uv.lock").read_text()


@pytest.mark.parametrize(("cloud", "extra"), [("aws", "aws"), ("gcp", "gcp"), ("azure", None)])
def test_feature_store_in_a_cloud_brings_its_online_stores_client(render, cloud: str, extra: str | None) -> None:
    project = render(cloud_provider=cloud, serving="container", feature_store="feast")
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["feature_store"] == "feast"
    pyproject = (project / "pyproject.toml").read_text()
    assert f'"feast[redis,{extra}]>=' in pyproject if extra else '"feast[redis]>=' in pyproject
    lock = (project / "uv.lock").read_text()
    assert 'name = "feast"' in lock
    if cloud == "aws":
        assert 'name = "boto3"' in lock
    if cloud == "gcp":
        assert 'name = "google-cloud-datastore"' in lock
    assert (project / "infra" / "terraform" / cloud / "feature_store.tf").is_file()
    assert (project / "feature_repo" / "feature_store.cloud.yaml").is_file()


def test_orchestrator_defaults_to_dvc_and_is_recorded(render) -> None:
    """The default keeps `copier update --defaults` a no-op: dvc, today's pipeline, with no orchestration/ folder."""
    assert QUESTIONS["orchestrator"]["default"] == "dvc"
    for project, expected in ((render(), "dvc"), (render(orchestrator="airflow", cloud_provider="none"), "airflow")):
        answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
        assert answers["orchestrator"] == expected
        assert (project / "orchestration").is_dir() is (expected == "airflow")
