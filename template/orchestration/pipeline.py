"""The pipeline as every orchestrator sees it: the one list of stages, derived from dvc.yaml, and its runner.

Owns three things and nothing else:

- `describe`: the ordered stages of dvc.yaml (their commands, the files each reads and writes, the params
  sections it uses), the run parameters of params.yaml and its `orchestration` settings, as one JSON document.
  Orchestrators never keep a list of stages of their own: the Airflow DAG derives it from dvc.yaml in the
  checkout, and a deployed DAG folder carries the same description as pipeline.json (`make airflow-bundle`
  writes it), so a stage added to dvc.yaml reaches every runner with the next bundle.
- `run STAGE`: what one orchestrator task executes, locally or in the project's pipeline image. In a fresh
  working directory it writes the run's params.yaml, copies the inputs the repository holds (contract.yaml,
  the raw data), pulls the outputs of earlier stages from the run's artefact store (a directory, or the
  project bucket: s3://, gs://, az:// through fsspec), runs the stage's command from dvc.yaml, and pushes what
  the stage wrote back to the store. Outputs dvc.yaml marks `persist` (the champion and its registry) live
  beside the runs and outlive them. The last line of its output is one JSON object (the stage's result: the
  gate's decision, the evaluation's metrics), which Airflow keeps as the task's XCom.
- `summary`: the result every orchestrator's submit.py prints as its last line (runner, run id, URL, state,
  the gate's decision, the metrics) as Markdown for the Retrain workflow's job summary.

Only the standard library and PyYAML at import time (both in a bare Airflow environment too); fsspec is
imported for a remote store only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The settings of the runners, not of the model: kept out of the run parameters handed to the stages.
RUNNER_SECTION = "orchestration"
GATE_REJECTED = (
    10  # exit status of `run gate` when the gate refuses the model: a decision, not a failure to retry
)
# The local MLflow store of `make pipeline` (tracking/mlflow_backend.py: sqlite:///mlruns.db, artifacts in
# mlartifacts/), shared with the checkout when MLFLOW_TRACKING_URI is unset and the store is a directory.
LOCAL_TRACKING = ("mlruns.db", "mlartifacts")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
STAGE_MODULE = re.compile(r"^python -m ([A-Za-z_][A-Za-z0-9_]*)\.stages\.([A-Za-z_][A-Za-z0-9_]*)\b")


class PipelineError(ValueError):
    """dvc.yaml, params.yaml or a run's parameters cannot make a pipeline the runners can execute."""


# ----------------------------------------------------------------------------------------------------------
# The description: dvc.yaml + params.yaml -> pipeline.json
# ----------------------------------------------------------------------------------------------------------
def _paths(entries: Iterable[Any]) -> tuple[list[str], list[str]]:
    """The paths of a deps/outs list, and those marked `persist: true`."""
    paths, persist = [], []
    for entry in entries or []:
        if isinstance(entry, str):
            paths.append(entry)
        elif isinstance(entry, dict):
            for path, options in entry.items():
                paths.append(path)
                if isinstance(options, dict) and options.get("persist"):
                    persist.append(path)
    return paths, persist


def _order(stages: dict[str, dict]) -> list[str]:
    """Stages in an order where each comes after those whose outputs it reads (dvc.yaml's order on ties)."""
    producer = {out: name for name, stage in stages.items() for out in stage["outs"]}
    upstream = {
        name: sorted({producer[dep] for dep in stage["deps"] if dep in producer and producer[dep] != name})
        for name, stage in stages.items()
    }
    ordered: list[str] = []
    while len(ordered) < len(stages):
        ready = [n for n in stages if n not in ordered and all(u in ordered for u in upstream[n])]
        if not ready:
            raise PipelineError(
                f"dvc.yaml's stages depend on each other in a cycle: {sorted(set(stages) - set(ordered))}"
            )
        ordered.append(ready[0])
    for name in stages:
        stages[name]["upstream"] = upstream[name]
    return ordered


