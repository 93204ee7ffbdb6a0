"""Request and response bodies of the service, generated from the data contract at start-up.

The request models accept exactly what the model was trained on: the contract's inputs with their types,
ranges and categories, null (or left out) only where the contract says nullable, and no other field. The
response models follow the task (scoring/outputs.py). Field names are the contract's column names, whatever
they are (they are aliases of internal Python names).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..contract import Column, Contract

# strict: "12" is not an integer and 1 is not a category. extra="forbid": ids and typos are rejected.
_REQUEST_CONFIG = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


def _input_type(column: Column) -> Any:
    if column.dtype == "category":
        return Literal.__getitem__(column.categories)
    if column.dtype == "int":
        return Annotated[int, Field(ge=column.minimum, le=column.maximum)]
    return Annotated[float, Field(ge=column.minimum, le=column.maximum, allow_inf_nan=False)]


def contract_example(contract: Contract) -> dict[str, Any]:
    """A valid record when no model is loaded yet: mid-range numbers and first categories."""
    record: dict[str, Any] = {}
    for name, column in contract.columns.items():
        if column.dtype == "category":
            record[name] = column.categories[0]
            continue
        low = column.minimum if column.minimum is not None else 0.0
        high = column.maximum if column.maximum is not None else low
        middle = (low + high) / 2
        record[name] = round(middle) if column.dtype == "int" else round(middle, 4)
    return record


def record_model(contract: Contract, example: dict[str, Any]) -> type[BaseModel]:
    """The pydantic model of one record of model inputs."""
    fields: dict[str, Any] = {}
    for position, (name, column) in enumerate(contract.columns.items()):
        kind = _input_type(column)
        description = column.description or None
        if column.nullable:
            fields[f"field_{position}"] = (kind | None, Field(None, alias=name, description=description))
        else:
            fields[f"field_{position}"] = (kind, Field(..., alias=name, description=description))
    return create_model(
        "PredictionRecord",
        __config__=ConfigDict(**_REQUEST_CONFIG, json_schema_extra={"examples": [example]}),
        __doc__=f"The model inputs of one record of {contract.name} (contract.yaml).",
        **fields,
    )


VERTEX_ENVELOPE = frozenset({"instances", "parameters"})


class RequestParser:
    """Turn a parsed JSON body into validated records: one record, or a batch when it has a "records" key.

    Vertex AI's prediction envelope, {"instances": [...], "parameters": {...}}, is a batch of its instances.
    """

    def __init__(self, contract: Contract, max_batch_size: int, example: dict[str, Any]) -> None:
        self.max_batch_size = max_batch_size
        self.record_model = record_model(contract, example)
        self.batch_model = create_model(
            "BatchPredictionRequest",
            __config__=_REQUEST_CONFIG,
            __doc__=f"Up to {max_batch_size} records scored in one call.",
            records=(list[self.record_model], Field(min_length=1, max_length=max_batch_size)),  # type: ignore[name-defined]
        )

    def records(self, payload: Any) -> tuple[list[dict[str, Any]], bool]:
        """(records, is_batch); raises pydantic.ValidationError naming every broken field."""
        if isinstance(payload, dict) and "instances" in payload and set(payload) <= VERTEX_ENVELOPE:
            payload = {"records": payload["instances"]}
        if isinstance(payload, dict) and "records" in payload:
            batch = self.batch_model.model_validate(payload)
            return [record.model_dump(by_alias=True) for record in batch.records], True  # type: ignore[attr-defined]
        return [self.record_model.model_validate(payload).model_dump(by_alias=True)], False

    def request_body_openapi(self) -> dict[str, Any]:
        """OpenAPI `requestBody` of /predict (the route reads the raw body itself: faster than a Body)."""
        record = self.record_model.model_json_schema(by_alias=True)
        batch = {
            "title": "BatchPredictionRequest",
            "type": "object",
            "properties": {
                "records": {"type": "array", "items": record, "minItems": 1, "maxItems": self.max_batch_size}
            },
            "required": ["records"],
            "additionalProperties": False,
        }
        return {"required": True, "content": {"application/json": {"schema": {"oneOf": [record, batch]}}}}


def prediction_model(contract: Contract) -> type[BaseModel]:
    """The JSON of one prediction for the contract's task (scoring/outputs.py)."""
    target = contract.target
    if target.task == "regression":
        return create_model(
            "Prediction", prediction=(float, Field(description=f"Predicted {target.column}."))
        )
    label: Any = Literal.__getitem__(target.classes)
    if target.task == "binary":
        return create_model(
            "Prediction",
            score=(
                float,
                Field(description=f"Probability that {target.column} is {target.positive_class!r}."),
            ),
            predicted_class=(
                label,
                Field(description="The positive class when score >= the model's threshold."),
            ),
        )
    return create_model(
        "Prediction",
        predicted_class=(label, Field(description="The most probable class.")),
        probabilities=(dict[str, float], Field(description="Probability of each class (keys: the classes).")),
    )


def response_models(contract: Contract) -> tuple[type[BaseModel], type[BaseModel]]:
    """(single-record response, batch response) models of /predict."""
    prediction: Any = prediction_model(contract)
    single = create_model("PredictionResponse", __base__=prediction, model_version=(str, ...))
    batch = create_model(
        "BatchPredictionResponse", predictions=(list[prediction], ...), model_version=(str, ...)
    )
    return single, batch


class VersionResponse(BaseModel):
    model_version: str
    git_sha: str
    trained_at: str
    task: str
    service_version: str
