"""What a validation returns: failed expectations with severity, and the gate error.

No Great Expectations import here: the Airflow failure callback and the CLI read these models
without paying GX's import time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"
SEVERITIES: tuple[Severity, ...] = (ERROR, WARNING)

STAGE_RAW = "raw"
STAGE_MARTS = "marts"
STAGE_TRAINING_SET = "training_set"
STAGES = (STAGE_RAW, STAGE_MARTS, STAGE_TRAINING_SET)


def format_observed(observed: Any) -> str:
    """Observed value for humans: unexpected-row counts read as "4/300 rows (1.33%) e.g. [...]"."""
    if isinstance(observed, dict) and "unexpected_count" in observed:
        text = (
            f"{observed['unexpected_count']}/{observed.get('element_count')} rows "
            f"({observed.get('unexpected_percent', 0):.3g}%)"
        )
        if observed.get("unexpected_rows"):
            return f"{text} e.g. {observed['unexpected_rows']}"
        if observed.get("examples"):
            return f"{text} e.g. {observed['examples']}"
        return text
    if isinstance(observed, dict) and "exception" in observed:
        return f"error: {observed['exception']}"
    return observed if isinstance(observed, str) else repr(observed)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FailedExpectation(BaseModel):
    """One expectation that was not met, with what was seen and what was allowed."""

    expectation: str = Field(
        description="GX expectation type, e.g. expect_column_values_to_be_between."
    )
    column: str | None = None
    severity: Severity
    observed: Any = None
    threshold: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    suite: str | None = Field(
        default=None, description="GX suite (one per validated table or frame)."
    )
    batch_id: str | None = Field(
        default=None, description="Raw stage: the batch the rows came from."
    )
    description: str | None = Field(default=None, description="What the expectation protects.")

    def line(self) -> str:
        """One human-readable line: severity, where, what, observed value and threshold."""
        where = self.suite or "?"
        if self.batch_id:
            where += f" batch={self.batch_id}"
        target = f"({self.column})" if self.column else ""
        threshold = ", ".join(f"{k}={_short(v, 80)}" for k, v in self.threshold.items()) or "-"
        return (
            f"[{self.severity}] {where}: {self.expectation}{target}"
            f" observed={_short(format_observed(self.observed))} threshold={threshold}"
        )


class QualityResult(BaseModel):
    """Outcome of one stage's validation (possibly several GX suites and batches)."""

    suite: str = Field(
        description="The stage's suite group, e.g. 'raw_batch', 'marts', 'training_set'."
    )
    stage: str
    run_id: str
    success: bool = Field(description="Every expectation met (warnings included).")
    failures: list[FailedExpectation] = Field(default_factory=list)
    data_docs_path: str | None = Field(
        default=None, description="Data Docs page of the worst validation of this stage."
    )
    batch_ids: list[str] = Field(default_factory=list)
    statistics: dict[str, Any] = Field(default_factory=dict)
    quarantined_batch_ids: list[str] = Field(default_factory=list, description="Set by enforce().")
    alert_channels: list[str] = Field(default_factory=list, description="Set by enforce().")

    @property
    def errors(self) -> list[FailedExpectation]:
        return [f for f in self.failures if f.severity == ERROR]

    @property
    def warnings(self) -> list[FailedExpectation]:
        return [f for f in self.failures if f.severity == WARNING]

    @property
    def severity(self) -> Severity | None:
        """The worst severity among the failures (None when everything passed)."""
        if self.errors:
            return ERROR
        return WARNING if self.failures else None

    @property
    def passed_gate(self) -> bool:
        """True when no error-severity expectation failed (the run may go on)."""
        return not self.errors

    def summary_line(self) -> str:
        status = "passed" if self.success else ("FAILED" if self.errors else "passed with warnings")
        return (
            f"{self.stage} ({self.suite}) run={self.run_id}: {status}; "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )


def gate_message(result: QualityResult) -> str:
    """The text of a failed gate: every failed expectation with observed value and threshold."""
    lines = [f"Quality gate failed: {result.summary_line()}"]
    ordered = result.errors + result.warnings
    lines += [f"  - {f.line()}" for f in ordered]
    if result.quarantined_batch_ids:
        lines.append(f"  quarantined batches: {', '.join(result.quarantined_batch_ids)}")
    if result.data_docs_path:
        lines.append(f"  data docs: {result.data_docs_path}")
    return "\n".join(lines)


class QualityGateError(RuntimeError):
    """An error-severity expectation failed: the run must stop before the next stage."""

    def __init__(self, message: str, result: QualityResult | None = None) -> None:
        super().__init__(message)
        self.result = result
