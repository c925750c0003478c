"""Quality gates of the pipeline: validate a stage's data, then ``enforce`` the outcome.

Called from plain Airflow ``@task`` functions (and the CLI)::

    result = validate_raw_batches(settings, batch_ids, run_id=run_id, as_of=data_interval_end)
    enforce(result, settings, stage="raw")          # alerts; quarantines + raises on error
    return result.model_dump(mode="json")           # small dict for XCom

Every validation builds a Data Docs page (see :mod:`recops.quality.runner`) and is recorded for
``quality_report``. Time never comes from the wall clock: "the future" is the run's data interval
end (``as_of``).
"""

from __future__ import annotations

import json
import logging
import math
import statistics as stats_lib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

import pandas as pd

from recops.constants import (
    EVENT_AT_COL,
    EVENT_TYPE_COL,
    ITEM_COL,
    LABEL_COL,
    ORDER_COL,
    PRICE_COL,
    QUANTITY_COL,
    SESSION_COL,
    TIMESTAMP_COL,
    USER_COL,
)
from recops.quality import suites
from recops.quality.drift import (
    build_reference,
    is_age_feature,
    psi_against_reference,
    psi_critical_value,
)
from recops.quality.notifiers import Alert, send_alert
from recops.quality.references import accept_reference, latest_reference, save_reference
from recops.quality.report import record_result, result_path
from recops.quality.results import (
    ERROR,
    STAGE_MARTS,
    STAGE_RAW,
    STAGE_TRAINING_SET,
    WARNING,
    FailedExpectation,
    QualityGateError,
    QualityResult,
    gate_message,
)
from recops.quality.runner import CheckOutcome, FrameCheck, columns_used, jsonable, run_checks
from recops.settings import Settings
from recops.warehouse import Warehouse

log = logging.getLogger(__name__)

RAW_SUITE_GROUP = "raw_batch"
MARTS_SUITE_GROUP = "marts"
TRAINING_SUITE_GROUP = "training_set"
GROUP_COL = "query_id"
BOOKKEEPING_COLS = (USER_COL, ITEM_COL, TIMESTAMP_COL, "window")
"""Training-set columns that are keys or bookkeeping (the label window index), not features."""
STAGING_EVENTS = "stg_raw__events"

_FINGERPRINT_COLS = (
    "source",
    USER_COL,
    ITEM_COL,
    EVENT_TYPE_COL,
    EVENT_AT_COL,
    SESSION_COL,
    QUANTITY_COL,
    PRICE_COL,
    ORDER_COL,
)
"""An event already loaded by an earlier batch has the same values in these columns."""
STATUS_REASON_MAX = 2000
MART_SAMPLE_ABOVE_ROWS = 2_000_000
"""Marts with more rows than this are checked on a sample (Online Retail II's stay below)."""
MART_SAMPLE_ROWS = 1_000_000


