"""The FastAPI application: health, readiness, prediction, metrics and version routes (+ SageMaker aliases).

The prediction route reads the raw body and validates it with the contract-generated pydantic models itself:
one JSON parse, no per-request DataFrame, records -> the feature matrix -> the ONNX model -> the task's
prediction. Every invalid request gets a 4xx with the reason; only a fault of the service itself can produce
a 5xx.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pydantic_core
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from .. import __version__
from ..contract import load_contract
from ..metadata import ModelArtifactError
from ..scoring.example import example_record
from . import metrics
from .auth import CHALLENGE, SECURITY_SCHEME, log_auth_mode
from .entity_lookup import (
    EntityRequest,
    EntityRequestInvalid,
    FeatureLookup,
    as_records_payload,
    entity_request,
    load_lookup,
)
from .inference_log import InferenceLog
from .middleware import RequestContextMiddleware
from .predictor import Predictor
from .schemas import (
    MAX_ECHOED_CHARS,
    MAX_REPORTED_ERRORS,
    ErrorResponse,
    HealthResponse,
    NotReadyResponse,
    ReadyResponse,
    RequestParser,
    RequestRejected,
    ValidationErrorResponse,
    VersionResponse,
    contract_example,
    response_models,
)
from .scorer import CoalescingScorer
from .settings import Settings

logger = logging.getLogger(__name__)

JSON_MEDIA_TYPE = "application/json"
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a request the client abandoned


class RawBodyRoute(APIRoute):
    """A route whose endpoint takes the Request and returns a Response itself.

    It is documented in OpenAPI like any route (openapi_extra describes the body), but FastAPI's parameter
    resolution is skipped: the endpoint reads and validates the body in one pass, which is the hot path.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


