"""Parts of the prediction service that are easiest to check on their own: request coalescing, configuration,
structured logs and the command line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from customer_churn.serving.__main__ import main
from customer_churn.serving.inference_log import InferenceLog
from customer_churn.serving.logging_config import REQUEST_ID, JsonFormatter
from customer_churn.serving.predictor import Scores
from customer_churn.serving.scorer import CoalescingScorer
from customer_churn.serving.settings import Settings, SettingsError


class RecordingPredictor:
    """Scores a record as its tenure / 100 and remembers how many rows each model call had."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail
        self.metadata = SimpleNamespace(training_ranges={})

    def score_columns(self, columns: Mapping[str, Sequence[Any]]) -> Scores:
        self.calls.append(len(columns["tenure_months"]))
        if self.fail:
            raise RuntimeError("model exploded")
        scores = [tenure / 100 for tenure in columns["tenure_months"]]
        return Scores(scores=scores, classes=[int(score >= 0.5) for score in scores])


def records(*tenures: int) -> list[dict[str, Any]]:
    row = {
        "monthly_charges": 50.0,
        "total_charges": 500.0,
        "support_tickets": 0,
        "contract_type": "one_year",
        "payment_method": "card",
        "plan": "basic",
    }
    return [{"tenure_months": tenure, **row} for tenure in tenures]


async def score_concurrently(scorer: CoalescingScorer, *requests: list[dict[str, Any]]) -> list[Any]:
    return await asyncio.gather(*(scorer.score(request) for request in requests), return_exceptions=True)


def test_concurrent_requests_share_one_model_call_and_get_their_own_scores() -> None:
    predictor = RecordingPredictor()
    scorer = CoalescingScorer(predictor, inference_log=None)  # type: ignore[arg-type]

    results = asyncio.run(score_concurrently(scorer, records(10), records(60, 70), records(30)))

    assert predictor.calls == [4]
    assert [result.scores for result in results] == [[0.1], [0.6, 0.7], [0.3]]
    assert [result.classes for result in results] == [[0], [1, 1], [0]]


def test_sequential_requests_are_scored_alone() -> None:
    predictor = RecordingPredictor()
    scorer = CoalescingScorer(predictor, inference_log=None)  # type: ignore[arg-type]

    async def one_after_another() -> None:
        await scorer.score(records(10))
        await scorer.score(records(20, 30))

    asyncio.run(one_after_another())

    assert predictor.calls == [1, 2]


def test_a_model_failure_fails_every_request_of_the_batch() -> None:
    scorer = CoalescingScorer(RecordingPredictor(fail=True), inference_log=None)  # type: ignore[arg-type]

    results = asyncio.run(score_concurrently(scorer, records(10), records(20)))

    assert all(isinstance(result, RuntimeError) for result in results)


def test_inference_log_samples_at_the_configured_rate(tmp_path: Path) -> None:
    log = InferenceLog(tmp_path, sample_rate=0.25, model_version="v1", seed=3)
    batch = records(*range(100))

    for _ in range(40):
        log.record(batch, [0.5] * len(batch), [1] * len(batch))
    log.close()

    (path,) = tmp_path.glob("inference-*.jsonl")
    lines = path.read_text().splitlines()
    assert 0.2 * 4000 < len(lines) < 0.3 * 4000
    assert json.loads(lines[0])["model_version"] == "v1"


def test_settings_defaults_follow_the_contract() -> None:
    settings = Settings.from_env({})

    assert (settings.port, settings.web_concurrency, settings.log_level) == (8000, 1, "info")
    assert settings.model_dir == Path("models/champion")
    assert (settings.max_batch_size, settings.max_request_bytes) == (100, 1_048_576)
    assert settings.inference_log_dir == Path("data/inference")
    assert settings.inference_log_sample_rate == 0.1


def test_settings_read_the_environment() -> None:
    settings = Settings.from_env(
        {"PORT": "9000", "WEB_CONCURRENCY": "4", "LOG_LEVEL": "DEBUG", "INFERENCE_LOG_SAMPLE_RATE": "0"}
    )

    assert (settings.port, settings.web_concurrency, settings.log_level) == (9000, 4, "debug")
    assert settings.inference_log_sample_rate == 0.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("WEB_CONCURRENCY", "0"),
        ("MAX_BATCH_SIZE", "-5"),
        ("MAX_REQUEST_BYTES", "1.5"),
        ("INFERENCE_LOG_SAMPLE_RATE", "2"),
        ("INFERENCE_LOG_SAMPLE_RATE", "often"),
        ("LOG_LEVEL", "verbose"),
    ],
)
def test_invalid_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_the_command_line_refuses_a_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "eighty")

    assert main(["serve"]) == 2
    assert "PORT" in capsys.readouterr().err


def test_the_command_line_accepts_only_serve() -> None:
    with pytest.raises(SystemExit):
        main(["train"])


def test_log_lines_are_json_with_the_request_id_and_extra_fields() -> None:
    record = logging.LogRecord("svc", logging.INFO, __file__, 1, "scored %d", (3,), None)
    record.duration_ms = 1.5
    token = REQUEST_ID.set("req-42")
    try:
        line = JsonFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)

    entry = json.loads(line)
    assert entry["message"] == "scored 3"
    assert entry["request_id"] == "req-42"
    assert entry["duration_ms"] == 1.5
    assert entry["level"] == "info"