# --- helpers --------------------------------------------------------------------------------
def _utc_naive(ts: datetime) -> datetime:
    """UTC wall time without tzinfo (the warehouse stores naive UTC timestamps)."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(UTC).tz_localize(None)
    return stamp.to_pydatetime()


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _columns(wh: Warehouse, schema: str, table: str) -> list[str]:
    df = wh.query_df(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    )
    return [str(c) for c in df["column_name"]]


def _mart_schema(settings: Settings) -> str:
    return "public" if settings.profile == "production" else "main"


def _combine(
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


# --- raw batches ----------------------------------------------------------------------------
def _fingerprint(alias: str, columns: Sequence[str]) -> str:
    parts = ", ".join(f"coalesce(cast({alias}.{c} as varchar), '~')" for c in columns)
    return f"md5(concat_ws('|', {parts}))"


def load_raw_events(wh: Warehouse, batch_id: str) -> pd.DataFrame:
    """The batch's raw.events rows plus ``duplicate_of_batch_id``.

    ``duplicate_of_batch_id`` names an earlier loaded batch that already holds an event with the
    same values (source, user, item, type, time, session, quantity, price, order); null otherwise.
    Earlier = ingested before this batch. The comparison is limited to the batch's event-time span.
    """
    columns = _columns(wh, "raw", "events")
    fp_cols = [c for c in _FINGERPRINT_COLS if c in columns]
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
    return wh.query_df(sql, [batch_id, batch_id, batch_id])


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
              and batch_id not in ({_placeholders(exclude)}) and ingested_at <= ?
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
    present = set(_columns(wh, "raw", "events"))
    columns = [c for c in suites.RAW_EVENT_OPTIONAL if c in present]
    if not ids or not columns:
        return {}
    exprs = ", ".join(
        f"avg(case when {c} is not null then 1.0 else 0.0 end) as {c}" for c in columns
    )
    row = wh.query_df(
        f"select {exprs} from raw.events where batch_id in ({_placeholders(ids)})", ids
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
    events = _typed(load_raw_events(wh, batch_id), suites.RAW_EVENT_TYPES)
    items = _typed(
        wh.query_df("select * from raw.items where batch_id = ?", [batch_id]),
        suites.RAW_ITEM_TYPES,
    )
    events_counted = len(events) > 0 or len(items) == 0
    history_batches = _history(wh, settings, batch, validated)
    low, high, history = _row_count_bounds(
        settings, history_batches, "events" if events_counted else "items"
    )
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
    checks.append(
        FrameCheck(
            suites.raw_quarantine_suite(),
            quarantined,
            batch_id,
            {
                suites.PARAM_QUARANTINE_SHARE_WARN: settings.quality_quarantine_share_warn,
                suites.PARAM_QUARANTINE_SHARE_ERROR: settings.quality_quarantine_share_error,
            },
            index_columns=(suites.QUARANTINE_REASON_COL,),
        )
    )
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
    as_of_naive = _utc_naive(as_of)
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
                f"where batch_id in ({_placeholders(ids)})",
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
    result = _combine(
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


# --- marts ----------------------------------------------------------------------------------
def _integrity_frame(wh: Warehouse, schema: str, present: set[str]) -> pd.DataFrame:
    """One row of cross-table counts, each of which must be 0 (only for tables that exist)."""
    s = schema

    def missing(child: str, key: str, parent: str) -> str:
        return (
            f"(select count(*) from {s}.{child} c where c.{key} is not null and not exists "
            f"(select 1 from {s}.{parent} p where p.{key} = c.{key}))"
        )

    exprs: dict[str, str] = {}
    if {"fct_interactions", "dim_items"} <= present:
        exprs["fct_rows_item_missing_in_dim_items"] = missing(
            "fct_interactions", ITEM_COL, "dim_items"
        )
    if {"fct_interactions", "dim_users"} <= present:
        exprs["fct_rows_user_missing_in_dim_users"] = missing(
            "fct_interactions", USER_COL, "dim_users"
        )
    if {"ml_ltr_labels", "dim_items"} <= present:
        exprs["labels_item_missing_in_dim_items"] = missing("ml_ltr_labels", ITEM_COL, "dim_items")
    if {"ml_ltr_labels", "dim_users"} <= present:
        exprs["labels_user_missing_in_dim_users"] = missing("ml_ltr_labels", USER_COL, "dim_users")
    staged = STAGING_EVENTS in present
    if staged and "dim_items" in present:
        exprs["staging_items_lost"] = (
            f"(select count(*) from (select distinct {ITEM_COL} from staged "
            f"where {ITEM_COL} is not null) st where not exists "
            f"(select 1 from {s}.dim_items d where d.{ITEM_COL} = st.{ITEM_COL}))"
        )
    if staged and "dim_users" in present:
        # Staging may carry the original user id and the marts its pseudonym: compare counts
        # (the pseudonym is injective, so fewer dim_users than staging users means users lost).
        exprs["staging_users_lost"] = (
            f"greatest((select count(distinct {USER_COL}) from staged "
            f"where {USER_COL} is not null) - (select count(*) from {s}.dim_users), 0)"
        )
    if not exprs:
        return pd.DataFrame()
    # the staging view (hashing, deduplication) is evaluated once, not once per count
    prefix = (
        f"with staged as materialized (select distinct {USER_COL}, {ITEM_COL} "
        f"from {s}.{STAGING_EVENTS}) "
        if staged
        else ""
    )
    select = ", ".join(f"{e} as {name}" for name, e in exprs.items())
    return wh.query_df(f"{prefix}select {select}").astype("int64")


def _sampled_source(settings: Settings, schema: str, table: str, total: int) -> str:
    """A deterministic sample of ``MART_SAMPLE_ROWS`` rows of a table (as a subquery)."""
    if settings.profile == "production":
        percent = 100.0 * MART_SAMPLE_ROWS / total
        return (
            f"(select * from {schema}.{table} "
            f"tablesample bernoulli ({percent:.6f}) repeatable (42)) s"
        )
    return (
        f"(select * from {schema}.{table} "
        f"using sample reservoir({MART_SAMPLE_ROWS} rows) repeatable (42)) s"
    )


def validate_marts(settings: Settings, *, run_id: str) -> QualityResult:
    """Validate the dbt staging and marts: keys, referential integrity, lineage, feature ranges.

    Each mart is read with only the columns its suite checks. A mart above
    ``MART_SAMPLE_ABOVE_ROWS`` rows is checked on a deterministic ``MART_SAMPLE_ROWS``-row sample
    (recorded in ``statistics["sampled"]``): a sample can miss a rare duplicate key or
    out-of-range value, never invent one. Online Retail II's marts (<= ~1M rows) are checked in
    full. The cross-table counts are always exact (computed in the warehouse).
    """
    started = time.perf_counter()
    schema = _mart_schema(settings)
    checks: list[FrameCheck] = []
    missing: list[FailedExpectation] = []
    rows: dict[str, int] = {}
    sampled: dict[str, dict[str, int]] = {}
    with Warehouse(settings, read_only=True) as wh:
        present = {t for t in [*suites.MART_KEYS, STAGING_EVENTS] if wh.table_exists(schema, t)}
        for table in [*suites.MART_KEYS, STAGING_EVENTS]:
            if table not in present:
                missing.append(
                    FailedExpectation(
                        expectation="expect_table_to_exist",
                        column=None,
                        severity=ERROR,
                        observed="missing",
                        threshold={"table": f"{schema}.{table}"},
                        suite=suites.mart_suite_name(table),
                        description=f"dbt built {table}",
                    )
                )
        for table in suites.MART_KEYS:
            if table not in present:
                continue
            columns = _columns(wh, schema, table)
            suite = suites.mart_suite(table, columns)
            used = [c for c in columns if c in columns_used(suite)]
            rows[table] = int(wh.scalar(f"select count(*) from {schema}.{table}"))
            source = f"{schema}.{table}"
            if rows[table] > MART_SAMPLE_ABOVE_ROWS:
                source = _sampled_source(settings, schema, table, rows[table])
            frame = wh.query_df(f"select {', '.join(used)} from {source}")
            if len(frame) < rows[table]:
                sampled[table] = {"rows": rows[table], "checked": len(frame)}
            checks.append(FrameCheck(suite, frame))
        integrity = _integrity_frame(wh, schema, present)
    if not integrity.empty:
        checks.append(FrameCheck(suites.marts_integrity_suite(list(integrity.columns)), integrity))
    outcomes = run_checks(settings, checks, run_id=run_id)
    result = _combine(
        suite=MARTS_SUITE_GROUP,
        stage=STAGE_MARTS,
        run_id=run_id,
        outcomes=outcomes,
        extra_failures=missing,
        statistics={
            "rows": rows,
            "sampled": sampled,
            "integrity": integrity.iloc[0].to_dict() if not integrity.empty else {},
        },
        started=started,
    )
    record_result(settings, result)
    return result


# --- training set ---------------------------------------------------------------------------
def _normalise_times(frame: pd.DataFrame, timestamp_col: str) -> pd.DataFrame:
    """Timestamp columns as naive UTC (tz-aware and epoch-second ``*_at`` columns converted)."""
    out = frame.copy(deep=False)
    for column in out.columns:
        series = out[column]
        is_time_name = column == timestamp_col or str(column).endswith("_at")
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            out[column] = series.dt.tz_convert(UTC).dt.tz_localize(None)
        elif (
            is_time_name
            and pd.api.types.is_numeric_dtype(series)
            and not pd.api.types.is_bool_dtype(series)
        ):
            out[column] = pd.to_datetime(series, unit="s")
        elif is_time_name and series.dtype == object:
            out[column] = pd.to_datetime(series, utc=True).dt.tz_localize(None)
    return out


def numeric_features(frame: pd.DataFrame, *, exclude: Sequence[str]) -> list[str]:
    """Numeric (or boolean) columns other than keys, label and group: the drift-checked features."""
    skip = set(exclude)
    return [
        str(c)
        for c in frame.columns
        if c not in skip
        and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        and not pd.api.types.is_datetime64_any_dtype(frame[c])
    ]


def _snapshot(data: pd.DataFrame) -> pd.Timestamp | None:
    """The training set's newest label time (its newest snapshot), if it has one."""
    if TIMESTAMP_COL not in data.columns or not len(data):
        return None
    newest = pd.Timestamp(data[TIMESTAMP_COL].max())
    return None if pd.isna(newest) else newest