class ServiceState:
    """What the routes share: settings, and the model and inference log once the lifespan has loaded them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.contract = load_contract()
        try:
            example = example_record(settings.model_dir)
        except (OSError, KeyError, ValueError):  # no model yet: an example from the contract's ranges
            example = contract_example(self.contract)
        self.parser = RequestParser(self.contract, settings.max_batch_size, example)
        self.predictor: Predictor | None = None
        self.inference_log: InferenceLog | None = None
        self.scorer: CoalescingScorer | None = None
        self.features: FeatureLookup | None = None
        self.features_error: str | None = None

    def entity_request(self, payload: Any) -> EntityRequest | None:
        if self.settings.feature_store_yaml is None:
            return None
        return entity_request(payload, self.contract, self.settings.max_batch_size)

    def load_features(self) -> None:
        """The online store of /predict by id (FEATURE_STORE_YAML); a failure leaves by-id requests a 503."""
        try:
            self.features = load_lookup(
                self.settings.feature_store_yaml, self.contract, self.settings.feature_max_age_seconds
            )
        except Exception as error:
            self.features_error = f"the feature store is not available: {error}"
            logger.exception("the feature store failed to open: predictions by id answer 503")

    def load(self) -> None:
        try:
            self.predictor = Predictor.load(self.settings.model_dir, self.contract)
        except ModelArtifactError as error:
            # Stay up (liveness OK) but not ready: the orchestrator keeps traffic away and the logs say why.
            logger.error(
                "no model to serve: /ready answers 503 until one is deployed", extra={"reason": str(error)}
            )
            return
        except Exception:
            logger.exception("the model failed to load: /ready answers 503")
            return
        metadata = self.predictor.metadata
        metrics.set_model(metadata)
        self.inference_log = InferenceLog(
            self.settings.inference_log_dir,
            self.settings.inference_log_sample_rate,
            metadata.model_version,
            rotate_seconds=self.settings.inference_log_rotate_seconds,
            rotate_bytes=self.settings.inference_log_rotate_bytes,
        )
        self.scorer = CoalescingScorer(self.predictor, self.inference_log)
        # Everything loaded so far (libraries, the model) lives as long as the process: move it out of the
        # garbage collector's reach. Otherwise every full collection walks those ~10^5 objects, a 100+ ms
        # pause that shows up as the p99 latency of whatever requests are in flight.
        gc.collect()
        gc.freeze()

    def authorized(self, request: Request) -> bool:
        """Whether the request may use the model routes (AUTH_MODE; serving/auth.py)."""
        if self.settings.auth_mode != "api_key":
            return True
        return self.settings.api_keys.accepts(request.headers.get("authorization"))

    def close(self) -> None:
        if self.inference_log is not None:
            self.inference_log.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app (uvicorn calls this in every worker: `create_app` is the factory)."""
    state = ServiceState(settings or Settings.from_env())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log_auth_mode(state.settings.auth_mode, state.settings.api_keys)
        state.load_features()
        state.load()
        yield
        state.close()

    # In production the document and its viewers are not served (the schema of the inputs, with their ranges,
    # is for the team); create_app(settings).openapi() builds it from the app object whatever APP_ENV says.
    public_docs = not state.settings.production
    app = FastAPI(
        title="Prediction service",
        version=__version__,
        description="Scores records against the champion model. Inputs follow the project's data contract. "
        "Metrics (Prometheus) are served on METRICS_PORT, not here.",
        lifespan=lifespan,
        docs_url="/docs" if public_docs else None,
        redoc_url="/redoc" if public_docs else None,
        openapi_url="/openapi.json" if public_docs else None,
    )
    app.add_middleware(RequestContextMiddleware)

    async def health() -> Response:
        """Liveness: the process answers HTTP."""
        return _json(200, {"status": "ok"})

    async def ready() -> Response:
        """Readiness: 200 once the model is loaded, else 503."""
        if state.predictor is None:
            return _json(503, {"status": "unavailable", "detail": "the model is not loaded"})
        return _json(200, {"status": "ready", "model_version": state.predictor.metadata.model_version})

    async def predict(request: Request) -> Response:
        """Score one record, or {"records": [...]} (at most MAX_BATCH_SIZE)."""
        if not state.authorized(request):
            return _unauthorized()
        scorer = state.scorer
        if scorer is None:
            return _error(503, "the model is not loaded")
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != JSON_MEDIA_TYPE:
            return _error(415, f"Content-Type must be {JSON_MEDIA_TYPE}, got {content_type or 'none'!r}")
        try:
            body = await _read_body(request, state.settings.max_request_bytes)
        except ClientDisconnect:  # nobody to answer; 499 keeps it out of the 5xx error ratio
            return _error(CLIENT_CLOSED_REQUEST, "the client disconnected before sending the whole body")
        if body is None:
            return _error(413, f"the request body is larger than {state.settings.max_request_bytes} bytes")
        try:
            payload = pydantic_core.from_json(body)
        except ValueError as error:
            return _error(400, f"the request body is not valid JSON: {error}")

        # With a feature store (FEATURE_STORE_YAML), a body of ids only is looked up into full records.
        try:
            by_id = state.entity_request(payload)
        except EntityRequestInvalid as error:
            return _validation_error(error.errors, len(error.errors))
        if by_id is not None:
            looked_up = await _look_up(by_id)
            if isinstance(looked_up, Response):
                return looked_up
            payload = looked_up

        try:
            parsed = state.parser.parse(payload)
        except RequestRejected as error:
            return _validation_error(error.errors, error.count)
        except ValidationError as error:
            entries = error.errors(include_url=False, include_input=False, include_context=False)
            return _validation_error(list(entries[:MAX_REPORTED_ERRORS]), len(entries))

        result = await scorer.score(parsed.records)

        model_version = scorer.predictor.metadata.model_version
        # each prediction echoes its record's id (the contract's id column), when the record had one
        predictions = [
            {**prediction, **echo} if echo else prediction
            for prediction, echo in zip(result.records, parsed.echoes, strict=True)
        ]
        if parsed.is_batch:
            return _json(200, {"predictions": predictions, "model_version": model_version})
        return _json(200, {**predictions[0], "model_version": model_version})

    async def _look_up(request: EntityRequest) -> Any:
        """The full-record body of a by-id request, or the 404/503 response that answers it."""
        features = state.features
        if features is None:
            return _error(
                503, f"{state.features_error or 'the feature store is not open'}; send the full record"
            )
        try:
            found = await asyncio.to_thread(features.lookup, request.ids)
        except Exception as error:  # unreachable, not applied or stale: the reason, never a 500
            metrics.observe_feature_lookup_failure()
            logger.warning("feature lookup failed", extra={"reason": str(error)})
            return _error(503, str(error))
        metrics.observe_feature_lookup(len(request.ids), found.seconds, features.materialized_until())
        missing = [
            entity for entity, record in zip(request.ids, found.records, strict=True) if record is None
        ]
        if missing:
            metrics.observe_feature_lookup_misses(len(missing))
            id_column = state.contract.id_column
            named = ", ".join(repr(_cut(entity)) for entity in missing[:MAX_REPORTED_ERRORS])
            more = (
                f" and {len(missing) - MAX_REPORTED_ERRORS} more"
                if len(missing) > MAX_REPORTED_ERRORS
                else ""
            )
            return _error(404, f"no features in the online store for {id_column} {named}{more}")
        return as_records_payload(request, [record for record in found.records if record is not None])

    async def version(request: Request) -> Response:
        """The model being served and the service code version."""
        if not state.authorized(request):
            return _unauthorized()
        if state.predictor is None:
            return _error(503, "the model is not loaded")
        metadata = state.predictor.metadata
        return _json(
            200,
            {
                "model_version": metadata.model_version,
                "git_sha": metadata.git_sha,
                "trained_at": metadata.trained_at,
                "task": metadata.task,
                "service_version": __version__,
                # the model registry's version of this model, when the image was built from the registry
                "registry_version": metadata.tracking.get("registered_version"),
            },
        )

    # The document states what the routes do, error responses included (the routes build their JSON by hand:
    # these models only document it; the generated test_openapi_contract.py holds the two to each other).
    predict_body = {"requestBody": state.parser.request_body_openapi()}
    single_response, batch_response = response_models(state.contract, state.settings.max_batch_size)
    not_loaded = {"model": ErrorResponse, "description": "The model is not loaded."}
    predict_responses: dict[int | str, dict[str, Any]] = {
        200: {
            "model": single_response | batch_response,
            "description": "The prediction of the record, or of each record of the batch in order.",
        },
        400: {"model": ErrorResponse, "description": "The body is not valid JSON."},
        413: {
            "model": ErrorResponse,
            "description": f"The body is larger than {state.settings.max_request_bytes} bytes "
            "(MAX_REQUEST_BYTES).",
        },
        415: {"model": ErrorResponse, "description": f"The Content-Type is not {JSON_MEDIA_TYPE}."},
        422: {
            "model": ValidationErrorResponse,
            "description": f"The body breaks the data contract: the first {MAX_REPORTED_ERRORS} broken "
            "fields and their count.",
        },
        503: not_loaded,
    }
    if state.settings.feature_store_yaml is not None:
        predict_responses[404] = {
            "model": ErrorResponse,
            "description": "By id: the online store has no features for the named ids.",
        }
        predict_responses[503] = {
            "model": ErrorResponse,
            "description": "The model is not loaded; or, by id, the feature store is unreachable or stale.",
        }
    version_responses: dict[int | str, dict[str, Any]] = {200: {"model": VersionResponse}, 503: not_loaded}
    secured: dict[str, Any] = {}
    if state.settings.auth_mode == "api_key":
        unauthorized = {"model": ErrorResponse, "description": "No API key, or not one of API_KEYS."}
        predict_responses[401] = version_responses[401] = unauthorized
        secured = {"security": [{SECURITY_SCHEME: []}]}
        _document_api_key(app)
    ready_responses: dict[int | str, dict[str, Any]] = {
        200: {"model": ReadyResponse, "description": "The model is loaded."},
        503: {"model": NotReadyResponse, "description": "The model is not loaded."},
    }
    app.add_api_route(
        "/health", health, methods=["GET"], tags=["probes"], responses={200: {"model": HealthResponse}}
    )
    app.add_api_route("/ready", ready, methods=["GET"], tags=["probes"], responses=ready_responses)
    app.add_api_route(
        "/ping",
        ready,
        methods=["GET"],
        tags=["sagemaker"],
        summary="SageMaker alias of /ready",
        responses=ready_responses,
    )
    predict_route: dict[str, Any] = {
        "endpoint": predict,
        "methods": ["POST"],
        "route_class_override": RawBodyRoute,
        "openapi_extra": {**predict_body, **secured},
        "responses": predict_responses,
    }
    app.router.add_api_route("/predict", tags=["model"], **predict_route)
    app.router.add_api_route(
        "/invocations", tags=["sagemaker"], summary="SageMaker alias of /predict", **predict_route
    )
    app.add_api_route(
        "/version",
        version,
        methods=["GET"],
        tags=["model"],
        responses=version_responses,
        openapi_extra=secured,
    )
    return app


