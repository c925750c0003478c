"""The raw-batch gate's checks: each loaded batch's rows, quarantine share, row count against recent
batches, completeness, duplicates of earlier batches and events after the run's data interval."""

from __future__ import annotations

import json
import logging
import math
import statistics as stats_lib
import time
from collections.abc import Sequence
from datetime import datetime
from datetime import time as dtime
from typing import Any

import pandas as pd

from recops.core.constants import (
    EVENT_AT_COL,
)
from recops.core.settings import Settings
from recops.core.timeutil import utc_naive
from recops.core.warehouse import Warehouse
from recops.quality import suites
from recops.quality.common import (
    FINGERPRINT_COLS,
    RAW_SUITE_GROUP,
    combine,
    placeholders,
    table_columns,
)
from recops.quality.report import record_result
from recops.quality.results import (
    ERROR,
    STAGE_RAW,
    WARNING,
    QualityResult,
)
from recops.quality.runner import FrameCheck, run_checks

log = logging.getLogger(__name__)


def _fingerprint(alias: str, columns: Sequence[str]) -> str:
    parts = ", ".join(f"coalesce(cast({alias}.{c} as varchar), '~')" for c in columns)
    return f"md5(concat_ws('|', {parts}))"


def load_raw_events(wh: Warehouse, batch_id: str) -> pd.DataFrame:
    """The batch's raw.events rows plus ``duplicate_of_batch_id``.

    ``duplicate_of_batch_id`` names an earlier loaded batch that already holds an event with the
    same values (source, user, item, type, time, session, quantity, price, order, request id);
    null otherwise.
    Earlier = ingested before this batch. The comparison is limited to the batch's event-time span.
    """
    columns = table_columns(wh, "raw", "events")
    fp_cols = [c for c in FINGERPRINT_COLS if c in columns]
    span_filter = ""
    if EVENT_AT_COL in columns:
        span_filter = f"and e.{EVENT_AT_COL} between span.lo and span.hi"
    sql = f"""
        with cur as (select batch_id, ingested_at from raw.batches where batch_id = ?),
        span as (
            select min({EVENT_AT_COL if EVENT_AT_COL in columns else "null"}) as lo,
                   max({EVENT_AT_COL if EVENT_AT_COL in columns else "null"}) as hi
            from raw.events where batch_id = ?
        ),
        earlier as (
            select {_fingerprint("e", fp_cols)} as fingerprint, min(e.batch_id) as batch_id
            from raw.events e
            join raw.batches b on b.batch_id = e.batch_id
            cross join cur
            cross join span
            where b.status = 'loaded' and e.batch_id <> cur.batch_id
              and (b.ingested_at < cur.ingested_at
                   or (b.ingested_at = cur.ingested_at and b.batch_id < cur.batch_id))
              {span_filter}
            group by 1
        )
        select e.*, d.batch_id as {suites.DUPLICATE_OF_COL}
        from raw.events e
        left join earlier d on d.fingerprint = {_fingerprint("e", fp_cols)}
        where e.batch_id = ?
    """
    return wh.query_df(sql, [batch_id, batch_id, batch_id], shared_strings=True)