def _age_adjusted(
    data: pd.DataFrame, reference: dict[str, dict[str, Any]], snapshot: pd.Timestamp | None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The frame with each age feature (``is_age_feature``) made younger by the days between the
    reference's snapshot and this one, so that only a change beyond the calendar counts as drift.
    Returns the frame and the days taken off per feature."""
    elapsed: dict[str, float] = {}
    for feature, entry in reference.items():
        if not is_age_feature(feature) or snapshot is None or not entry.get("snapshot"):
            continue
        days = (snapshot - pd.Timestamp(entry["snapshot"])) / pd.Timedelta(days=1)
        if days:
            elapsed[feature] = float(days)
    if not elapsed:
        return data, {}
    shifted = data.assign(
        **{f: pd.to_numeric(data[f], errors="coerce") - days for f, days in elapsed.items()}
    )
    return shifted, elapsed


def _psi_limits(
    settings: Settings,
    reference: dict[str, dict[str, Any]],
    current: dict[str, dict[str, Any]],
    features: Sequence[str],
) -> dict[str, dict[str, float]]:
    """Per feature and severity: the configured PSI threshold, or the PSI that sampling noise
    reaches on these sample sizes (query groups) when that is higher.

    The noise level is Bonferroni-corrected over the features, so that a clean training set
    trips a tier with about the probability ``1 - PSI_NOISE_CONFIDENCE`` per run, however many
    features it has. References saved before sample sizes were recorded use their row count.
    """
    configured = {ERROR: settings.quality_psi_error, WARNING: settings.quality_psi_warn}
    confidence = {
        severity: 1 - (1 - level) / max(len(features), 1)
        for severity, level in suites.PSI_NOISE_CONFIDENCE.items()
    }
    limits: dict[str, dict[str, float]] = {}
    for f in features:
        ref = reference[f]
        bins = sum(1 for share in ref["shares"] if share > 0)
        samples = int(ref.get("samples") or ref["rows"]), int(current[f]["samples"])
        limits[f] = {
            severity: round(
                max(
                    configured[severity],
                    psi_critical_value(max(bins, 1), *samples, confidence=confidence[severity]),
                ),
                6,
            )
            for severity in confidence
        }
    return limits


def validate_training_set(
    settings: Settings,
    frame: pd.DataFrame,
    *,
    run_id: str,
    label_col: str = LABEL_COL,
    group_col: str = GROUP_COL,
    features: Sequence[str] | None = None,
) -> QualityResult:
    """Validate the point-in-time training set before the ranker sees it.

    Checks label rate, one positive and one negative per query group, leakage (every ``*_at``
    feature strictly before the label's ``event_timestamp``), no all-null feature, and PSI drift
    of every numeric feature against the last accepted training set: a PSI counts above both the
    configured threshold and what sampling noise reaches on this many query groups, and an age
    feature (``is_age_feature``) is first made younger by the days between the two training
    sets' newest snapshots. Saves this frame's drift
    reference; ``enforce`` accepts it when the gate passes. ``features`` defaults to every
    numeric column other than label, group, ``BOOKKEEPING_COLS`` and ``label_is_positive``
    (pass ``recops.training.dataset.feature_columns(frame)`` to pin the ranker's own list).
    """
    started = time.perf_counter()
    for column in (label_col, group_col):
        if column not in frame.columns:
            raise ValueError(f"training frame has no {column!r} column: {list(frame.columns)}")
    data = _normalise_times(frame, TIMESTAMP_COL)
    positive = pd.to_numeric(data[label_col], errors="coerce") > 0
    rows = data.assign(**{suites.LABEL_POSITIVE_COL: positive.astype("int8")})
    per_group = positive.groupby(data[group_col]).agg(["size", "sum"])
    groups = pd.DataFrame(
        {
            group_col: per_group.index,
            "positives": per_group["sum"].astype("int64").to_numpy(),
            "negatives": (per_group["size"] - per_group["sum"]).astype("int64").to_numpy(),
        }
    )
    exclude = [label_col, group_col, *BOOKKEEPING_COLS, suites.LABEL_POSITIVE_COL]
    feature_cols = (
        list(features) if features is not None else numeric_features(data, exclude=exclude)
    )
    checks = [
        FrameCheck(
            suites.training_rows_suite(
                list(rows.columns), label_col=label_col, group_col=group_col, features=feature_cols
            ),
            rows,
        ),
        FrameCheck(suites.training_groups_suite(), groups, index_columns=(group_col,)),
    ]
    snapshot = _snapshot(data)
    current = build_reference(data, feature_cols, samples=len(groups))
    for entry in current.values():
        entry["snapshot"] = snapshot.isoformat() if snapshot is not None else None
    save_reference(settings, run_id, current)
    drift: dict[str, Any] = {"reference_run_id": None, "psi": {}}
    previous = latest_reference(settings, exclude_run_id=run_id)
    if previous is not None:
        reference_run, reference = previous
        compared = {f: reference[f] for f in feature_cols if f in reference}
        aged, elapsed = _age_adjusted(data, compared, snapshot)
        psi = psi_against_reference(compared, aged)
        limits = _psi_limits(settings, reference, current, list(psi))
        drift = {
            "reference_run_id": reference_run,
            "psi": {k: round(v, 6) for k, v in psi.items()},
            "max_psi": limits,
            "age_features_shifted_days": elapsed,
        }
        if psi:
            checks.append(
                FrameCheck(
                    suites.training_drift_suite(list(psi)),
                    pd.DataFrame([psi]),
                    parameters={
                        suites.param_psi_max(f, severity): limit
                        for f, by_severity in limits.items()
                        for severity, limit in by_severity.items()
                    },
                )
            )
    outcomes = run_checks(settings, checks, run_id=run_id)
    result = _combine(
        suite=TRAINING_SUITE_GROUP,
        stage=STAGE_TRAINING_SET,
        run_id=run_id,
        outcomes=outcomes,
        statistics={
            "rows": len(frame),
            "groups": len(groups),
            "label_rate": float(positive.mean()) if len(frame) else None,
            "groups_without_positive": int((groups["positives"] < 1).sum()),
            "groups_without_negative": int((groups["negatives"] < 1).sum()),
            "features": feature_cols,
            "drift": drift,
        },
        started=started,
    )
    record_result(settings, result)
    return result


# --- the gate -------------------------------------------------------------------------------
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
        channels = send_alert(settings, Alert.from_result(updated, stage=stage))
    updated = updated.model_copy(update={"alert_channels": channels})
    if stage == STAGE_TRAINING_SET and not result.errors:
        accept_reference(settings, result.run_id)
    if result.failures:
        record_result(settings, updated)
    if updated.errors:
        raise QualityGateError(gate_message(updated), updated)
    return updated
