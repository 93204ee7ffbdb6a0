"""The feature repository of the contract, built at run time: entity, offline source, feature view, service.

`feast apply` of this project is `apply(store, contract, ...)`: the objects are made from contract.yaml each
time, so there is no second copy of the columns to keep in step. A second project reuses the feature view by
pointing its feature_store.yaml at the same registry and asking for `<view>:<column>` (docs/feature-store.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

from ..contract import Contract

CONFIG_VARIABLE = "FEATURE_STORE_YAML"
DEFAULT_CONFIG = Path("feature_repo/feature_store.yaml")
# The offline source: the validated data's id, timestamp and inputs (written by the feature_apply stage).
OFFLINE_SOURCE = Path("data/feature_store/offline.parquet")
# In a cloud, the project bucket's feature_store prefix (s3://, gs:// or the blob's https URL): the registry
# (feature_repo/feature_store.cloud.yaml) and a copy of the offline source live under it, where every
# identity of the environment reads the same files.
LOCATION_VARIABLE = "FEATURE_STORE_URI"
FEAST_TYPES = {"int": Int64, "float": Float64, "category": String}


class FeatureStoreError(ValueError):
    """The contract or params.yaml cannot describe a feature repository (the message says what to add)."""


@dataclass(frozen=True)
class FeatureStoreParams:
    """params.yaml `feature_store`: the materialisation window and the feature view's time to live."""

    start: datetime
    end: datetime
    ttl_days: int  # 0: a value never expires (Feast's ttl of zero)

    @classmethod
    def load(cls, path: Path = Path("params.yaml")) -> FeatureStoreParams:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        section = document.get("feature_store")
        if not isinstance(section, dict):
            raise FeatureStoreError(f"{path} has no feature_store section (materialize.start/end, ttl_days)")
        window = section.get("materialize") or {}
        start, end = (
            _instant(window.get(key), f"feature_store.materialize.{key}") for key in ("start", "end")
        )
        if end <= start:
            raise FeatureStoreError(
                "feature_store.materialize.end must be after feature_store.materialize.start"
            )
        ttl = section.get("ttl_days", 0)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            raise FeatureStoreError(
                f"feature_store.ttl_days must be a whole number of days >= 0, got {ttl!r}"
            )
        return cls(start=start, end=end, ttl_days=ttl)


def _instant(value: Any, key: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise FeatureStoreError(f"{key} must be an ISO date or time, got {value!r}") from None
    else:
        raise FeatureStoreError(
            f"{key} must be an ISO date or time (e.g. 2024-01-01T00:00:00Z), got {value!r}"
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def require_keys(contract: Contract) -> tuple[str, str]:
    """(id column, timestamp column): the entity key and the event time a feature store needs."""
    if not contract.id_column:
        raise FeatureStoreError(
            f"{contract.source} has no `id:` key: the feature store's entity is the contract's id column; "
            "add `id: {column: <the column that identifies a row>}`"
        )
    if not contract.timestamp_column:
        raise FeatureStoreError(
            f"{contract.source} has no `timestamp:` key: the feature store joins features as of each event; "
            "add `timestamp: {column: <the column with each row's event time>}`"
        )
    return contract.id_column, contract.timestamp_column


def config_path() -> Path:
    """feature_store.yaml of this environment: FEATURE_STORE_YAML, else feature_repo/feature_store.yaml."""
    return Path(os.environ.get(CONFIG_VARIABLE) or DEFAULT_CONFIG)


def open_store(path: Path | None = None, repo_path: Path = Path()) -> FeatureStore:
    """The project's store; relative paths in the yaml (registry, SQLite file, sources) start at repo_path."""
    path = path or config_path()
    if not path.is_file():
        raise FeatureStoreError(f"no feature store configuration at {path} ({CONFIG_VARIABLE})")
    return FeatureStore(repo_path=str(repo_path.resolve()), fs_yaml_file=path.resolve())


def offline_source() -> str:
    """Where the feature view's source is read: `$FEATURE_STORE_URI/offline.parquet`, else the local file."""
    location = os.environ.get(LOCATION_VARIABLE, "").rstrip("/")
    if not location:
        return str(OFFLINE_SOURCE)
    # Azure: the registry is read by its blob URL, files by abfs:// (pyarrow and adlfs) on the same container
    blob = re.fullmatch(r"https://([^.]+)\.blob\.core\.windows\.net/([^/]+)/(.+)", location)
    if blob:
        account, container, prefix = blob.groups()
        location = f"abfs://{container}@{account}.dfs.core.windows.net/{prefix}"
    return f"{location}/{OFFLINE_SOURCE.name}"


def view_name(contract: Contract) -> str:
    return contract.name


def feature_refs(contract: Contract) -> list[str]:
    """`<view>:<input>` of every model input, in the contract's order."""
    return [f"{view_name(contract)}:{name}" for name in contract.input_columns]


def definitions(
    contract: Contract, ttl_days: int, source: str | None = None
) -> tuple[Entity, FileSource, FeatureView, FeatureService]:
    """The Feast objects of the contract: what `feast apply` registers."""
    id_column, timestamp_column = require_keys(contract)
    name = view_name(contract)
    entity = Entity(
        name=id_column,
        join_keys=[id_column],
        value_type=ValueType.STRING,
        description=f"{contract.name}: one {id_column} (the contract's id column)",
    )
    offline = FileSource(
        name=f"{name}_source",
        path=source or offline_source(),
        timestamp_field=timestamp_column,
        description=f"The validated {contract.name} data (the contract's inputs on {timestamp_column}).",
    )
    view = FeatureView(
        name=name,
        entities=[entity],
        ttl=timedelta(days=ttl_days),
        schema=[
            Field(name=column, dtype=FEAST_TYPES[spec.dtype], description=spec.description)
            for column, spec in contract.columns.items()
        ],
        online=True,
        source=offline,
        description=contract.description,
        tags={"contract": contract.name, "owner": "the project that renders this contract"},
    )
    service = FeatureService(name=f"{name}_model_inputs", features=[view])
    return entity, offline, view, service


def apply(store: FeatureStore, contract: Contract, ttl_days: int) -> list[str]:
    """Register the contract's objects (Feast's `apply`); returns their names for the stage's report."""
    objects: Sequence[Any] = definitions(contract, ttl_days)
    store.apply(list(objects))
    return [str(item.name) for item in objects]
