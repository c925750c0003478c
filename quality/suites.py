"""Great Expectations suites, one per validated table or frame.

Every expectation carries ``meta = {"severity": "error" | "warning", "description": ...}``:
``error`` stops the run before the next stage (and quarantines a raw batch), ``warning`` alerts
and lets the run go on. Expectations that are two tiers of one check (e.g. PSI above the warning
and above the error threshold) share ``meta["tier"]``; when the error tier fails, the warning tier
of the same check is not reported twice.

Values that change per run (the data interval end, the row-count band) are suite parameters
(``{"$PARAMETER": name}``) resolved at validation time, so a suite stays the same across runs and
each validation result in Data Docs shows the values it was checked against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity

from recops.core.constants import (
    EVENT_AT_COL,
    EVENT_TYPE_COL,
    EVENT_TYPES,
    ITEM_COL,
    ORDER_COL,
    PRICE_COL,
    QUANTITY_COL,
    SESSION_COL,
    TIMESTAMP_COL,
    USER_COL,
)
from recops.quality.results import ERROR, WARNING, Severity

# --- suite names (GX suite = Data Docs section) ---------------------------------------------
RAW_EVENTS_SUITE = "raw.events"
RAW_SERVED_SUITE = "raw.served"
RAW_ITEMS_SUITE = "raw.items"
RAW_QUARANTINE_SUITE = "raw.quarantine"
MARTS_INTEGRITY_SUITE = "marts.integrity"
TRAINING_ROWS_SUITE = "training_set.rows"
TRAINING_GROUPS_SUITE = "training_set.groups"
TRAINING_DRIFT_SUITE = "training_set.drift"


def mart_suite_name(table: str) -> str:
    return f"marts.{table}"


# --- fixed thresholds (documented here; runtime ones come from Settings) -----------------------
MAX_PRICE_AMOUNT = 100_000.0
"""A unit price above this is a unit or parsing bug (Online Retail II tops out at ~25k)."""
MAX_QUANTITY = 100_000.0
"""Online Retail II's largest line is 19,152 units; larger means a parsing bug. Quantities are
never negative in raw (ingestion stores returns as positive units with event type ``return``)."""
MIN_USER_ID_SHARE = 0.5
"""Warn when fewer than this share of a batch's events carry a user id."""
DUPLICATE_SHARE_ERROR = 0.5
"""A batch whose rows already exist in earlier loaded batches for more than this share is a
re-delivery (error); any smaller overlap only warns (staging deduplicates)."""
COMPLETENESS_MIN_HISTORY_SHARE = 0.9
"""An optional raw.events column is checked for completeness only when the recent loaded batches
of the same source filled it in at least this share of their events (a column that is normally
set; one set only for some event types varies with the event mix and is left alone)."""
COMPLETENESS_ERROR_RATIO = 0.5
"""Error when a batch fills a normally filled column in less than this fraction of its recent
share: the file lost or renamed the column. The loader cannot see that (an optional column it
does not find loads as NULL, and an unknown column is ignored), so the gate does."""
COMPLETENESS_DROP_WARN = 0.05
"""Warn when the filled share falls more than this (absolute) below its recent share, e.g. a
tenth of the events suddenly without a user id."""
PSI_NOISE_CONFIDENCE: dict[Severity, float] = {ERROR: 0.999, WARNING: 0.99}
"""A PSI must also exceed what sampling noise reaches with this probability (per severity and
training set, Bonferroni-corrected over its features) before it counts as drift: on a small
training set the configured thresholds are within the noise."""
LABEL_RATE_MIN = 0.001
LABEL_RATE_MAX = 0.5
"""Share of positive labels in a training set; outside the band the candidates or labels broke."""

# --- derived columns the checkpoint runner adds to frames -----------------------------------------
DUPLICATE_OF_COL = "duplicate_of_batch_id"
"""raw.events: an earlier loaded batch that already holds an identical event (else null)."""
LABEL_POSITIVE_COL = "label_is_positive"
"""training_set.rows: 1 where the label is positive (its mean is the label rate)."""
QUARANTINE_REASON_COL = "reason"
QUARANTINE_ROWS_COL = "rows"
QUARANTINE_SHARE_COL = "share"
"""raw.quarantine frame: one row per quarantine reason of a batch (from raw.batches), plus
``ALL_REASONS``; ``share`` = quarantined input records / the batch's input records."""
ALL_REASONS = "all_reasons"

# --- suite parameters --------------------------------------------------------------------------
PARAM_AS_OF = "as_of"
PARAM_SHOP_START = "shop_start"
PARAM_ROW_COUNT_MIN = "row_count_min"
PARAM_ROW_COUNT_MAX = "row_count_max"
PARAM_QUARANTINE_SHARE_WARN = "quarantine_share_warn"
PARAM_QUARANTINE_SHARE_ERROR = "quarantine_share_error"


