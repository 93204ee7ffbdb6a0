"""Request and response bodies of the service. The request models are generated from the data contract, so the
API accepts exactly what the model was trained on: types, ranges, categories, and no other fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, create_model

from ..contract import CATEGORICAL, FEATURE_COLUMNS, NUMERIC, CategoricalField, NumericField
from .example import example_record

# strict: "12" is not an integer and 1 is not a category. extra="forbid": ids and typos are rejected.
_REQUEST_CONFIG = ConfigDict(extra="forbid", strict=True)


def _numeric_field(spec: NumericField) -> Any:
    if spec.dtype == "int":
        return Annotated[int, Field(ge=spec.minimum, le=spec.maximum, description=spec.description)]
    return Annotated[
        float, Field(ge=spec.minimum, le=spec.maximum, allow_inf_nan=False, description=spec.description)
    ]


def _categorical_field(spec: CategoricalField) -> Any:
    return Annotated[Literal.__getitem__(spec.categories), Field(description=spec.description)]


_RECORD_FIELDS: dict[str, Any] = {
    name: (_numeric_field(NUMERIC[name]) if name in NUMERIC else _categorical_field(CATEGORICAL[name]), ...)
    for name in FEATURE_COLUMNS
}
_EXAMPLE: dict[str, JsonValue] = dict(example_record())

PredictionRecord: type[BaseModel] = create_model(
    "PredictionRecord",
    __config__=ConfigDict(**_REQUEST_CONFIG, json_schema_extra={"examples": [_EXAMPLE]}),
    __doc__="The model inputs of one record (see the data contract).",
    **_RECORD_FIELDS,
)


def batch_request_model(max_batch_size: int) -> type[BaseModel]:
    """The model of a batch body, {"records": [...]}, with 1 to `max_batch_size` records."""
    return create_model(
        "BatchPredictionRequest",
        __config__=_REQUEST_CONFIG,
        __doc__=f"Up to {max_batch_size} records scored in one call.",
        records=(list[PredictionRecord], Field(min_length=1, max_length=max_batch_size)),  # type: ignore[valid-type]
    )


VERTEX_ENVELOPE = frozenset({"instances", "parameters"})


class RequestParser:
    """Turn a parsed JSON body into validated records: one record, or a batch when it has a "records" key.

    Vertex AI's prediction envelope, {"instances": [...], "parameters": {...}}, is a batch of its instances.
    """

    def __init__(self, max_batch_size: int) -> None:
        self.max_batch_size = max_batch_size
        self._batch_model = batch_request_model(max_batch_size)

    def records(self, payload: Any) -> tuple[list[dict[str, Any]], bool]:
        """(records, is_batch); raises pydantic.ValidationError naming every broken field."""
        if isinstance(payload, dict) and "instances" in payload and set(payload) <= VERTEX_ENVELOPE:
            payload = {"records": payload["instances"]}
        if isinstance(payload, dict) and "records" in payload:
            return self._batch_model.model_validate(payload).model_dump()["records"], True
        return [PredictionRecord.model_validate(payload).model_dump()], False


def request_body_openapi(max_batch_size: int) -> dict[str, Any]:
    """OpenAPI `requestBody` of /predict (the route reads the raw body itself: faster than a Body param)."""
    record = PredictionRecord.model_json_schema()
    batch = {
        "title": "BatchPredictionRequest",
        "type": "object",
        "properties": {
            "records": {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch_size}
        },
        "required": ["records"],
        "additionalProperties": False,
    }
    return {
        "required": True,
        "content": {"application/json": {"schema": {"oneOf": [record, batch]}}},
    }


class Prediction(BaseModel):
    score: float = Field(description="Predicted probability of the positive class.")
    predicted_class: int = Field(description="1 when score >= the model's decision threshold, else 0.")


class PredictionResponse(Prediction):
    model_version: str


class BatchPredictionResponse(BaseModel):
    predictions: list[Prediction]
    model_version: str


class VersionResponse(BaseModel):
    model_version: str
    git_sha: str
    trained_at: str
    service_version: str
