"""The online lookup of /predict by id: an entity's inputs from the online store, or why there are none.

One call reads a batch of ids (Feast's get_online_features). An id with no row is a miss (the service answers
404 naming it); a store that cannot be read, or whose last materialisation ended longer ago than the allowed
age, is FeatureStoreUnavailable (the service answers 503 with the reason, never 500).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from feast import FeatureStore
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

from ..contract import Contract
from .repository import feature_refs, open_store, require_keys, view_name

# How long the end of the last materialisation is trusted before the registry is read again.
FRESHNESS_REFRESH_SECONDS = 30.0


class FeatureStoreUnavailable(RuntimeError):
    """The online store cannot answer (unreachable, not applied, or stale): the reason is for the client."""


@dataclass(frozen=True)
class Lookup:
    records: list[
        dict[str, Any] | None
    ]  # per id, in order: the contract's inputs (and the id), or None: a miss
    seconds: float


class OnlineFeatures:
    """Reads entities' inputs from the online store of `store`."""

    def __init__(self, store: FeatureStore, contract: Contract, max_age_seconds: float = 0.0) -> None:
        self.store = store
        self.contract = contract
        self.id_column, _ = require_keys(contract)
        self.refs = feature_refs(contract)
        self.max_age_seconds = max_age_seconds
        self._materialized_until: float | None = None
        self._checked_at = float("-inf")

    @classmethod
    def open(
        cls, contract: Contract, config: Path | None = None, max_age_seconds: float = 0.0
    ) -> OnlineFeatures:
        return cls(open_store(config), contract, max_age_seconds)

    def materialized_until(self) -> float | None:
        """End of the latest materialisation window (epoch seconds) in the registry; None before any."""
        now = time.monotonic()
        if now - self._checked_at >= FRESHNESS_REFRESH_SECONDS:
            try:
                view = self.store.get_feature_view(view_name(self.contract))
            except Exception as error:
                raise FeatureStoreUnavailable(
                    f"the feature registry cannot be read: {_reason(error)}"
                ) from error
            ends: list[datetime] = [end for _, end in view.materialization_intervals]
            self._materialized_until = max(ends).timestamp() if ends else None
            self._checked_at = now
        return self._materialized_until

    def check_fresh(self) -> None:
        until = self.materialized_until()
        if until is None:
            raise FeatureStoreUnavailable(
                f"the feature view {view_name(self.contract)!r} has never been materialised: run "
                "`make materialize` (docs/runbooks/feature-store.md)"
            )
        if self.max_age_seconds and time.time() - until > self.max_age_seconds:
            stamp = datetime.fromtimestamp(until).astimezone().isoformat(timespec="seconds")
            raise FeatureStoreUnavailable(
                f"the online store holds features up to {stamp}, older than FEATURE_MAX_AGE_SECONDS="
                f"{self.max_age_seconds:g} allows: materialise a newer window "
                "(docs/runbooks/feature-store.md)"
            )

    def lookup(self, ids: Sequence[str]) -> Lookup:
        """The inputs of each id from the online store (blocking: the service runs it in a thread)."""
        self.check_fresh()
        started = time.perf_counter()
        try:
            response = self.store.get_online_features(
                features=self.refs, entity_rows=[{self.id_column: entity} for entity in ids]
            )
            values = response.to_dict()
        except Exception as error:
            raise FeatureStoreUnavailable(f"the online store cannot be read: {_reason(error)}") from error
        seconds = time.perf_counter() - started
        # Per feature, per id: a status and the event time of the row it came from. SQLite says NOT_FOUND for
        # an entity without a row; Redis says PRESENT with no event time (zero): a row is found with both.
        found = [False] * len(ids)
        for name, vector in zip(
            response.proto.metadata.feature_names.val, response.proto.results, strict=True
        ):
            if name == self.id_column:  # the entity key is echoed back, found or not
                continue
            for position, (status, stamp) in enumerate(
                zip(vector.statuses, vector.event_timestamps, strict=True)
            ):
                if status in (FieldStatus.PRESENT, FieldStatus.NULL_VALUE) and (stamp.seconds or stamp.nanos):
                    found[position] = True
        names = self.contract.input_columns
        records: list[dict[str, Any] | None] = [
            {self.id_column: entity, **{name: values[name][position] for name in names}}
            if found[position]
            else None
            for position, entity in enumerate(ids)
        ]
        return Lookup(records, seconds)


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
