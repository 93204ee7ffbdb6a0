"""The result of checking a table against the contract: which rules failed, on which rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class RuleFailure:
    rule: str
    column: str | None
    count: int
    row_indices: list[int] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QualityReport:
    source: str
    rows: int
    failures: list[RuleFailure]

    @property
    def passed(self) -> bool:
        return not self.failures

    def failed_rules(self) -> set[tuple[str | None, str]]:
        return {(failure.column, failure.rule) for failure in self.failures}

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, **asdict(self)}

    def summary(self) -> str:
        if self.passed:
            return f"{self.source}: {self.rows} rows passed every rule of the contract"
        lines = [f"{self.source}: {len(self.failures)} rule(s) failed on {self.rows} rows"]
        for failure in self.failures:
            where = f"{failure.column}: " if failure.column else ""
            rows = failure.row_ids or [str(index) for index in failure.row_indices]
            lines.append(f"  - {where}{failure.rule} ({failure.count} rows, e.g. {', '.join(rows[:5])})")
        return "\n".join(lines)


MAX_LISTED_ROWS = 50  # per rule in a report; `count` always has the full number


def failure_of(
    frame: pd.DataFrame, column: str, rule: str, bad: pd.Series, ids: pd.Series | None
) -> RuleFailure | None:
    """The RuleFailure of the rows where `bad` is true (None when there are none)."""
    indices = [int(i) for i in bad[bad.fillna(False).astype(bool)].index]
    if not indices:
        return None
    listed = indices[:MAX_LISTED_ROWS]
    return RuleFailure(
        rule=rule,
        column=column,
        count=len(indices),
        row_indices=listed,
        row_ids=[str(ids.iloc[i]) for i in listed] if ids is not None else [],
        examples=[str(value) for value in frame[column].iloc[listed[:5]]],
    )


class FailureTally:
    """The failures of a table checked in parts (record batches), with row positions in the whole table."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows = 0
        self._failures: dict[tuple[str, str | None], RuleFailure] = {}

    def add(self, report: QualityReport, offset: int) -> None:
        """Count `report`, the check of the `report.rows` rows that start at position `offset`."""
        self.rows += report.rows
        for failure in report.failures:
            key = (failure.rule, failure.column)
            seen = self._failures.get(key) or RuleFailure(failure.rule, failure.column, 0)
            room = MAX_LISTED_ROWS - len(seen.row_indices)
            self._failures[key] = RuleFailure(
                rule=failure.rule,
                column=failure.column,
                count=seen.count + failure.count,
                row_indices=seen.row_indices + [offset + i for i in failure.row_indices[:room]],
                row_ids=seen.row_ids + failure.row_ids[:room],
                examples=(seen.examples + failure.examples)[:5],
            )

    def report(self) -> QualityReport:
        return QualityReport(self.source, self.rows, list(self._failures.values()))
