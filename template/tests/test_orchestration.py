"""orchestration/pipeline.py: the orchestrators' stages are dvc.yaml's, and one stage runs through a store."""

from __future__ import annotations

import json
import sys
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def load_pipeline() -> ModuleType:
    spec = spec_from_file_location("orchestration_pipeline", ROOT / "orchestration" / "pipeline.py")
    assert spec is not None
    assert spec.loader is not None
    module = module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


pipeline = load_pipeline()


def test_the_stages_are_dvc_yaml_s_in_order_and_each_is_a_module_of_the_package() -> None:
    described = pipeline.describe(ROOT / "dvc.yaml", ROOT / "params.yaml")
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    names = [stage["name"] for stage in described["stages"]]
    assert names == list(dvc["stages"])
    seen: set[str] = set()
    for stage in described["stages"]:
        assert set(stage["upstream"]) <= seen, f"{stage['name']} runs before a stage it reads from"
        seen.add(stage["name"])
        module = stage["module"].replace(".", "/") + ".py"
        assert (ROOT / "src" / module).is_file(), module
        assert stage["cmd"][:3] == ["python", "-m", stage["module"]]
    assert "orchestration" not in described["params"]


def test_a_stage_that_is_not_a_package_module_is_refused(tmp_path: Path) -> None:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    dvc["stages"]["export"] = {"cmd": "bash export.sh"}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(dvc), encoding="utf-8")
    with pytest.raises(pipeline.PipelineError, match="must run one command `python -m"):
        pipeline.describe(tmp_path / "dvc.yaml", ROOT / "params.yaml")


def test_run_parameters_merge_section_by_section() -> None:
    base = {"model": {"type": "linear", "seed": 42}, "data": {"raw": "a.csv"}}
    merged = pipeline.merge(base, {"model": {"seed": 7}})
    assert merged == {"model": {"type": "linear", "seed": 7}, "data": {"raw": "a.csv"}}
    assert pipeline.interpolate("${data.raw} --x", merged) == "a.csv --x"
    with pytest.raises(pipeline.PipelineError, match=r"\$\{data.missing\}"):
        pipeline.interpolate("${data.missing}", merged)


@pytest.mark.parametrize("run_id", ["", "../escape", "a/b", "x" * 201])
def test_a_run_id_that_could_leave_the_store_is_refused(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(pipeline.PipelineError, match="run id"):
        pipeline.Store(str(tmp_path), run_id)


def test_an_unknown_stage_or_a_missing_upstream_output_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", str(tmp_path), "--run-id", "manual__1", "--project-dir", str(ROOT)]
    assert pipeline.main(["run", "deploy", *store]) == 2
    assert "no stage 'deploy'" in capsys.readouterr().err
    assert pipeline.main(["run", "train", *store]) == 2
    assert "run 'features' first" in capsys.readouterr().err


def test_the_validate_stage_runs_with_a_run_s_parameters_and_leaves_its_report_in_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns.db").as_uri().replace("file:", "sqlite:"))
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["data"]["raw"]
    override = json.dumps({"data": {"raw": f"./{raw}"}})
    code = pipeline.main(
        [
            "run",
            "validate",
            "--store",
            str(tmp_path / "store"),
            "--run-id",
            "manual__1",
            "--params-json",
            override,
            "--project-dir",
            str(ROOT),
            # an orchestrator's copy of the result (SageMaker's PropertyFile): the last line's object
            "--result-file",
            str(tmp_path / "result" / "result.json"),
        ]
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, result
    assert result == {"returncode": 0, "stage": "validate"}
    assert json.loads((tmp_path / "result" / "result.json").read_text(encoding="utf-8")) == result
    assert (tmp_path / "store" / "runs" / "manual__1" / "reports" / "validation.json").is_file()