def _typed(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Give all-null number and timestamp columns their contract dtype (PostgreSQL returns
    them as ``object``)."""
    casts = {
        c: ("datetime64[ns]" if t == suites.TIMESTAMP else t)
        for c, t in types.items()
        if t in (suites.NUMBER, suites.TIMESTAMP)
        and c in frame.columns
        and frame[c].dtype == object
        and frame[c].isna().all()
    }
    return frame.astype(casts) if casts else frame


def _history(
    wh: Warehouse, settings: Settings, batch: pd.Series, exclude: Sequence[str]
) -> pd.DataFrame:
    """The last N loaded batches of the same source ingested before it (newest first), with the
    rows each holds in raw.events and in raw.items."""
    n = int(settings.quality_row_count_history)
    return wh.query_df(
        f"""
        with recent as (
            select batch_id, ingested_at from raw.batches
            where status = 'loaded' and source = ?
              and batch_id not in ({placeholders(exclude)}) and ingested_at <= ?
            order by ingested_at desc, batch_id desc
            limit {n}
        )
        select r.batch_id,
               (select count(*) from raw.events e where e.batch_id = r.batch_id) as events,
               (select count(*) from raw.items i where i.batch_id = r.batch_id) as items
        from recent r
        order by r.ingested_at desc, r.batch_id desc
        """,
        [batch["source"], *exclude, batch["ingested_at"]],
    )


def _row_count_bounds(
    settings: Settings, history: pd.DataFrame, table: str
) -> tuple[float | None, float | None, dict[str, Any]]:
    """``median * (1 -/+ tolerance)`` of the history's row counts in ``table`` (events / items):
    like is compared with like, so a catalogue shipped with every batch does not widen the band.
    Batches without rows in ``table`` (e.g. catalogue-only ones for the events) are left out.
    """
    counts = [int(x) for x in history[table] if int(x) > 0]
    if not counts:
        return None, None, {"history": []}
    median = float(stats_lib.median(counts))
    tol = settings.quality_row_count_tolerance
    # whole rows (GX would truncate a fractional bound): the counts inside the band
    low, high = math.ceil(median * (1 - tol)), math.floor(median * (1 + tol))
    return (low if low > 0 else None), high, {"history": counts, "median": median}


def _filled_shares(wh: Warehouse, history: pd.DataFrame) -> dict[str, float]:
    """Share of the history's raw.events rows in which each optional column is set."""
    ids = [str(b) for b in history["batch_id"]]
    present = set(table_columns(wh, "raw", "events"))
    columns = [c for c in suites.RAW_EVENT_OPTIONAL if c in present]
    if not ids or not columns:
        return {}
    exprs = ", ".join(
        f"avg(case when {c} is not null then 1.0 else 0.0 end) as {c}" for c in columns
    )
    row = wh.query_df(
        f"select {exprs} from raw.events where batch_id in ({placeholders(ids)})", ids
    ).iloc[0]
    return {c: float(row[c]) for c in columns if pd.notna(row[c])}


def _completeness_parameters(recent: dict[str, float]) -> dict[str, float | None]:
    params: dict[str, float | None] = {}
    for column in suites.RAW_EVENT_OPTIONAL:
        error_min, warn_min = suites.filled_share_bounds(recent.get(column))
        params[suites.param_filled_min(column, ERROR)] = error_min
        params[suites.param_filled_min(column, WARNING)] = warn_min
    return params


def quarantine_frame(batch: pd.Series) -> pd.DataFrame:
    """One row per quarantine reason of a raw.batches row, plus ``ALL_REASONS``: reason, rows,
    share of the batch's input records."""
    reasons = batch.get("quarantine_reasons")
    counts = json.loads(reasons) if isinstance(reasons, str) and reasons else dict(reasons or {})
    counts = {str(k): int(v) for k, v in sorted(counts.items()) if int(v) > 0}
    counts[suites.ALL_REASONS] = int(batch.get("rows_quarantined") or 0)
    rows_in = int(batch.get("rows_in") or 0)
    return pd.DataFrame(
        {
            suites.QUARANTINE_REASON_COL: list(counts),
            suites.QUARANTINE_ROWS_COL: pd.Series(list(counts.values()), dtype="int64"),
            suites.QUARANTINE_SHARE_COL: pd.Series(
                [v / rows_in if rows_in else 0.0 for v in counts.values()], dtype="float64"
            ),
        }
    )


def _batch_checks(
    wh: Warehouse, settings: Settings, batch: pd.Series, validated: Sequence[str], base: dict
) -> tuple[list[FrameCheck], dict[str, Any]]:
    """The frames of one batch to validate, with the row-count band on its main frame.

    The band applies to the events (or, for a catalogue-only batch, to the items). The events are
    also checked for columns filled less often than in the same history (a schema change), and
    the batch's quarantine counts (rows the loader rejected) against the quarantine-share limits.
    """
    batch_id = str(batch["batch_id"])
    if batch["source"] == "served":
        return _served_checks(wh, settings, batch, base)
    events = _typed(load_raw_events(wh, batch_id), suites.RAW_EVENT_TYPES)
    items = _typed(
        wh.query_df("select * from raw.items where batch_id = ?", [batch_id], shared_strings=True),
        suites.RAW_ITEM_TYPES,
    )
    events_counted = len(events) > 0 or len(items) == 0
    history_batches = _history(wh, settings, batch, validated)
    low, high, history = _row_count_bounds(
        settings, history_batches, "events" if events_counted else "items"
    )
    if batch["source"] in suites.API_LOG_SOURCES:  # sized by the traffic: no band
        low, high = None, None
    recent_filled = _filled_shares(wh, history_batches) if len(events) else {}
    completeness = _completeness_parameters(recent_filled)
    counted = {**base, suites.PARAM_ROW_COUNT_MIN: low, suites.PARAM_ROW_COUNT_MAX: high}
    uncounted = {**base, suites.PARAM_ROW_COUNT_MIN: None, suites.PARAM_ROW_COUNT_MAX: None}
    checks = [
        FrameCheck(
            suites.raw_events_suite(),
            events,
            batch_id,
            {**(counted if events_counted else uncounted), **completeness},
        )
    ]
    if len(items):
        checks.append(
            FrameCheck(
                suites.raw_items_suite(), items, batch_id, uncounted if events_counted else counted
            )
        )
    quarantined = quarantine_frame(batch)
    checks.append(_quarantine_check(settings, batch))
    stats = {
        "source": batch["source"],
        "events": len(events),
        "items": len(items),
        "row_count_min": low,
        "row_count_max": high,
        **history,
        "filled_share_history": recent_filled,
        "quarantined": dict(
            zip(
                quarantined[suites.QUARANTINE_REASON_COL],
                quarantined[suites.QUARANTINE_ROWS_COL].astype(int),
                strict=True,
            )
        ),
    }
    return checks, stats


def _quarantine_check(settings: Settings, batch: pd.Series) -> FrameCheck:
    return FrameCheck(
        suites.raw_quarantine_suite(),
        quarantine_frame(batch),
        str(batch["batch_id"]),
        {
            suites.PARAM_QUARANTINE_SHARE_WARN: settings.quality_quarantine_share_warn,
            suites.PARAM_QUARANTINE_SHARE_ERROR: settings.quality_quarantine_share_error,
        },
        index_columns=(suites.QUARANTINE_REASON_COL,),
    )


def _served_checks(
    wh: Warehouse, settings: Settings, batch: pd.Series, base: dict
) -> tuple[list[FrameCheck], dict[str, Any]]:
    """A served-list batch (the API's log): its rows against the served suite, and the lines
    its loader rejected."""
    batch_id = str(batch["batch_id"])
    served = _typed(
        wh.query_df("select * from raw.served where batch_id = ?", [batch_id], shared_strings=True),
        suites.RAW_SERVED_TYPES,
    )
    if served["served_rank"].dtype.kind == "i":  # an ``integer`` column arrives as int32
        served["served_rank"] = served["served_rank"].astype("int64")
    checks = [
        FrameCheck(suites.raw_served_suite(), served, batch_id, base),
        _quarantine_check(settings, batch),
    ]
    return checks, {"source": batch["source"], "served": len(served), "events": 0, "items": 0}


def validate_raw_batches(
    settings: Settings, batch_ids: list[str], *, run_id: str, as_of: datetime
) -> QualityResult:
    """Validate freshly ingested raw batches (raw.events and raw.items rows of each batch).

    ``as_of`` is the run's data interval end: an event after it is "in the future". Each batch is
    validated on its own, so a failure names (and ``enforce`` quarantines) only the bad batch.
    An empty ``batch_ids`` validates nothing and passes.
    """
    if as_of is None:
        raise ValueError("as_of (the run's data interval end) is required: 'now' is never used")
    started = time.perf_counter()
    ids = list(dict.fromkeys(batch_ids))
    as_of_naive = utc_naive(as_of)
    base = {
        suites.PARAM_AS_OF: as_of_naive,
        suites.PARAM_SHOP_START: datetime.combine(settings.shop_start_date, dtime.min),
    }
    checks: list[FrameCheck] = []
    per_batch: dict[str, Any] = {}
    if ids:
        with Warehouse(settings, read_only=True) as wh:
            batches = wh.query_df(
                f"select batch_id, source, status, ingested_at, rows_in, rows_loaded, "
                f"rows_quarantined, quarantine_reasons from raw.batches "
                f"where batch_id in ({placeholders(ids)})",
                ids,
            ).set_index("batch_id", drop=False)
            unknown = [b for b in ids if b not in batches.index]
            if unknown:
                raise ValueError(f"unknown raw batches (not in raw.batches): {unknown}")
            for batch_id in ids:
                batch_checks, per_batch[batch_id] = _batch_checks(
                    wh, settings, batches.loc[batch_id], ids, base
                )
                checks += batch_checks
    outcomes = run_checks(settings, checks, run_id=run_id)
    result = combine(
        suite=RAW_SUITE_GROUP,
        stage=STAGE_RAW,
        run_id=run_id,
        outcomes=outcomes,
        batch_ids=ids,
        statistics={"as_of": as_of_naive, "batches": per_batch},
        started=started,
    )
    record_result(settings, result)
    return result