def param_filled_min(column: str, severity: Severity) -> str:
    """Suite parameter: the least filled share of an optional column (None: not checked)."""
    return f"filled_share_min_{severity}_{column}"


def filled_share_bounds(recent: float | None) -> tuple[float | None, float | None]:
    """(error, warning) least filled share for a column that the recent loaded batches filled in
    ``recent`` of their events; (None, None) without history or for a column not normally filled.
    """
    if recent is None or recent < COMPLETENESS_MIN_HISTORY_SHARE:
        return None, None
    return recent * COMPLETENESS_ERROR_RATIO, max(recent - COMPLETENESS_DROP_WARN, 0.0)


# --- pandas dtypes of the raw tables as the warehouse returns them -----------------------------
# varchar -> object, timestamp -> datetime64 (any unit), bigint -> int64, double -> float64.
STRING = "object"
TIMESTAMP = "datetime64"
INTEGER = "int64"
NUMBER = "float64"
RAW_EVENT_TYPES: dict[str, str] = {
    "batch_id": STRING,
    "ingested_at": TIMESTAMP,
    "source": STRING,
    "source_file": STRING,
    "source_row": INTEGER,
    USER_COL: STRING,
    ITEM_COL: STRING,
    EVENT_TYPE_COL: STRING,
    EVENT_AT_COL: TIMESTAMP,
    "session_id": STRING,
    QUANTITY_COL: NUMBER,
    PRICE_COL: NUMBER,
    "order_id": STRING,
    "country": STRING,
    "request_id": STRING,
}
RAW_EVENT_UNTYPED = ("served_rank",)
"""Columns whose pandas type depends on their NULLs (an integer column with NULLs reads as float)."""
RAW_SERVED_TYPES: dict[str, str] = {
    "batch_id": STRING,
    "ingested_at": TIMESTAMP,
    "source": STRING,
    "source_file": STRING,
    "source_row": INTEGER,
    "request_id": STRING,
    "served_at": TIMESTAMP,
    "model_version": STRING,
    "variant": STRING,
    "kind": STRING,
    ITEM_COL: STRING,
    "served_rank": INTEGER,
    "score": NUMBER,
}
"""raw.served columns checked for type; user_key, context item, k and retrievers are free."""
RAW_SERVED_UNTYPED = ("user_key", "model_name", "context_item_id", "k", "retrievers")
API_LOG_SOURCES = ("feedback", "served")
"""Sources written by the API in files rotated every minute: their size follows the traffic, so
no row-count band applies to them."""
MAX_SERVED_RANK = 100  # the API's largest k

RAW_ITEM_TYPES: dict[str, str] = {
    "batch_id": STRING,
    "ingested_at": TIMESTAMP,
    "source": STRING,
    "source_file": STRING,
    "source_row": INTEGER,
    ITEM_COL: STRING,
    "title": STRING,
    "description": STRING,
    "category": STRING,
    "brand": STRING,
    PRICE_COL: NUMBER,
}
RAW_EVENT_REQUIRED = (
    "batch_id",
    "ingested_at",
    "source",
    "source_file",
    "source_row",
    ITEM_COL,
    EVENT_TYPE_COL,
    EVENT_AT_COL,
)
RAW_EVENT_OPTIONAL = (USER_COL, SESSION_COL, QUANTITY_COL, PRICE_COL, ORDER_COL, "country", "request_id")
"""raw.events columns the loader fills when the file has them (NULL otherwise)."""
RAW_ITEM_REQUIRED = ("batch_id", "ingested_at", "source", "source_file", "source_row", ITEM_COL)

MART_KEYS: dict[str, tuple[str, ...]] = {
    "fct_interactions": ("event_id",),
    "dim_items": (ITEM_COL,),
    "dim_users": (USER_COL,),
    "ml_user_features": (USER_COL, TIMESTAMP_COL),
    "ml_item_features": (ITEM_COL, TIMESTAMP_COL),
    "ml_user_item_features": (USER_COL, ITEM_COL, TIMESTAMP_COL),
    "ml_ltr_labels": (USER_COL, ITEM_COL, TIMESTAMP_COL),
    "fct_served_items": ("request_id", "served_rank"),
    "fct_feedback": ("event_id",),
    "online_metrics_daily": ("served_date", "model_version", "variant"),
}
"""The marts validated by ``validate_marts`` and the grain (unique key) of each."""
ONLINE_TABLES = ("fct_served_items", "fct_feedback", "online_metrics_daily")
"""Marts of the served lists and feedback: empty until the API has served traffic."""
FEATURE_TABLES = ("ml_user_features", "ml_item_features", "ml_user_item_features")