def describe(dvc_yaml: Path, params_yaml: Path) -> dict[str, Any]:
    """The runner-neutral description of the pipeline that pipeline.json holds."""
    dvc = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}
    params = yaml.safe_load(params_yaml.read_text(encoding="utf-8")) or {}
    if not dvc.get("stages"):
        raise PipelineError(f"{dvc_yaml} has no stages")
    stages: dict[str, dict] = {}
    package = None
    for name, stage in dvc["stages"].items():
        cmd = stage.get("cmd")
        match = STAGE_MODULE.match(cmd or "") if isinstance(cmd, str) else None
        if match is None:
            raise PipelineError(
                f"stage {name!r} of dvc.yaml must run one command `python -m <package>.stages.<stage> ...` "
                f"(the command every orchestrator runs), not {cmd!r}"
            )
        if package not in (None, match.group(1)):
            raise PipelineError(
                f"stage {name!r} runs a module of package {match.group(1)!r}, the others {package!r}"
            )
        package = match.group(1)
        deps, _ = _paths(stage.get("deps"))
        outs, persist = [], []
        for key in ("outs", "metrics", "plots"):
            paths, persisted = _paths(stage.get(key))
            outs += paths
            persist += persisted
        stages[name] = {
            "name": name,
            "module": f"{match.group(1)}.stages.{match.group(2)}",
            "cmd": cmd.split(),
            "deps": deps,
            "outs": outs,
            "persist": persist,
            "params": [p if isinstance(p, str) else next(iter(p)) for p in stage.get("params") or []],
        }
    ordered = _order(stages)
    produced = {out for stage in stages.values() for out in stage["outs"]}
    for stage in stages.values():
        # What the stage reads from the repository (not the package's code: the image and the venv hold it):
        # the contract, the raw data; outputs of other stages come from the run's artefact store.
        stage["inputs"] = [dep for dep in stage["deps"] if dep not in produced and not dep.startswith("src/")]
    runner = params.get(RUNNER_SECTION) or {}
    return {
        "generated_from": ["dvc.yaml", "params.yaml"],
        "package": package,
        "stages": [stages[name] for name in ordered],
        "params": {key: value for key, value in params.items() if key != RUNNER_SECTION},
        "runner": runner,
    }


def render(description: dict[str, Any]) -> str:
    return json.dumps(description, indent=2, sort_keys=False) + "\n"


# ----------------------------------------------------------------------------------------------------------
# The runner: one stage in a fresh working directory, artefacts through the store
# ----------------------------------------------------------------------------------------------------------
def _lookup(params: dict[str, Any], dotted: str) -> Any:
    value: Any = params
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PipelineError(f"${{{dotted}}} in dvc.yaml names no value of the run's params")
        value = value[part]
    return value


def interpolate(text: str, params: dict[str, Any]) -> str:
    """dvc.yaml's ${section.key} placeholders, from the run's params."""
    return PLACEHOLDER.sub(lambda match: str(_lookup(params, match.group(1))), text)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """params.yaml with a run's overrides: nested sections merge key by key, any other value replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class Store:
    """The run's artefacts: a directory or an object-store URI (fsspec), with runs/<run_id>/ and persist/."""

    def __init__(self, root: str, run_id: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.:+\-]{1,200}", run_id):
            raise PipelineError(f"run id {run_id!r} must be 1 to 200 letters, digits or _ . : + -")
        self.root = root.rstrip("/")
        self.run_id = run_id
        if "://" in root and not root.startswith("file://"):
            import fsspec

            self.fs = fsspec.filesystem(root.split("://", 1)[0])
        else:
            self.root = root.removeprefix("file://")
            self.fs = None

    def _key(self, path: str, persist: bool) -> str:
        kind = "persist" if persist else f"runs/{self.run_id}"
        return f"{self.root}/{kind}/{path}"

    def pull(self, path: str, workdir: Path, *, persist: bool) -> bool:
        source, target = self._key(path, persist), workdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.fs is None:
            if Path(source).is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif Path(source).is_file():
                shutil.copy2(source, target)
            else:
                return False
            return True
        if not self.fs.exists(source):
            return False
        self.fs.get(source, str(target), recursive=self.fs.isdir(source))
        return True

    def push(self, path: str, workdir: Path, *, persist: bool) -> None:
        source, target = workdir / path, self._key(path, persist)
        if self.fs is None:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                if Path(target).exists():
                    shutil.rmtree(target)
                shutil.copytree(source, target)
            else:
                shutil.copy2(source, target)
            return
        if source.is_dir() and self.fs.exists(target):
            self.fs.rm(target, recursive=True)
        self.fs.put(str(source), target, recursive=source.is_dir())


