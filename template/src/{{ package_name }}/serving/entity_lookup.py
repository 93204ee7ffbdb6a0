"""/predict by entity id: recognising a request that names ids only, and reaching the feature store for them.

A body whose only key is the contract's id column, `{"<id>": "..."}` or `{"<id>": ["...", ...]}` (at most
MAX_BATCH_SIZE ids), asks for the prediction of entities whose inputs are in the online store. The inputs are
read (feature_store/online.py, loaded only in a project with feature_store feast and FEATURE_STORE_YAML set),
made into full records and scored exactly as a full record is: same validation, feature matrix and model.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..contract import Contract

logger = logging.getLogger(__name__)

MAX_ID_CHARS = 256


class Lookup(Protocol):
    records: list[dict[str, Any] | None]
    seconds: float


class FeatureLookup(Protocol):
    def lookup(self, ids: Sequence[str]) -> Lookup: ...

    def materialized_until(self) -> float | None: ...


@dataclass(frozen=True)
class EntityRequest:
    ids: list[str]
    is_batch: bool


class EntityRequestInvalid(ValueError):
    """The ids of the body cannot be looked up: 422 entries in the service's format."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid ids")
        self.errors = errors


def entity_request(payload: Any, contract: Contract, max_batch_size: int) -> EntityRequest | None:
    """The ids of a by-id body; None when the body is not one (then it is a record or a batch as ever)."""
    id_column = contract.id_column
    if not id_column or not isinstance(payload, dict) or len(payload) != 1 or id_column not in payload:
        return None
    value = payload[id_column]
    is_batch = isinstance(value, list)
    ids: list[Any] = value if is_batch else [value]
    if not ids or len(ids) > max_batch_size:
        raise EntityRequestInvalid(
            [_error([id_column], f"give between 1 and {max_batch_size} ids (MAX_BATCH_SIZE)", "too_long")]
        )
    pattern = re.compile(contract.id_pattern) if contract.id_pattern else None
    errors = []
    for position, entity in enumerate(ids):
        where = [id_column, position] if is_batch else [id_column]
        if not isinstance(entity, str) or not entity or len(entity) > MAX_ID_CHARS:
            errors.append(
                _error(where, f"an id is a string of 1 to {MAX_ID_CHARS} characters", "string_type")
            )
        elif pattern is not None and not pattern.search(entity):
            errors.append(
                _error(where, f"the id does not match the contract's pattern {pattern.pattern}", "pattern")
            )
    if errors:
        raise EntityRequestInvalid(errors)
    return EntityRequest(ids=ids, is_batch=is_batch)


def as_records_payload(request: EntityRequest, records: Sequence[dict[str, Any]]) -> Any:
    """The looked-up inputs as the body of a full-record request (one record, or a batch)."""
    return {"records": list(records)} if request.is_batch else records[0]


def _error(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def load_lookup(config: Path | None, contract: Contract, max_age_seconds: float) -> FeatureLookup | None:
    """The online lookup of FEATURE_STORE_YAML (None when it is not set: /predict takes full records only).

    The Feast adapter is imported here, by name, so a project without a feature store never loads it.
    """
    if config is None:
        return None
    package = __package__.rsplit(".", 1)[0]
    try:
        online = importlib.import_module(f"{package}.feature_store.online")
    except ImportError as error:
        raise RuntimeError(
            f"FEATURE_STORE_YAML is set but this project has no feature store (feature_store: none): {error}"
        ) from error
    lookup: FeatureLookup = online.OnlineFeatures.open(contract, config, max_age_seconds)
    logger.info("predictions by id read the online store", extra={"feature_store_yaml": str(config)})
    return lookup
