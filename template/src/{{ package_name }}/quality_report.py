"""The result of checking a table against the contract: which rules failed, on which rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
