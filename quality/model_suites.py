"""GX suites of the model-facing data: every mart, the marts' integrity counts, and the training
set (rows, query groups, drift). Shared names, thresholds and helpers: :mod:`recops.quality.suites`."""

from __future__ import annotations

from collections.abc import Sequence

import great_expectations as gx
import great_expectations.expectations as gxe

from recops.core.constants import (
    EVENT_AT_COL,
    EVENT_TYPE_COL,
    EVENT_TYPES,
    ITEM_COL,
    TIMESTAMP_COL,
    USER_COL,
)
from recops.quality.results import ERROR, WARNING, Severity
from recops.quality.suites import (
    FEATURE_TABLES,
    INTEGRITY_METRICS,
    LABEL_POSITIVE_COL,
    LABEL_RATE_MAX,
    LABEL_RATE_MIN,
    MART_KEYS,
    MARTS_INTEGRITY_SUITE,
    ONLINE_TABLES,
    TRAINING_DRIFT_SUITE,
    TRAINING_GROUPS_SUITE,
    TRAINING_ROWS_SUITE,
    make_suite,
    mart_suite_name,
    meta,
    not_null,
    param,
)

BY_NATURE_EMPTY = ("price",)
"""Features some shops have no data for by nature: prices (MovieLens has none)."""
RECENCY_OF = {"last_click_at": "count_clicks"}
"""Recency features that exist exactly where their count is positive (no clicks yet: all null)."""


def _empty_feature_severity(column: str, *, derived_warns: bool = False) -> Severity:
    """An all-null feature is an error (a broken join or point-in-time bug), except where some
    shops have no data for it by nature, which only warns: price features
    (:data:`BY_NATURE_EMPTY`) and, in the training set, the features derived from the history
    rather than read from Feast (no ``<view>__`` prefix; e.g. repeat-purchase intervals when
    nobody buys twice)."""
    if any(word in column for word in BY_NATURE_EMPTY) or (derived_warns and "__" not in column):
        return WARNING
    return ERROR


def feature_presence(column: str, columns: Sequence[str], *, derived_warns: bool = False) -> gx.expectations.Expectation:
    """The feature has values: at least one non-null value; a recency feature of
    :data:`RECENCY_OF` instead has a value on every row where its count is positive (so a shop
    without clicks yet passes, and a broken click join fails)."""
    for recency, count in RECENCY_OF.items():
        # ``<view>__last_click_at`` in the marts, ``..._age_days`` in the training set
        count_column = column.partition(recency)[0] + count
        if recency in column and count_column in columns:
            return gxe.ExpectColumnValuesToNotBeNull(
                column=column,
                row_condition=f"{count_column} > 0",
                condition_parser="pandas",
                meta=meta(ERROR, f"feature {column} is set wherever {count_column} > 0"),
            )
    return gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
        column=column,
        min_value=0,
        strict_min=True,
        meta=meta(_empty_feature_severity(column, derived_warns=derived_warns), f"feature {column} is not null everywhere"),
    )


def _is_feature(column: str, keys: Sequence[str]) -> bool:
    return column not in keys and column != TIMESTAMP_COL


def mart_suite(table: str, columns: Sequence[str]) -> gx.ExpectationSuite:
    """One mart: non-empty, key not null and unique, value ranges by column-name convention.

    Conventions (STYLE.md: columns carry their type): ``count_*`` >= 0, ``*_amount*`` (e.g.
    ``spend_amount_30d``) >= 0, ``*return_rate*`` in [0, 1], ``days_since_*`` >= 0; in the ML
    feature tables every feature has at least one non-null value and every ``*_at`` is strictly
    before ``event_timestamp`` (point-in-time correctness).
    """
    keys = MART_KEYS[table]
    exps: list[gxe.Expectation] = []
    if table not in ONLINE_TABLES:  # no served traffic yet: empty online marts are fine
        exps.append(gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=meta(ERROR, f"{table} is not empty")))
    exps += not_null(keys)
    if len(keys) == 1:
        exps.append(
            gxe.ExpectColumnValuesToBeUnique(
                column=keys[0], meta=meta(ERROR, f"{keys[0]} is unique")
            )
        )
    else:
        exps.append(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=list(keys), meta=meta(ERROR, f"one row per ({', '.join(keys)})")
            )
        )
    if table == "fct_interactions":
        exps += not_null([USER_COL, ITEM_COL, EVENT_TYPE_COL, EVENT_AT_COL])
        exps.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=EVENT_TYPE_COL,
                value_set=list(EVENT_TYPES),
                meta=meta(ERROR, "event types in the accepted set"),
            )
        )
    for column in columns:
        if column in keys:
            continue
        if column.startswith(("count_", "days_since_")) or "_amount" in column:
            exps.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=column, min_value=0, meta=meta(ERROR, f"{column} is non-negative")
                )
            )
        elif "return_rate" in column or column.endswith("_rate"):
            exps.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=column,
                    min_value=0,
                    max_value=1,
                    meta=meta(ERROR, f"{column} is a rate in [0, 1]"),
                )
            )
    if table == "online_metrics_daily":
        exps.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="count_impressions", column_B="count_clicks", or_equal=True,
                meta=meta(ERROR, "no more distinct clicked items than items shown"),
            )
        )
    if table in FEATURE_TABLES:
        for column in columns:
            if not _is_feature(column, keys):
                continue
            exps.append(feature_presence(column, columns))
            if column.endswith("_at") and TIMESTAMP_COL in columns:
                exps.append(
                    gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                        column_A=TIMESTAMP_COL,
                        column_B=column,
                        or_equal=False,
                        ignore_row_if="either_value_is_missing",
                        meta=meta(
                            ERROR, f"{column} is strictly before {TIMESTAMP_COL} (no leakage)"
                        ),
                    )
                )
    return make_suite(mart_suite_name(table), "marts", exps)


