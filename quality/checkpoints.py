"""Quality gates of the pipeline: validate a stage's data, then ``enforce`` the outcome.

Called through the stage functions :func:`raw_gate`, :func:`marts_gate` and
:func:`training_set_gate` (the Airflow tasks and the CLI call these)::

    result = validate_raw_batches(settings, batch_ids, run_id=run_id, as_of=data_interval_end)
    enforce(result, settings, stage="raw")          # alerts; quarantines + raises on error

Every validation builds a Data Docs page (see :mod:`recops.quality.runner`) and is recorded for
``quality_report``. Time never comes from the wall clock: "the future" is the run's data interval
end (``as_of``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recops.core.alerts import ERROR, Alert, send_alert
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse
from recops.quality.common import STATUS_REASON_MAX
from recops.quality.mart_checks import validate_marts
from recops.quality.raw_checks import validate_raw_batches
from recops.quality.references import accept_reference
from recops.quality.report import record_result, result_path
from recops.quality.results import (
    STAGE_MARTS,
    STAGE_RAW,
    STAGE_TRAINING_SET,
    QualityGateError,
    QualityResult,
    gate_message,
)
from recops.quality.training_checks import validate_training_set

log = logging.getLogger(__name__)

__all__ = [
    "alert_from_result",
    "enforce",
    "marts_gate",
    "quarantine_batches",
    "raw_gate",
    "training_set_gate",
    "validate_marts",
    "validate_raw_batches",
    "validate_training_set",
]


def alert_from_result(result: QualityResult, *, stage: str | None = None) -> Alert:
    """The alert for a validation with failures (severity = the worst failure)."""
    stage = stage or result.stage
    severity = result.severity or ERROR
    verdict = "failed: the run stops" if severity == ERROR else "passed with warnings"
    return Alert(
        kind="quality_gate",
        severity=severity,
        title=f"Quality gate {stage} {verdict} ({len(result.errors)} error(s), "
        f"{len(result.warnings)} warning(s))",
        run_id=result.run_id,
        stage=stage,
        suite=result.suite,
        batch_ids=list(result.batch_ids),
        quarantined_batch_ids=list(result.quarantined_batch_ids),
        failures=result.errors + result.warnings,
        data_docs=result.data_docs_path,
    )


def quarantine_batches(settings: Settings, batch_ids: Sequence[str], reason: str) -> list[str]:
    """Mark batches quarantined (their raw rows stay; staging reads only 'loaded' batches)."""
    done = []
    with Warehouse(settings) as wh:
        for batch_id in batch_ids:
            wh.execute(
                "update raw.batches set status = 'quarantined', status_reason = ? "
                "where batch_id = ?",
                [reason[:STATUS_REASON_MAX], batch_id],
            )
            done.append(batch_id)
    return done


def run_batches(settings: Settings, run_id: str) -> list[str]:
    """The raw batches a run ingested and passed through its raw gate (from the recorded raw
    result of that run; empty when the run ingested nothing)."""
    path = result_path(settings, run_id, STAGE_RAW)
    if not path.exists():
        return []
    raw = QualityResult.model_validate_json(path.read_text(encoding="utf-8"))
    return [b for b in raw.batch_ids if b not in set(raw.quarantined_batch_ids)]


def enforce(result: QualityResult, settings: Settings, *, stage: str) -> QualityResult:
    """Act on a validation: alert on any failure; on error quarantine and raise.

    Quarantine on error: at the raw stage, each batch with a failed expectation; at a later stage
    (marts, training set), every batch this run ingested, since they are all the run changed
    since the last good run: the next run then starts from the last good state (staging reads
    only loaded batches; raw rows are kept). Returns the result with ``quarantined_batch_ids`` and
    ``alert_channels`` filled in when nothing failed at error severity; raises
    :class:`QualityGateError` (its message lists every failed expectation with observed value and
    threshold) otherwise. On the training-set stage a passing gate accepts this run's drift
    reference as the next baseline.
    """
    quarantined: list[str] = []
    if stage == STAGE_RAW and result.errors:
        bad = list(dict.fromkeys(f.batch_id for f in result.errors if f.batch_id)) or list(
            result.batch_ids
        )
        for batch_id in bad:
            lines = [f.line() for f in result.errors if f.batch_id in (batch_id, None)]
            reason = f"quality gate (run {result.run_id}): " + "; ".join(lines)
            quarantined += quarantine_batches(settings, [batch_id], reason)
    elif result.errors:
        batch_ids = run_batches(settings, result.run_id)
        if batch_ids:
            lines = [f.line() for f in result.errors]
            reason = f"quality gate {stage} (run {result.run_id}): " + "; ".join(lines)
            quarantined += quarantine_batches(settings, batch_ids, reason)
    channels: list[str] = []
    updated = result.model_copy(update={"stage": stage, "quarantined_batch_ids": quarantined})
    if result.failures:
        channels = send_alert(settings, alert_from_result(updated, stage=stage))
    updated = updated.model_copy(update={"alert_channels": channels})
    if stage == STAGE_TRAINING_SET and not result.errors:
        accept_reference(settings, result.run_id)
    if result.failures:
        record_result(settings, updated)
    if updated.errors:
        raise QualityGateError(gate_message(updated), updated)
    return updated


# --- the stage functions (one per gate task) --------------------------------------------------
def ungated_batches(settings: Settings) -> list[str]:
    """Loaded batches no raw gate has judged yet, oldest first, whoever loaded them (the CLI, the
    pipeline's ingest task, the inbox DAG, the API's logs)."""
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        if not wh.table_exists("raw", "batches"):
            return []
        rows = wh.query_df(
            "select batch_id from raw.batches where status = 'loaded' and gate_status is null "
            "order by ingested_at, batch_id"
        )
    return [str(b) for b in rows["batch_id"]]


def record_verdict(settings: Settings, result: QualityResult, *, run_id: str, as_of: datetime) -> None:
    """Write each judged batch's verdict on it (``failed``, ``warned`` or ``passed``), so no batch
    is gated twice."""
    failed = set(result.quarantined_batch_ids) | {f.batch_id for f in result.errors if f.batch_id}
    warned = {f.batch_id for f in result.warnings if f.batch_id}
    with Warehouse(settings) as wh:
        for batch_id in result.batch_ids:
            verdict = "failed" if batch_id in failed else ("warned" if batch_id in warned else "passed")
            wh.execute(
                "update raw.batches set gate_status = ?, gated_at = ?, gated_run_id = ? where batch_id = ?",
                [verdict, as_of, run_id, batch_id],
            )


def raw_gate(
    settings: Settings, batch_ids: Sequence[str], *, run_id: str, as_of: datetime | None
) -> dict[str, Any]:
    """Gate the given raw batches and every other batch not gated yet (GX raw-batch suite), and
    record each verdict; raises ``QualityGateError`` on error (the failing batches are
    quarantined: out of the marts until released)."""
    ids = list(dict.fromkeys([*batch_ids, *ungated_batches(settings)]))
    if not ids:
        return {"validated": [], "success": True}
    if as_of is None:
        raise ValueError("as_of (the run's data interval end) is required: 'now' is never used")
    result = validate_raw_batches(settings, ids, run_id=run_id, as_of=as_of)
    try:
        result = enforce(result, settings, stage=STAGE_RAW)
    except QualityGateError as exc:
        record_verdict(settings, exc.result or result, run_id=run_id, as_of=as_of)
        raise
    record_verdict(settings, result, run_id=run_id, as_of=as_of)
    return {"validated": ids, "success": result.success, "failures": len(result.failures)}


def marts_gate(settings: Settings, *, run_id: str) -> dict[str, Any]:
    """Gate the staging and mart tables (GX); raises ``QualityGateError`` on error."""
    result = enforce(validate_marts(settings, run_id=run_id), settings, stage=STAGE_MARTS)
    return {"success": result.success, "failures": len(result.failures), "data_docs": result.data_docs_path}


def training_set_gate(settings: Settings, path: Path, *, run_id: str) -> dict[str, Any]:
    """Gate the training set file: label rate, query groups, leakage, drift against the last
    accepted run; raises ``QualityGateError`` on error."""
    frame = pd.read_parquet(path)
    result = enforce(
        validate_training_set(settings, frame, run_id=run_id), settings, stage=STAGE_TRAINING_SET
    )
    return {"success": result.success, "failures": len(result.failures), "data_docs": result.data_docs_path}
