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
