"""The prediction service over HTTP: routes, the request contract, error statuses, metrics, logs and the
inference log. Invalid input must always get a 4xx with the reason, never a 5xx.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from customer_churn.artifacts import load_model
from customer_churn.contract import CATEGORICAL, FEATURE_COLUMNS, ID_COLUMN, NUMERIC
from customer_churn.features import records_to_columns
from customer_churn.serving.app import create_app
from customer_churn.serving.client import main as client_main
from customer_churn.serving.client import request
from customer_churn.serving.example import example_record
from customer_churn.serving.settings import Settings

JSON = "application/json"
MAX_BATCH_SIZE = 5
MAX_REQUEST_BYTES = 4096


@pytest.fixture(scope="session")
def metadata(trained_model_dir: Path) -> dict[str, Any]:
    return json.loads((trained_model_dir / "metadata.json").read_text())


@pytest.fixture
def settings(trained_model_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        model_dir=trained_model_dir,
        max_batch_size=MAX_BATCH_SIZE,
        max_request_bytes=MAX_REQUEST_BYTES,
        inference_log_dir=tmp_path / "inference",
        inference_log_sample_rate=1.0,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:  # `with` runs the lifespan: the model is loaded
        yield test_client


def record(**changes: Any) -> dict[str, Any]:
    return {**example_record(), **changes}


def test_health_answers_without_a_model(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(model_dir=tmp_path / "missing"))) as client:
        assert client.get("/health").status_code == 200
        for path in ("/ready", "/ping", "/version"):
            assert client.get(path).status_code == 503, path
        response = client.post("/predict", json=record())
    assert response.status_code == 503
    assert "not loaded" in response.json()["detail"]


def test_ready_once_the_model_is_loaded(settings: Settings) -> None:
    app = create_app(settings)
    assert TestClient(app).get("/ready").status_code == 503  # no lifespan run yet: nothing loaded
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
        assert client.get("/ping").status_code == 200


def test_predict_one_record_scores_it_with_the_model(client: TestClient, trained_model_dir: Path) -> None:
    response = client.post("/predict", json=record())

    assert response.status_code == 200
    body = response.json()
    artifact = load_model(trained_model_dir)
    expected = artifact.score(records_to_columns([record()]))[0]
    assert body["score"] == pytest.approx(expected, abs=1e-12)
    assert body["predicted_class"] == int(expected >= artifact.threshold)
    assert body["model_version"] == artifact.model_version


def test_predict_batch_keeps_the_order_of_the_records(client: TestClient) -> None:
    records = [record(tenure_months=tenure) for tenure in (0, 30, 60, 90, 120)]

    response = client.post("/predict", json={"records": records})

    assert response.status_code == 200
    batch_scores = [p["score"] for p in response.json()["predictions"]]
    single_scores = [client.post("/predict", json=r).json()["score"] for r in records]
    assert batch_scores == pytest.approx(single_scores, abs=1e-12)
    assert len(set(batch_scores)) > 1  # the records differ, so must their scores


def test_invocations_is_the_sagemaker_alias_of_predict(client: TestClient) -> None:
    assert client.post("/invocations", json=record()).json() == client.post("/predict", json=record()).json()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({k: v for k, v in record().items() if k != "plan"}, "plan", id="missing-field"),
        pytest.param(record(tenure_months="twelve"), "tenure_months", id="wrong-type"),
        pytest.param(record(tenure_months="12"), "tenure_months", id="number-as-string"),
        pytest.param(record(tenure_months=12.5), "tenure_months", id="fraction-for-int"),
        pytest.param(
            record(monthly_charges=NUMERIC["monthly_charges"].maximum + 1), "monthly_charges", id="above"
        ),
        pytest.param(record(support_tickets=-1), "support_tickets", id="below-range"),
        pytest.param(record(plan="platinum"), "plan", id="unknown-category"),
        pytest.param(record(contract_type=None), "contract_type", id="null"),
        pytest.param(record(**{ID_COLUMN: "C000001"}), ID_COLUMN, id="extra-field-id"),
        pytest.param({"records": []}, "records", id="empty-batch"),
        pytest.param({"records": [record()] * (MAX_BATCH_SIZE + 1)}, "records", id="batch-over-limit"),
        pytest.param({"records": [record(), record(plan="gold")]}, "plan", id="bad-record-in-batch"),
        pytest.param({"records": [record()], "extra": 1}, "extra", id="batch-extra-field"),
        pytest.param([record()], None, id="list-body"),
        pytest.param(None, None, id="null-body"),
    ],
)
def test_invalid_records_get_422_naming_the_field(
    client: TestClient, payload: Any, field: str | None
) -> None:
    response = client.post(
        "/predict", content=json.dumps(payload), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert errors
    assert all({"loc", "msg", "type"} <= error.keys() for error in errors)
    if field is not None:
        assert any(field in error["loc"] for error in errors), errors


def test_batch_error_locates_the_record(client: TestClient) -> None:
    response = client.post("/predict", json={"records": [record(), record(plan="gold")]})

    assert response.json()["detail"][0]["loc"] == ["body", "records", 1, "plan"]


@pytest.mark.parametrize(
    "body", [b'{"tenure_months": 3', b"not json", b"", b"\xff\xfe", b'{"a": NaN'], ids=repr
)
def test_malformed_json_is_400(client: TestClient, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_422(client: TestClient, number: str) -> None:
    body = json.dumps(record(monthly_charges="<number>")).replace('"<number>"', number)

    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 422


def test_oversized_body_is_413(client: TestClient) -> None:
    body = json.dumps({"records": [record()], "padding": "x" * MAX_REQUEST_BYTES}).encode()

    declared = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    streamed = client.post(  # chunked: no Content-Length to check up front
        "/predict", content=iter([body[:1000], body[1000:]]), headers={"Content-Type": "application/json"}
    )

    assert declared.status_code == 413
    assert streamed.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_other_content_types_are_415(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/predict", content=json.dumps(record()).encode(), headers=headers)

    assert response.status_code == 415


def test_json_content_type_parameters_are_accepted(client: TestClient) -> None:
    response = client.post(
        "/predict", content=json.dumps(record()), headers={"Content-Type": "application/json; charset=utf-8"}
    )

    assert response.status_code == 200


def test_unknown_routes_and_methods_are_4xx(client: TestClient) -> None:
    assert client.get("/nope").status_code == 404
    assert client.get("/predict").status_code == 405


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_expose_the_contract_names(client: TestClient) -> None:
    client.post("/predict", json=record())

    text = client.get("/metrics").text

    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "model_predictions_total",
        "model_prediction_score_bucket",
        "model_input_out_of_range_total",
        "model_info",
        "model_age_seconds",
    ):
        assert f"\n{name}" in text, name
    assert 'route="/predict"' in text


def test_metrics_count_requests_predictions_and_out_of_range_inputs(
    client: TestClient, metadata: dict[str, Any]
) -> None:
    # A value the contract accepts but training never saw: above the training maximum of some feature.
    feature, value = next(
        (name, NUMERIC[name].maximum)
        for name, seen in metadata["training_ranges"].items()
        if NUMERIC[name].maximum > seen["max"]
    )
    labels = {"method": "POST", "route": "/predict", "status": "200"}
    before_requests = sample("http_requests_total", **labels)
    before_predictions = predictions_total()
    before_out_of_range = sample("model_input_out_of_range_total", feature=feature)

    unseen = record(**{feature: value})
    seen = record(**{name: int(bounds["min"]) for name, bounds in metadata["training_ranges"].items()})
    client.post("/predict", json={"records": [unseen, seen]})

    assert sample("http_requests_total", **labels) == before_requests + 1
    assert predictions_total() == before_predictions + 2
    assert sample("model_input_out_of_range_total", feature=feature) == before_out_of_range + 1


def predictions_total() -> float:
    return sample("model_predictions_total", predicted_class="0") + sample(
        "model_predictions_total", predicted_class="1"
    )


def test_model_age_and_info(client: TestClient, metadata: dict[str, Any]) -> None:
    text = client.get("/metrics").text

    age = next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("model_age_seconds "))
    assert age > 0
    labels = f'git_sha="{metadata["git_sha"]}",model_version="{metadata["model_version"]}"'
    assert "model_info{" + labels + "} 1.0" in text


def test_version_describes_the_model(client: TestClient, metadata: dict[str, Any]) -> None:
    body = client.get("/version").json()

    assert {key: body[key] for key in ("model_version", "git_sha", "trained_at")} == {
        key: metadata[key] for key in ("model_version", "git_sha", "trained_at")
    }


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123"})
    generated = client.post("/predict", json=record())
    forged = client.get("/health", headers={"X-Request-ID": 'x"\n{"level": "error"}'})

    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    assert forged.headers["x-request-id"] != 'x"\n{"level": "error"}'


def test_error_responses_carry_the_request_id_too(client: TestClient) -> None:
    response = client.post("/predict", json={"records": []}, headers={"X-Request-ID": "req-1"})

    assert response.status_code == 422
    assert response.headers["x-request-id"] == "req-1"


def test_inference_log_holds_the_model_inputs_only(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        client.post("/predict", json={"records": [record(), record(plan="premium")]})
        client.post("/predict", json=record(tenure_months=7))
    # leaving the `with` ran the shutdown, which flushes the log

    files = list(settings.inference_log_dir.glob("inference-*.jsonl"))
    assert len(files) == 1
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(lines) == 3
    for line in lines:
        assert set(line) == {"ts", "model_version", "features", "score", "predicted_class"}
        assert list(line["features"]) == list(FEATURE_COLUMNS)
        assert ID_COLUMN not in json.dumps(line)
    assert [line["features"]["tenure_months"] for line in lines][-1] == 7


def test_inference_log_can_be_disabled(settings: Settings, tmp_path: Path) -> None:
    log_dir = tmp_path / "off"
    off = replace(settings, inference_log_dir=log_dir, inference_log_sample_rate=0.0)
    with TestClient(create_app(off)) as client:
        assert client.post("/predict", json=record()).status_code == 200

    assert not log_dir.exists()


def test_an_unwritable_inference_log_does_not_fail_requests(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    broken = replace(settings, inference_log_dir=blocker / "inference")
    with TestClient(create_app(broken)) as client:
        assert client.post("/predict", json=record()).status_code == 200


def test_openapi_documents_the_contract(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    single, batch = body["oneOf"]
    assert list(single["properties"]) == list(FEATURE_COLUMNS)
    assert single["additionalProperties"] is False
    plan = single["properties"]["plan"]
    assert plan["enum"] == list(CATEGORICAL["plan"].categories)
    assert single["properties"]["tenure_months"]["maximum"] == NUMERIC["tenure_months"].maximum
    assert batch["properties"]["records"]["maxItems"] == MAX_BATCH_SIZE


def test_every_valid_extreme_is_scored(client: TestClient) -> None:
    """What the request model accepts, the features and the model can score: range ends, every category."""
    records = [
        record(**{name: spec.minimum for name, spec in NUMERIC.items()}),
        record(**{name: spec.maximum for name, spec in NUMERIC.items()}),
        *(record(**{name: category}) for name, spec in CATEGORICAL.items() for category in spec.categories),
    ]
    for one in records:
        response = client.post("/predict", json=one)
        assert response.status_code == 200, (one, response.text)
        assert 0.0 <= response.json()["score"] <= 1.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the service exited during start-up"
        try:
            if request(f"{url}/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url}/ready did not answer 200 within {timeout}s")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_the_service_runs_and_the_client_calls_it(
    trained_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: int
) -> None:
    """`python -m <package>.serving` with 1 and 2 workers; metrics are totals over all workers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "MODEL_DIR": str(trained_model_dir),
        "INFERENCE_LOG_DIR": str(tmp_path / "inference"),
    }
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "customer_churn.serving", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(url, service)
            client_exit = client_main(["--url", url])
            client_output = capsys.readouterr().out
            health_exit = client_main(["--url", url, "--check", "/health"])
            for _ in range(9):
                assert request(f"{url}/predict", record())[0] == 200
            metrics_text = request(f"{url}/metrics")[1]
        finally:
            service.terminate()
            service.wait(timeout=30)

    assert client_exit == 0
    assert 0.0 <= json.loads(client_output)["score"] <= 1.0
    assert health_exit == 0
    predict_count = next(
        float(line.split()[-1])
        for line in metrics_text.splitlines()
        if line.startswith("http_requests_total{") and 'route="/predict"' in line and 'status="200"' in line
    )
    assert predict_count == 10  # the client's request and 9 more, whichever worker served them
    log_lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("route") == "/predict" and "request_id" in line for line in log_lines)