INTEGRITY_METRICS: dict[str, str] = {
    "fct_rows_item_missing_in_dim_items": "fct_interactions.item_id has a row in dim_items",
    "fct_rows_user_missing_in_dim_users": "fct_interactions.user_id has a row in dim_users",
    "labels_item_missing_in_dim_items": "ml_ltr_labels.item_id has a row in dim_items",
    "labels_user_missing_in_dim_users": "ml_ltr_labels.user_id has a row in dim_users",
    "staging_items_lost": "every item of stg_raw__events is in dim_items",
    "staging_users_lost": "every user of stg_raw__events reaches dim_users",
    "item_features_not_point_in_time": (
        "a sample of ml_item_features rows recomputed from stg_raw__events strictly before each "
        "snapshot gives the same purchase, view and return counts and median price"
    ),
}
"""Cross-table counts computed in the warehouse; each must be 0."""


def meta(severity: Severity, description: str, tier: str | None = None) -> dict[str, str]:
    meta = {"severity": severity, "description": description}
    if tier:
        meta["tier"] = tier
    return meta


def make_suite(name: str, stage: str, expectations: list[gxe.Expectation]) -> gx.ExpectationSuite:
    """The suite, with GX's own ``severity`` mirrored from ``meta`` (shown in Data Docs)."""
    for e in expectations:
        e.severity = (
            FailureSeverity.CRITICAL if e.meta["severity"] == ERROR else FailureSeverity.WARNING
        )
    return gx.ExpectationSuite(name=name, expectations=expectations, meta={"stage": stage})


def param(name: str) -> dict[str, str]:
    return {"$PARAMETER": name}


def schema_and_types(types: dict[str, str], extra: Sequence[str] = ()) -> list[gxe.Expectation]:
    exps: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*types, *extra],
            exact_match=True,
            meta=meta(
                ERROR, "schema: exactly the contract's columns (none missing, none renamed)"
            ),
        )
    ]
    exps += [
        gxe.ExpectColumnTypeToBe(
            column=column,
            type_=type_,
            meta=meta(ERROR, f"schema: {column} has its contract type"),
        )
        for column, type_ in types.items()
    ]
    return exps


def not_null(columns: Iterable[str], severity: Severity = ERROR) -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column=c, meta=meta(severity, f"required field {c} is set")
        )
        for c in columns
    ]


def row_count_expectation() -> gxe.Expectation:
    return gxe.ExpectTableRowCountToBeBetween(
        min_value=param(PARAM_ROW_COUNT_MIN),
        max_value=param(PARAM_ROW_COUNT_MAX),
        meta=meta(
            ERROR, "row count within the tolerance around the median of recent loaded batches"
        ),
    )


def raw_events_suite() -> gx.ExpectationSuite:
    """raw.events rows of one batch (plus the derived ``duplicate_of_batch_id`` column).

    Parameters: ``as_of`` (the run's data interval end, UTC naive), ``shop_start``,
    ``row_count_min`` / ``row_count_max`` (None when there is no history), and per optional
    column ``param_filled_min(column, severity)`` (None: not checked).
    """
    exps = schema_and_types(RAW_EVENT_TYPES, extra=[*RAW_EVENT_UNTYPED, DUPLICATE_OF_COL])
    exps += not_null(RAW_EVENT_REQUIRED)
    exps += [
        gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
            column=USER_COL,
            min_value=MIN_USER_ID_SHARE,
            meta=meta(WARNING, "most events carry a user id"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=EVENT_TYPE_COL,
            value_set=list(EVENT_TYPES),
            meta=meta(ERROR, "event types in the accepted set"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column=PRICE_COL,
            min_value=0,
            max_value=MAX_PRICE_AMOUNT,
            meta=meta(ERROR, "prices are non-negative and plausible"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column=QUANTITY_COL,
            min_value=0,
            max_value=MAX_QUANTITY,
            meta=meta(ERROR, "quantities are non-negative and plausible"),
        ),
        gxe.ExpectColumnMaxToBeBetween(
            column=EVENT_AT_COL,
            max_value=param(PARAM_AS_OF),
            meta=meta(ERROR, "no event after the run's data interval end (future timestamp)"),
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ingested_at",
            column_B=EVENT_AT_COL,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta=meta(
                ERROR,
                "no event after its batch was ingested (future timestamp; such an event also "
                "moves a run whose interval is dated by its newest event)",
            ),
        ),
        gxe.ExpectColumnMinToBeBetween(
            column=EVENT_AT_COL,
            min_value=param(PARAM_SHOP_START),
            meta=meta(ERROR, "no event before the shop opened"),
        ),
        row_count_expectation(),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["source_file", "source_row"],
            meta=meta(ERROR, "each source row is loaded once per batch (no duplicated rows)"),
        ),
        gxe.ExpectColumnValuesToBeNull(
            column=DUPLICATE_OF_COL,
            mostly=DUPLICATE_SHARE_ERROR,
            meta=meta(
                ERROR, "the batch is not a re-delivery of an earlier loaded batch", "duplicates"
            ),
        ),
        gxe.ExpectColumnValuesToBeNull(
            column=DUPLICATE_OF_COL,
            meta=meta(WARNING, "no event already loaded by an earlier batch", "duplicates"),
        ),
    ]
    exps += _completeness(RAW_EVENT_OPTIONAL)
    return make_suite(RAW_EVENTS_SUITE, "raw", exps)


def _completeness(columns: Iterable[str]) -> list[gxe.Expectation]:
    """Optional columns filled about as often as in the recent loaded batches (two tiers).

    The bounds are parameters (``param_filled_min``) derived from the history; None (no history,
    or a column not normally filled) leaves the column unchecked.
    """
    exps: list[gxe.Expectation] = []
    for c in columns:
        exps += [
            gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
                column=c,
                min_value=param(param_filled_min(c, ERROR)),
                meta=meta(
                    ERROR,
                    f"schema: {c} is filled as in recent batches (a missing or renamed column "
                    "in the file leaves it empty)",
                    f"filled:{c}",
                ),
            ),
            gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
                column=c,
                min_value=param(param_filled_min(c, WARNING)),
                meta=meta(
                    WARNING, f"{c} is not much less often set than in recent batches", f"filled:{c}"
                ),
            ),
        ]
    return exps