def _document_api_key(app: FastAPI) -> None:
    """Declare the bearer API key in the OpenAPI components (the secured operations refer to it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "One of the service's API keys (API_KEYS / API_KEYS_FILE).",
        }
        return document

    app.openapi = openapi  # type: ignore[method-assign]


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` bytes (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _unauthorized() -> Response:
    """401 before the body is read: an unauthenticated request costs no parsing."""
    response = _error(401, "an API key is required: send Authorization: Bearer <key>")
    response.headers["WWW-Authenticate"] = CHALLENGE
    return response


def _json(status: int, content: Mapping[str, Any] | Sequence[Any]) -> Response:
    # pydantic-core's serializer: ~5x faster than json.dumps on a 100-prediction response
    return Response(pydantic_core.to_json(content), status_code=status, media_type=JSON_MEDIA_TYPE)


def _error(status: int, detail: Any) -> Response:
    return _json(status, {"detail": detail})


def _validation_error(entries: Sequence[Mapping[str, Any]], count: int) -> Response:
    """422 with the first broken fields: where (loc), what (msg) and the error type, and how many there are.

    No input is echoed, and names and messages are cut to MAX_ECHOED_CHARS: the answer stays within a few
    kilobytes whatever the body (a key of 900 KB is not sent back).
    """
    details = [
        {
            "loc": ["body", *(_cut(part) if isinstance(part, str) else part for part in entry["loc"])],
            "msg": _cut(entry["msg"]),
            "type": entry["type"],
        }
        for entry in entries[:MAX_REPORTED_ERRORS]
    ]
    return _json(422, {"detail": details, "error_count": count})


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ECHOED_CHARS else f"{text[:MAX_ECHOED_CHARS]}..."
