"""What the quality checks share: suite group names, limits, and small SQL / result helpers."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from recops.core.constants import (
    EVENT_AT_COL,
    EVENT_TYPE_COL,
    ITEM_COL,
    ORDER_COL,
    PRICE_COL,
    QUANTITY_COL,
    SESSION_COL,
    TIMESTAMP_COL,
    USER_COL,
)
from recops.core.warehouse import Warehouse
from recops.quality.results import (
    ERROR,
    FailedExpectation,
    QualityResult,
)
from recops.quality.runner import CheckOutcome, jsonable

log = logging.getLogger(__name__)

RAW_SUITE_GROUP = "raw_batch"
MARTS_SUITE_GROUP = "marts"
TRAINING_SUITE_GROUP = "training_set"
GROUP_COL = "query_id"
BOOKKEEPING_COLS = (USER_COL, ITEM_COL, TIMESTAMP_COL, "window")
"""Training-set columns that are keys or bookkeeping (the label window index), not features."""
STAGING_EVENTS = "stg_raw__events"

FINGERPRINT_COLS = (
    "source",
    USER_COL,
    ITEM_COL,
    EVENT_TYPE_COL,
    EVENT_AT_COL,
    SESSION_COL,
    QUANTITY_COL,
    PRICE_COL,
    ORDER_COL,
    "request_id",  # feedback: the served list it answers (null for every other source)
)
"""An event already loaded by an earlier batch has the same values in these columns."""
STATUS_REASON_MAX = 2000
MART_SAMPLE_ABOVE_ROWS = 2_000_000
"""Marts with more rows than this are checked on a sample (Online Retail II's stay below)."""
MART_SAMPLE_ROWS = 1_000_000


def placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def table_columns(wh: Warehouse, schema: str, table: str) -> list[str]:
    df = wh.query_df(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    )
    return [str(c) for c in df["column_name"]]


def combine(
    *,
    suite: str,
    stage: str,
    run_id: str,
    outcomes: list[CheckOutcome],
    extra_failures: Sequence[FailedExpectation] = (),
    batch_ids: Sequence[str] = (),
    statistics: dict[str, Any] | None = None,
    started: float,
) -> QualityResult:
    failures = [*extra_failures, *(f for o in outcomes for f in o.failures)]
    # the page to open first: a validation with an error, else one with a warning, else any
    ranked = sorted(
        outcomes, key=lambda o: (not any(f.severity == ERROR for f in o.failures), not o.failures)
    )
    page = next((o.data_docs_path for o in ranked if o.data_docs_path), None)
    evaluated = sum(int(o.statistics.get("evaluated_expectations", 0)) for o in outcomes)
    successful = sum(int(o.statistics.get("successful_expectations", 0)) for o in outcomes)
    statistics = {
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "seconds": round(time.perf_counter() - started, 3),
        "validations": [
            {
                "suite": o.suite,
                "batch_id": o.batch_id,
                "success": o.success,
                "rows": o.statistics.get("rows"),
                "seconds": o.statistics.get("seconds"),
                "data_docs": o.data_docs_path,
            }
            for o in outcomes
        ],
        **(statistics or {}),
    }
    return QualityResult(
        suite=suite,
        stage=stage,
        run_id=run_id,
        success=not failures and all(o.success for o in outcomes),
        failures=failures,
        data_docs_path=page,
        batch_ids=list(batch_ids),
        statistics=jsonable(statistics),
    )


