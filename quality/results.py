"""What a validation returns: failed expectations with severity, and the gate error.

No Great Expectations import here: the Airflow failure callback and the CLI read these models
without paying GX's import time.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from recops.core.alerts import (
    ERROR,
    SEVERITIES,
    WARNING,
    FailedExpectation,
    Severity,
    format_observed,
)

__all__ = [
    "ERROR",
    "SEVERITIES",
    "STAGES",
    "WARNING",
    "FailedExpectation",
    "QualityGateError",
    "QualityResult",
    "Severity",
    "format_observed",
    "gate_message",
]

STAGE_RAW = "raw"
STAGE_MARTS = "marts"
STAGE_TRAINING_SET = "training_set"
STAGES = (STAGE_RAW, STAGE_MARTS, STAGE_TRAINING_SET)


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
