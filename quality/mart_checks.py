"""The marts gate's checks: every mart's suite plus cross-table integrity counts."""

from __future__ import annotations

import logging
import time

import pandas as pd

from recops.core.constants import (
    ITEM_COL,
    USER_COL,
)
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse
from recops.quality import model_suites, suites
from recops.quality.common import (
    MART_SAMPLE_ABOVE_ROWS,
    MART_SAMPLE_ROWS,
    MARTS_SUITE_GROUP,
    STAGING_EVENTS,
    combine,
    table_columns,
)
from recops.quality.report import record_result
from recops.quality.results import (
    ERROR,
    STAGE_MARTS,
    FailedExpectation,
    QualityResult,
)
from recops.quality.runner import FrameCheck, columns_used, run_checks

log = logging.getLogger(__name__)


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


PIT_SAMPLE_ROWS = 500  # ml_item_features rows recomputed by the point-in-time check
PIT_EVENT_COLUMNS = {ITEM_COL, "event_type", "event_at", "price_amount"}


def _point_in_time_frame(wh: Warehouse, schema: str, present: set[str]) -> pd.DataFrame:
    """One count: of a deterministic sample of ``ml_item_features`` rows, those whose purchase,
    view and return counts or median price differ from the same figures recomputed from
    ``stg_raw__events`` strictly before the row's snapshot. Catches a feature that reads the future
    (e.g. a whole-file price) where the timestamp checks cannot see it. Empty without the tables."""
    if not {"ml_item_features", STAGING_EVENTS} <= present:
        return pd.DataFrame()
    if not set(table_columns(wh, schema, STAGING_EVENTS)) >= PIT_EVENT_COLUMNS:
        return pd.DataFrame()
    s = schema
    sql = f"""
with sampled as materialized (
    select item_id, event_timestamp, count_purchases_90d, count_returns_90d,
        count_views_30d, price_amount
    from {s}.ml_item_features
    order by md5(item_id || '|' || cast(event_timestamp as varchar)), item_id, event_timestamp
    limit {PIT_SAMPLE_ROWS}
),
events as materialized (
    select e.item_id, e.event_type, e.event_at, e.price_amount
    from {s}.{STAGING_EVENTS} e
    where e.item_id in (select item_id from sampled)
),
recomputed as (
    select sampled.item_id, sampled.event_timestamp,
        count(case when events.event_type = 'purchase' then 1 end) as purchases_90d,
        count(case when events.event_type = 'return' then 1 end) as returns_90d,
        count(case when events.event_type = 'view'
            and events.event_at >= sampled.event_timestamp - interval '30 days' then 1 end) as views_30d,
        percentile_cont(0.5) within group (
            order by case when events.price_amount > 0 then events.price_amount end
        ) as median_price
    from sampled
    left join events
        on events.item_id = sampled.item_id
        and events.event_at < sampled.event_timestamp
        and events.event_at >= sampled.event_timestamp - interval '90 days'
    group by sampled.item_id, sampled.event_timestamp
)
select count(*) as item_features_not_point_in_time
from sampled
inner join recomputed
    on recomputed.item_id = sampled.item_id and recomputed.event_timestamp = sampled.event_timestamp
where sampled.count_purchases_90d <> recomputed.purchases_90d
    or sampled.count_returns_90d <> recomputed.returns_90d
    or sampled.count_views_30d <> recomputed.views_30d
    or (recomputed.median_price is not null and (sampled.price_amount is null
        or abs(sampled.price_amount - recomputed.median_price)
            > 1e-6 * greatest(1.0, abs(recomputed.median_price))))
"""
    return wh.query_df(sql).astype("int64")


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
    """Validate the dbt staging and marts: keys, referential integrity, lineage, feature ranges,
    and item features recomputed point in time on a sample (:func:`_point_in_time_frame`).

    Each mart is read with only the columns its suite checks. A mart above
    ``MART_SAMPLE_ABOVE_ROWS`` rows is checked on a deterministic ``MART_SAMPLE_ROWS``-row sample
    (recorded in ``statistics["sampled"]``): a sample can miss a rare duplicate key or
    out-of-range value, never invent one. Online Retail II's marts (<= ~1M rows) are checked in
    full. The cross-table counts are always exact (computed in the warehouse).
    """
    started = time.perf_counter()
    schema = settings.mart_schema
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
            columns = table_columns(wh, schema, table)
            suite = model_suites.mart_suite(table, columns)
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
        point_in_time = _point_in_time_frame(wh, schema, present)
    if not point_in_time.empty:
        integrity = point_in_time if integrity.empty else pd.concat([integrity, point_in_time], axis=1)
    if not integrity.empty:
        checks.append(FrameCheck(model_suites.marts_integrity_suite(list(integrity.columns)), integrity))
    outcomes = run_checks(settings, checks, run_id=run_id)
    result = combine(
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