def raw_quarantine_suite() -> gx.ExpectationSuite:
    """What the loader quarantined from one batch: one row per reason plus ``ALL_REASONS``.

    Rows the loader rejects (a missing item id, an unknown event type, a negative price, ...) never
    reach raw.events, so the raw.events suite cannot see them; their share of the batch can.
    Parameters: ``quarantine_share_warn`` and ``quarantine_share_error``.
    """
    exps = [
        gxe.ExpectColumnValuesToBeBetween(
            column=QUARANTINE_SHARE_COL,
            min_value=0,
            max_value=param(PARAM_QUARANTINE_SHARE_ERROR),
            meta=meta(
                ERROR, "the loader quarantined few of the batch's records (per reason)", "share"
            ),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column=QUARANTINE_SHARE_COL,
            min_value=0,
            max_value=param(PARAM_QUARANTINE_SHARE_WARN),
            meta=meta(
                WARNING,
                "the loader quarantined hardly any of the batch's records (per reason)",
                "share",
            ),
        ),
    ]
    return make_suite(RAW_QUARANTINE_SUITE, "raw", exps)


def raw_items_suite() -> gx.ExpectationSuite:
    """raw.items rows of one batch. Same parameters as :func:`raw_events_suite`."""
    exps = schema_and_types(RAW_ITEM_TYPES)
    exps += not_null(RAW_ITEM_REQUIRED)
    exps += [
        gxe.ExpectColumnValuesToBeBetween(
            column=PRICE_COL,
            min_value=0,
            max_value=MAX_PRICE_AMOUNT,
            meta=meta(ERROR, "catalogue prices are non-negative and plausible"),
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["source_file", "source_row"],
            meta=meta(ERROR, "each source row is loaded once per batch (no duplicated rows)"),
        ),
        gxe.ExpectColumnValuesToBeUnique(
            column=ITEM_COL, meta=meta(WARNING, "an item appears once per catalogue batch")
        ),
        row_count_expectation(),
    ]
    return make_suite(RAW_ITEMS_SUITE, "raw", exps)


def raw_served_suite() -> gx.ExpectationSuite:
    """raw.served rows of one batch (items the API showed). Parameters: ``as_of``, ``shop_start``."""
    exps = schema_and_types(RAW_SERVED_TYPES, extra=RAW_SERVED_UNTYPED)
    exps += not_null(["request_id", "served_at", "model_version", "variant", ITEM_COL, "served_rank"])
    exps += [
        gxe.ExpectColumnValuesToBeBetween(
            column="served_rank", min_value=1, max_value=MAX_SERVED_RANK,
            meta=meta(ERROR, f"ranks are 1..{MAX_SERVED_RANK}"),
        ),
        gxe.ExpectColumnMaxToBeBetween(
            column="served_at", max_value=param(PARAM_AS_OF),
            meta=meta(ERROR, "nothing served after the run's data interval end (future timestamp)"),
        ),
        gxe.ExpectColumnMinToBeBetween(
            column="served_at", min_value=param(PARAM_SHOP_START),
            meta=meta(ERROR, "nothing served before the shop opened"),
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["request_id", "served_rank"],
            meta=meta(ERROR, "one item per rank of a response (no duplicated log lines)"),
        ),
    ]
    return make_suite(RAW_SERVED_SUITE, "raw", exps)
