"""Request and response bodies of the service, generated from the data contract at start-up.

The request models accept exactly what the model was trained on: the contract's inputs with their types,
ranges and categories, null (or left out) only where the contract says nullable, and no other field, but
the contract's id and timestamp columns (optional): a row of the team's data can be sent as it is. Neither
is a model input. The id must match the contract's `id.pattern` (or, without one, be a string or an
integer) and is echoed in the record's prediction, so callers can join predictions back; the timestamp must
be an ISO 8601 date or date-time. The response models follow the task (scoring/outputs.py). Field names
are the contract's column names, whatever they are (they are aliases of internal Python names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from ..contract import Column, Contract

# strict: "12" is not a number, true is not a number and 1 is not a category. extra="forbid": typos and
# columns the contract does not name are rejected.
_REQUEST_CONFIG = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


def _integral(value: Any) -> Any:
    """JSON has one number type: 28, 28.0 and 2.8e1 are the same integer (JSON Schema's "integer" agrees).

    An integral float becomes that int; any other float is refused here; everything else (int, bool, str...)
    goes on to the strict int check, which takes ints only.
    """
    if not isinstance(value, float):
        return value
    if not math.isfinite(value):
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    if not value.is_integer():
        raise PydanticCustomError(
            "int_from_float", "Input should be a valid integer, got a number with a fractional part"
        )
    return int(value)


def _input_type(column: Column) -> Any:
    if column.dtype == "category":
        return Literal.__getitem__(column.categories)
    low, high = column.minimum, column.maximum
    if column.dtype == "int":
        # the bounds before the validator: that order keeps them as "minimum" / "maximum" in the JSON Schema
        return Annotated[int, Field(ge=low, le=high), BeforeValidator(_integral)]
    return Annotated[float, Field(ge=low, le=high, allow_inf_nan=False)]


# Internal names of the id and timestamp fields (the aliases are the contract's column names).
ID_FIELD, TIMESTAMP_FIELD = "key_id", "key_timestamp"
# An ISO 8601 date, or date-time with an optional UTC offset, checked by its form ([0-9]: ASCII digits only,
# as JSON Schema's regular expressions read \d).
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?)?$"
)


def _one_line(value: str) -> str:
    """Python's `$` also matches before a final line break, which JSON Schema's does not: refuse it."""
    if "\n" in value or "\r" in value:
        raise PydanticCustomError("line_break", "Input should not contain a line break")
    return value


OneLine = Annotated[str, AfterValidator(_one_line)]


def _string_or_integer(value: Any) -> str | int:
    """An id without a pattern: a string, or an integer in any JSON spelling (28, 28.0).

    One validator rather than a union, whose errors name each alternative: a 422 names the field alone.
    """
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise PydanticCustomError("id_type", "Input should be a string or an integer")


_UnpatternedId = Annotated[
    Any,
    BeforeValidator(_string_or_integer),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
]


def key_fields(contract: Contract) -> dict[str, Any]:
    """The optional fields of the contract's id and timestamp (internal name -> (type, Field)).

    Either may be left out, neither may be null. The id is a string matching `id.pattern` (anchored at its
    start, as validation matches it), or, without a pattern, a string or an integer.
    """
    fields: dict[str, Any] = {}
    if contract.id_column:
        echoed = "The record's id: echoed in its prediction, never a model input."
        if contract.id_pattern:
            pattern = f"^(?:{contract.id_pattern})"
            fields[ID_FIELD] = (
                OneLine,
                Field(None, alias=contract.id_column, pattern=pattern, description=echoed),
            )
        else:
            fields[ID_FIELD] = (_UnpatternedId, Field(None, alias=contract.id_column, description=echoed))
    if contract.timestamp_column:
        when = "When the record's event happened (ISO 8601): checked, never a model input."
        fields[TIMESTAMP_FIELD] = (
            OneLine,
            Field(None, alias=contract.timestamp_column, pattern=TIMESTAMP_PATTERN, description=when),
        )
    return fields


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
    fields |= key_fields(contract)
    return create_model(
        "PredictionRecord",
        # python-re: the id's pattern is read as validation reads it (Python's re), lookarounds and all
        __config__=ConfigDict(
            **_REQUEST_CONFIG, regex_engine="python-re", json_schema_extra={"examples": [example]}
        ),
        __doc__=f"The model inputs of one record of {contract.name} (contract.yaml), with its id and "
        "timestamp when the contract has them (optional; never model inputs).",
        **fields,
    )


# A 422 lists the first MAX_REPORTED_ERRORS broken fields (and counts them all), and echoes at most
# MAX_ECHOED_CHARS characters of a name or message: an answer stays small whatever the body.
MAX_REPORTED_ERRORS = 20
MAX_ECHOED_CHARS = 80
VERTEX_ENVELOPE = frozenset({"instances", "parameters"})
_KEYS = {ID_FIELD, TIMESTAMP_FIELD}


@dataclass(frozen=True)
class ParsedRequest:
    """The model inputs of each record, whether the body was a batch, and what each prediction echoes."""

    records: list[dict[str, Any]]
    is_batch: bool
    echoes: list[dict[str, Any]]  # per record: {id column: id} when the record had one, else {}


BATCH_KEYS = ("records", "instances")


FieldErrorEntry = dict[str, Any]  # {"loc": [...], "msg": ..., "type": ...}


class RequestRejected(ValueError):
    """A body refused before validation: its first errors (at most MAX_REPORTED_ERRORS) and how many."""

    def __init__(self, errors: list[FieldErrorEntry], count: int) -> None:
        super().__init__(f"{count} broken fields")
        self.errors = errors
        self.count = count


class _Refusals:
    """Collects the errors of a pre-check, keeping the first MAX_REPORTED_ERRORS and counting all."""

    def __init__(self) -> None:
        self.errors: list[FieldErrorEntry] = []
        self.count = 0

    def add(self, loc: tuple[str | int, ...], kind: str, message: str, times: int = 1) -> None:
        self.count += times
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"loc": list(loc), "msg": message, "type": kind})


class RequestParser:
    """Turn a parsed JSON body into validated records: one record, or a batch when it has a "records" key.

    Vertex AI's prediction envelope, {"instances": [...], "parameters": ...}, is a batch of its instances
    (the parameters are accepted and ignored).
    """

    def __init__(self, contract: Contract, max_batch_size: int, example: dict[str, Any]) -> None:
        self.max_batch_size = max_batch_size
        self.id_column = contract.id_column
        # the keys a record may have: its inputs, and the contract's id and timestamp
        self.record_keys = frozenset(contract.columns) | {
            name for name in (contract.id_column, contract.timestamp_column) if name
        }
        self.record_model = record_model(contract, example)
        records: Any = list[self.record_model]  # type: ignore[name-defined]
        size = Field(min_length=1, max_length=max_batch_size)
        self.batch_model = create_model(
            "BatchPredictionRequest",
            __config__=_REQUEST_CONFIG,
            __doc__=f"Up to {max_batch_size} records scored in one call.",
            records=(records, size),
        )
        self.vertex_model = create_model(
            "VertexPredictionRequest",
            __config__=_REQUEST_CONFIG,
            __doc__=f"Vertex AI's envelope of up to {max_batch_size} records.",
            instances=(records, size),
            parameters=(Any, None),
        )

    def parse(self, payload: Any) -> ParsedRequest:
        """The validated request; raises RequestRejected (before validating: see `refuse_oversized`) or
        pydantic.ValidationError naming the broken fields."""
        self.refuse_oversized(payload)
        if isinstance(payload, dict) and "instances" in payload and set(payload) <= VERTEX_ENVELOPE:
            envelope = self.vertex_model.model_validate(payload)
            return self._parsed(envelope.instances, is_batch=True)  # type: ignore[attr-defined]
        if isinstance(payload, dict) and "records" in payload:
            batch = self.batch_model.model_validate(payload)
            return self._parsed(batch.records, is_batch=True)  # type: ignore[attr-defined]
        return self._parsed([self.record_model.model_validate(payload)], is_batch=False)

    def _parsed(self, validated: list[BaseModel], *, is_batch: bool) -> ParsedRequest:
        records = [record.model_dump(by_alias=True, exclude=_KEYS) for record in validated]
        ids = [getattr(record, ID_FIELD, None) for record in validated]
        echoes = [{self.id_column: key} if key is not None and self.id_column else {} for key in ids]
        return ParsedRequest(records, is_batch, echoes)

    def refuse_oversized(self, payload: Any) -> None:
        """Refuse, before validating anything, what would make validation and its answer unbounded.

        A record with keys that are not inputs (so any record with more keys than the contract has inputs),
        a batch with more than MAX_BATCH_SIZE records, an envelope with more keys than it can have: none can
        be valid, and validating them field by field costs an error per key (1 MB of unknown keys is ~10^5
        errors). Here unknown keys are counted by one set operation per record and the first ones named;
        validation then sees at most the contract's fields per record.
        """
        if not isinstance(payload, dict):
            return
        refusals = _Refusals()
        batch_key = next((key for key in BATCH_KEYS if key in payload), None)
        records = payload.get(batch_key) if batch_key is not None else None
        if batch_key is None:
            self._check_record(payload, (), refusals)
        elif len(payload) > len(VERTEX_ENVELOPE):
            refusals.add((), "too_many_fields", f"a batch has at most 2 keys, got {len(payload)}")
        elif isinstance(records, list) and len(records) > self.max_batch_size:
            message = f"a batch has at most {self.max_batch_size} records, got {len(records)}"
            refusals.add((batch_key,), "too_long", message)
        elif isinstance(records, list):
            for position, record in enumerate(records):
                if isinstance(record, dict):
                    self._check_record(record, (batch_key, position), refusals)
        if refusals.count:
            raise RequestRejected(refusals.errors, refusals.count)

    def _check_record(self, record: dict[str, Any], loc: tuple[str | int, ...], refusals: _Refusals) -> None:
        unknown = len(record.keys() - self.record_keys)  # one set operation, however many keys
        if not unknown:
            return
        named = 0
        if len(refusals.errors) < MAX_REPORTED_ERRORS:
            for key in record:
                if key not in self.record_keys:
                    refusals.add((*loc, key), "extra_forbidden", "Extra inputs are not permitted")
                    named += 1
                    if len(refusals.errors) == MAX_REPORTED_ERRORS:
                        break
        refusals.count += unknown - named

    def request_body_openapi(self) -> dict[str, Any]:
        """OpenAPI `requestBody` of /predict (the route reads the raw body itself: faster than a Body).

        Exactly what `records` accepts: one record, or a batch of 1..max_batch_size records under "records",
        or under Vertex AI's "instances" (with optional, ignored "parameters"); no other key in either.
        """
        record = self.record_model.model_json_schema(by_alias=True)
        records = {"type": "array", "items": record, "minItems": 1, "maxItems": self.max_batch_size}
        batch = {
            "title": "BatchPredictionRequest",
            "description": (
                f'Up to {self.max_batch_size} records scored in one call: {{"records": [...]}}, or Vertex '
                'AI\'s envelope {"instances": [...], "parameters": ...} (the parameters are ignored).'
            ),
            "type": "object",
            "properties": {
                "records": {**records, "title": "Records"},
                "instances": {**records, "title": "Instances"},
                "parameters": {"title": "Parameters", "description": "Vertex AI's parameters: ignored."},
            },
            "additionalProperties": False,
            "oneOf": [
                {
                    "required": ["records"],
                    "not": {"anyOf": [{"required": ["instances"]}, {"required": ["parameters"]}]},
                },
                {"required": ["instances"], "not": {"required": ["records"]}},
            ],
        }
        return {"required": True, "content": {"application/json": {"schema": {"oneOf": [record, batch]}}}}


# The response models document what the routes return (they are not used to build the responses: the routes
# serialize plain dicts, the hot path). extra="forbid": a response has no other key.
_RESPONSE_CONFIG = ConfigDict(extra="forbid")
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def prediction_model(contract: Contract) -> type[BaseModel]:
    """The JSON of one prediction for the contract's task (scoring/outputs.py)."""
    target = contract.target
    if target.task == "regression":
        return create_model(
            "Prediction",
            __config__=_RESPONSE_CONFIG,
            prediction=(float, Field(description=f"Predicted {target.column}.")),
        )
    label: Any = Literal.__getitem__(target.classes)
    if target.task == "binary":
        return create_model(
            "Prediction",
            __config__=_RESPONSE_CONFIG,
            score=(
                Probability,
                Field(description=f"Probability that {target.column} is {target.positive_class!r}."),
            ),
            predicted_class=(
                label,
                Field(description="The positive class when score >= the model's threshold."),
            ),
        )
    per_class: dict[str, Any] = {
        f"class_{position}": (Probability, Field(..., alias=str(label)))
        for position, label in enumerate(target.classes)
    }
    probabilities: Any = create_model(
        "ClassProbabilities",
        __config__=_RESPONSE_CONFIG,
        __doc__="The probability of each class (keys: the classes, as strings).",
        **per_class,
    )
    return create_model(
        "Prediction",
        __config__=_RESPONSE_CONFIG,
        predicted_class=(label, Field(description="The most probable class.")),
        probabilities=(probabilities, Field(description="Probability of each class (keys: the classes).")),
    )


def response_models(
    contract: Contract, max_batch_size: int | None = None
) -> tuple[type[BaseModel], type[BaseModel]]:
    """(single-record response, batch response) models of /predict."""
    prediction: Any = prediction_model(contract)
    if contract.id_column:
        echoed = Field(None, alias=contract.id_column, description="The record's id, when it was sent.")
        id_field: dict[str, Any] = {ID_FIELD: (str | int | None, echoed)}
        prediction = create_model("IdentifiedPrediction", __base__=prediction, **id_field)
    single = create_model("PredictionResponse", __base__=prediction, model_version=(str, ...))
    batch = create_model(
        "BatchPredictionResponse",
        __config__=_RESPONSE_CONFIG,
        predictions=(list[prediction], Field(min_length=1, max_length=max_batch_size)),
        model_version=(str, ...),
    )
    return single, batch


class ErrorResponse(BaseModel):
    """A request the service refuses (400, 413, 415) or cannot serve yet (503)."""

    model_config = _RESPONSE_CONFIG
    detail: str


class FieldError(BaseModel):
    """One broken field: where (loc, from "body"), what (msg) and the error type (long names are cut)."""

    model_config = _RESPONSE_CONFIG
    loc: list[str | int] = Field(min_length=1)
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """422: the body breaks the data contract: the first broken fields, and how many there are."""

    model_config = _RESPONSE_CONFIG
    detail: list[FieldError] = Field(min_length=1, max_length=MAX_REPORTED_ERRORS)
    error_count: int = Field(ge=1, description="How many fields are broken (detail lists the first ones).")


class HealthResponse(BaseModel):
    model_config = _RESPONSE_CONFIG
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    model_config = _RESPONSE_CONFIG
    status: Literal["ready"]
    model_version: str


class NotReadyResponse(BaseModel):
    model_config = _RESPONSE_CONFIG
    status: Literal["unavailable"]
    detail: str


class VersionResponse(BaseModel):
    model_config = _RESPONSE_CONFIG
    model_version: str
    git_sha: str
    trained_at: str
    task: str
    service_version: str
    registry_version: str | None = None