def marts_integrity_suite(metrics: Sequence[str] | None = None) -> gx.ExpectationSuite:
    """Cross-table counts (one row, computed in the warehouse): every one must be 0.

    ``metrics`` limits the suite to the counts that could be computed (tables present).
    """
    names = (
        list(INTEGRITY_METRICS)
        if metrics is None
        else [m for m in INTEGRITY_METRICS if m in metrics]
    )
    exps = [
        gxe.ExpectColumnMaxToBeBetween(
            column=m, max_value=0, meta=meta(ERROR, INTEGRITY_METRICS[m])
        )
        for m in names
    ]
    return make_suite(MARTS_INTEGRITY_SUITE, "marts", exps)


def training_rows_suite(
    columns: Sequence[str],
    *,
    label_col: str,
    group_col: str,
    timestamp_col: str = TIMESTAMP_COL,
    features: Sequence[str] = (),
    label_rate: tuple[float, float] = (LABEL_RATE_MIN, LABEL_RATE_MAX),
) -> gx.ExpectationSuite:
    """Training-set rows: label and group set, label rate in band, no all-null feature, no leak.

    Leakage: every ``*_at`` column (a feature's own timestamp, e.g.
    ``user_item_features__last_purchase_at``) must be strictly before the label's
    ``timestamp_col``. The same rule in the numeric form the ranker is trained on: every
    ``*_at_age_days`` column (``timestamp_col`` minus the feature's timestamp, in days) must be
    > 0, and every ``*days_since*`` column >= 0.
    """
    exps: list[gxe.Expectation] = [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1, meta=meta(ERROR, "the training set is not empty")
        ),
        *not_null([label_col, group_col]),
        gxe.ExpectColumnValuesToBeBetween(
            column=label_col,
            min_value=0,
            meta=meta(ERROR, "labels are non-negative relevance grades"),
        ),
        gxe.ExpectColumnMeanToBeBetween(
            column=LABEL_POSITIVE_COL,
            min_value=label_rate[0],
            max_value=label_rate[1],
            meta=meta(ERROR, "the share of positive labels is within the expected band"),
        ),
    ]
    exps += [feature_presence(f, columns, derived_warns=True) for f in features]
    if timestamp_col in columns:
        exps += [
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=timestamp_col,
                column_B=c,
                or_equal=False,
                ignore_row_if="either_value_is_missing",
                meta=meta(
                    ERROR, f"{c} is strictly before the label's {timestamp_col} (no leakage)"
                ),
            )
            for c in columns
            if c.endswith("_at") and c != timestamp_col
        ]
    exps += [
        gxe.ExpectColumnValuesToBeBetween(
            column=c,
            min_value=0,
            strict_min=True,
            meta=meta(ERROR, f"{c} > 0: the feature's time is before the label's (no leakage)"),
        )
        for c in columns
        if c.endswith("_at_age_days")
    ]
    exps += [
        gxe.ExpectColumnValuesToBeBetween(
            column=c,
            min_value=0,
            meta=meta(ERROR, f"{c} >= 0: no feature from after the label's time (no leakage)"),
        )
        for c in columns
        if "days_since" in c
    ]
    return make_suite(TRAINING_ROWS_SUITE, "training_set", exps)


def training_groups_suite() -> gx.ExpectationSuite:
    """One row per query group (``positives``, ``negatives``): LambdaRank needs both in each."""
    exps = [
        gxe.ExpectColumnValuesToBeBetween(
            column="positives", min_value=1, meta=meta(ERROR, "every query group has a positive")
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="negatives", min_value=1, meta=meta(ERROR, "every query group has a negative")
        ),
    ]
    return make_suite(TRAINING_GROUPS_SUITE, "training_set", exps)


def param_psi_max(feature: str, severity: Severity) -> str:
    """Suite parameter: the largest PSI of ``feature`` allowed at ``severity``."""
    return f"psi_max_{severity}_{feature}"


def training_drift_suite(features: Sequence[str]) -> gx.ExpectationSuite:
    """One row of PSI values (one column per numeric feature) against the last accepted run.

    The thresholds are parameters (``param_psi_max``): per feature, the larger of the configured
    PSI threshold and the PSI that sampling noise reaches on samples of this size
    (:func:`recops.quality.drift.psi_critical_value` at ``PSI_NOISE_CONFIDENCE``).
    """
    exps: list[gxe.Expectation] = []
    for f in features:
        exps.append(
            gxe.ExpectColumnMaxToBeBetween(
                column=f,
                max_value=param(param_psi_max(f, ERROR)),
                meta=meta(
                    ERROR, f"PSI of {f} below the error threshold (and its noise level)", f"psi:{f}"
                ),
            )
        )
        exps.append(
            gxe.ExpectColumnMaxToBeBetween(
                column=f,
                max_value=param(param_psi_max(f, WARNING)),
                meta=meta(
                    WARNING,
                    f"PSI of {f} below the warning threshold (and its noise level)",
                    f"psi:{f}",
                ),
            )
        )
    return make_suite(TRAINING_DRIFT_SUITE, "training_set", exps)