def stage_result(name: str, workdir: Path, returncode: int) -> dict[str, Any]:
    """What the stage decided, for the orchestrator's run view: the gate's decision, the metrics."""
    result: dict[str, Any] = {"stage": name, "returncode": returncode}
    gate, metrics = workdir / "reports" / "gate.json", workdir / "reports" / "metrics.json"
    if name == "gate" and gate.is_file():
        report = json.loads(gate.read_text(encoding="utf-8"))
        result["gate"] = {
            key: report.get(key)
            for key in ("passed", "promoted", "candidate_version", "champion_version", "reasons")
        }
    elif name == "evaluate" and metrics.is_file():
        result["metrics"] = json.loads(metrics.read_text(encoding="utf-8")).get("model")
    return result


def run_stage(
    name: str, *, store: Store, project_dir: Path, params: dict[str, Any], spec: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    stages = {stage["name"]: stage for stage in spec["stages"]}
    if name not in stages:
        raise PipelineError(f"no stage {name!r} in dvc.yaml; the stages are: {', '.join(stages)}")
    stage = stages[name]
    produced = {out: other["name"] for other in spec["stages"] for out in other["outs"]}
    with tempfile.TemporaryDirectory(prefix=f"stage-{name}-") as tmp:
        workdir = Path(tmp)
        (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        for dep in stage["inputs"]:
            path = interpolate(dep, params)
            source = project_dir / path
            if not source.exists():
                raise PipelineError(f"stage {name!r} reads {path}, which {project_dir} does not have")
            target = workdir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
        for dep in stage["deps"]:
            if dep in produced and produced[dep] != name and not store.pull(dep, workdir, persist=False):
                raise PipelineError(
                    f"stage {name!r} needs {dep} from stage {produced[dep]!r}, which the run's store "
                    f"({store.root}/runs/{store.run_id}) does not have: run {produced[dep]!r} first"
                )
        for path in stage["persist"]:
            store.pull(path, workdir, persist=True)  # absent before the first promotion
        if params.get("tracking", {}).get("backend") == "mlflow" and not os.environ.get(
            "MLFLOW_TRACKING_URI"
        ):
            if store.fs is not None:
                raise PipelineError(
                    "MLFLOW_TRACKING_URI is not set: a stage in a container would log to a store that ends "
                    "with the container; set the tracking server's URI (README.md, Running on Airflow)"
                )
            (project_dir / "mlartifacts").mkdir(exist_ok=True)
            for local in LOCAL_TRACKING:  # the checkout's store, as with `make pipeline`
                (workdir / local).symlink_to(project_dir / local)
        command = [interpolate(part, params) for part in stage["cmd"]]
        if command[0] == "python":
            command[0] = sys.executable
        print(f"[{name}] {' '.join(command)}", flush=True)
        returncode = subprocess.run(command, cwd=workdir, check=False).returncode  # noqa: S603 - dvc.yaml's command
        for path in stage["outs"]:
            persist = path in stage["persist"]
            if (workdir / path).exists() and (returncode == 0 or not persist):
                store.push(path, workdir, persist=persist)
        return returncode, stage_result(name, workdir, returncode)


# ----------------------------------------------------------------------------------------------------------
# The summary: a submitted run's result (the last line of every orchestrator's submit.py) as Markdown
# ----------------------------------------------------------------------------------------------------------
RUN_STATES = {
    "succeeded": "reached the gate's decision",
    "failed": "failed",
    "timed_out": "did not end in time",
}


def _cell(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def summary(result: dict[str, Any]) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: the run, the gate's decision, the metrics."""
    missing = {"runner", "run_id", "url", "state", "gate", "metrics"} - result.keys()
    if missing or result["state"] not in RUN_STATES:
        raise PipelineError(
            f"not a submitted run's result (missing {sorted(missing)} or state {result.get('state')!r}): "
            "expected the last line of orchestration/<orchestrator>/submit.py --wait"
        )
    run = f"[{result['run_id']}]({result['url']})" if result["url"] else f"`{result['run_id']}`"
    lines = [
        f"## Training pipeline on {result['runner']}: {result['state']}",
        "",
        f"Run {run} {RUN_STATES[result['state']]}.",
        "",
    ]
    gate = result["gate"] or {}
    if gate:
        verdict = {True: "passed", False: "refused the model"}.get(gate.get("passed"), "no decision")
        lines += [f"### Quality gate: {verdict}", "", "| | |", "| -- | -- |"]
        for key in ("passed", "promoted", "candidate_version", "champion_version"):
            if key in gate:
                lines.append(f"| {key} | {_cell(gate[key])} |")
        reasons = [f"- {_cell(reason)}" for reason in gate.get("reasons") or []]
        lines += ["", *reasons, ""] if reasons else [""]
    else:
        lines += ["### Quality gate: no decision", "", "The run ended before the gate reported.", ""]
    metrics = result["metrics"] or {}
    if metrics:
        lines += ["### Metrics (evaluation set)", "", "| metric | value |", "| -- | --: |"]
        lines += [
            f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {_cell(value)} |"
            for name, value in metrics.items()
        ]
        lines.append("")
    return "\n".join(lines)


def _project_params(project_dir: Path) -> dict[str, Any]:
    params = yaml.safe_load((project_dir / "params.yaml").read_text(encoding="utf-8")) or {}
    return {key: value for key, value in params.items() if key != RUNNER_SECTION}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    describe_cmd = commands.add_parser("describe", help="the pipeline of dvc.yaml and params.yaml as JSON")
    describe_cmd.add_argument("--output", type=Path, help="write it to this file (default: print it)")
    run = commands.add_parser(
        "run", help="run one stage with its artefacts in a store (what an orchestrator task runs)"
    )
    run.add_argument("stage")
    run.add_argument(
        "--store", required=True, help="directory or s3:// gs:// az:// URI of the pipeline's artefacts"
    )
    run.add_argument(
        "--run-id", required=True, help="the orchestrator's run id: the run's folder in the store"
    )
    run.add_argument(
        "--params-json", help="the run's parameters (default: params.yaml); merged into params.yaml"
    )
    run.add_argument(
        "--project-dir", type=Path, default=ROOT, help="where contract.yaml and the raw data are"
    )
    run.add_argument(
        "--result-file",
        type=Path,
        help="also write the stage's result (the last line) to this file: an orchestrator's output (a KFP "
        "output parameter, SageMaker's PropertyFile)",
    )
    run.add_argument(
        "--gate-refusal-exit",
        type=int,
        default=GATE_REJECTED,
        help=f"exit status when the gate refuses the model (default {GATE_REJECTED}; 0 where the "
        "orchestrator branches on the result file instead, as SageMaker's ConditionStep does)",
    )
    summary_cmd = commands.add_parser(
        "summary", help="a submitted run's result (submit.py's last line) as Markdown for the job summary"
    )
    summary_cmd.add_argument(
        "result", type=Path, help="a file whose last line is the JSON result of submit.py --wait ('-': stdin)"
    )
    args = parser.parse_args(argv)

    try:
        if args.command == "describe":
            text = render(describe(ROOT / "dvc.yaml", ROOT / "params.yaml"))
            if args.output is None:
                print(text, end="")
            else:
                args.output.write_text(text, encoding="utf-8")
            return 0
        if args.command == "summary":
            text = sys.stdin.read() if str(args.result) == "-" else args.result.read_text(encoding="utf-8")
            lines = text.strip().splitlines()
            print(summary(json.loads(lines[-1]) if lines else {}), end="")
            return 0
        params = _project_params(args.project_dir)
        if args.params_json:
            override = json.loads(args.params_json)
            if not isinstance(override, dict):
                raise PipelineError("--params-json must be a JSON object of params.yaml sections")
            params = merge(params, {k: v for k, v in override.items() if k != RUNNER_SECTION})
        returncode, result = run_stage(
            args.stage,
            store=Store(os.path.expandvars(args.store), args.run_id),
            project_dir=args.project_dir.resolve(),
            params=params,
            spec=describe(args.project_dir / "dvc.yaml", args.project_dir / "params.yaml"),
        )
    except (PipelineError, json.JSONDecodeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.result_file is not None:
        args.result_file.parent.mkdir(parents=True, exist_ok=True)
        args.result_file.write_text(json.dumps(result, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(result, sort_keys=True), flush=True)
    if args.stage == "gate" and returncode != 0 and result.get("gate", {}).get("passed") is False:
        return args.gate_refusal_exit
    return returncode


if __name__ == "__main__":
    sys.exit(main())
