"""Staging and marts gate: marts created with plain SQL in a real DuckDB, validated by real GX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.core.settings import Settings
from recops.core.warehouse import Warehouse
from recops.quality.checkpoints import enforce, validate_marts
from recops.quality.paths import data_docs_index
from recops.quality.results import QualityGateError, QualityResult

RUN = "manual__2010-12-31T00:00:00+00:00"


def failed(result: QualityResult) -> set[tuple[str | None, str, str | None, str]]:
    return {(f.suite, f.expectation, f.column, f.severity) for f in result.failures}


def test_clean_marts_pass(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    quality_data.write_marts(alerting_settings, quality_data.mart_frames())

    result = validate_marts(alerting_settings, run_id=RUN)
    enforced = enforce(result, alerting_settings, stage="marts")

    assert result.success, [f.line() for f in result.failures]
    assert enforced.alert_channels == []
    suites = {v["suite"] for v in result.statistics["validations"]}
    assert suites == {
        "marts.fct_interactions",
        "marts.dim_items",
        "marts.dim_users",
        "marts.ml_user_features",
        "marts.ml_item_features",
        "marts.ml_user_item_features",
        "marts.ml_ltr_labels",
        "marts.fct_served_items",
        "marts.fct_feedback",
        "marts.online_metrics_daily",
        "marts.integrity",
    }
    assert result.statistics["integrity"] == {
        "fct_rows_item_missing_in_dim_items": 0,
        "fct_rows_user_missing_in_dim_users": 0,
        "labels_item_missing_in_dim_items": 0,
        "labels_user_missing_in_dim_users": 0,
        "staging_items_lost": 0,
        "staging_users_lost": 0,
        "item_features_not_point_in_time": 0,
    }
    assert quality_data.read_alerts(alerting_settings) == [] and webhook.bodies == [] and smtp.messages == []
    assert data_docs_index(alerting_settings).is_file() and Path(result.data_docs_path).is_file()


def _gate(settings: Settings) -> tuple[QualityResult, QualityGateError]:
    result = validate_marts(settings, run_id=RUN)
    with pytest.raises(QualityGateError) as raised:
        enforce(result, settings, stage="marts")
    return result, raised.value


def test_null_and_duplicated_keys(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    frames = quality_data.mart_frames()
    users = frames["dim_users"]
    frames["dim_users"] = pd.concat([users, users.iloc[[3, 4]]], ignore_index=True)
    fct = frames["fct_interactions"]
    fct.loc[10:12, "user_id"] = None
    fct.loc[20, "event_id"] = fct.loc[21, "event_id"]
    quality_data.write_marts(alerting_settings, frames)

    result, error = _gate(alerting_settings)

    assert {
        ("marts.dim_users", "expect_column_values_to_be_unique", "user_id", "error"),
        ("marts.fct_interactions", "expect_column_values_to_not_be_null", "user_id", "error"),
        ("marts.fct_interactions", "expect_column_values_to_be_unique", "event_id", "error"),
    } <= failed(result)
    dup = next(f for f in result.failures if f.suite == "marts.dim_users")
    assert dup.observed["unexpected_count"] == 4  # both copies of the two users
    assert dup.threshold == {"rule": "column_values_to_be_unique"}
    assert "expect_column_values_to_be_unique(event_id)" in str(error)
    alert = quality_data.read_alerts(alerting_settings)[0]
    assert alert["stage"] == "marts" and alert["severity"] == "error"
    assert {f["suite"] for f in alert["failures"]} >= {"marts.dim_users", "marts.fct_interactions"}
    assert "expect_column_values_to_be_unique" in webhook.bodies[0]["text"]
    assert "marts.dim_users" in smtp.messages[0].get_body(preferencelist=("plain",)).get_content()


def test_referential_integrity_and_lost_entities(settings: Settings, quality_data) -> None:
    frames = quality_data.mart_frames()
    frames["fct_interactions"].loc[[0, 5, 6], "item_id"] = "i-ghost"
    frames["dim_users"] = frames["dim_users"].iloc[2:]  # two users dropped by the mart
    staging = frames["fct_interactions"][["user_id", "item_id", "event_type", "event_at"]].copy()
    staging = pd.concat(
        [
            staging,
            pd.DataFrame(
                {
                    "user_id": ["p99999"],
                    "item_id": ["i-only-in-staging"],
                    "event_type": ["view"],
                    "event_at": [pd.Timestamp("2010-05-01")],
                }
            ),
        ],
        ignore_index=True,
    )
    quality_data.write_marts(settings, frames, staging=staging)

    result, _ = _gate(settings)

    integrity = {f.column: f.observed for f in result.failures if f.suite == "marts.integrity"}
    dropped = ["p00000", "p00001"]
    assert integrity == {
        "fct_rows_item_missing_in_dim_items": 3,
        "fct_rows_user_missing_in_dim_users": int(
            frames["fct_interactions"]["user_id"].isin(dropped).sum()
        ),
        "labels_user_missing_in_dim_users": int(
            frames["ml_ltr_labels"]["user_id"].isin(dropped).sum()
        ),
        "staging_items_lost": 2,  # i-ghost and i-only-in-staging
        "staging_users_lost": 3,  # 31 users in staging, 28 in dim_users
    }
    assert all(
        f.expectation == "expect_column_max_to_be_between" and f.threshold == {"max_value": 0}
        for f in result.failures
        if f.suite == "marts.integrity"
    )


def test_feature_values_out_of_range_and_all_null(settings: Settings, quality_data) -> None:
    frames = quality_data.mart_frames()
    frames["ml_user_features"].loc[0, "count_purchases_30d"] = -2
    frames["ml_user_features"].loc[[1, 2], "spend_amount_90d"] = -10.0
    frames["ml_item_features"].loc[3, "return_rate_90d"] = 1.5
    frames["ml_item_features"]["trend_ratio"] = np.nan
    frames["dim_users"].loc[0, "spend_amount"] = -1.0
    quality_data.write_marts(settings, frames)

    result, _ = _gate(settings)

    assert {
        (
            "marts.ml_user_features",
            "expect_column_values_to_be_between",
            "count_purchases_30d",
            "error",
        ),
        (
            "marts.ml_user_features",
            "expect_column_values_to_be_between",
            "spend_amount_90d",
            "error",
        ),
        (
            "marts.ml_item_features",
            "expect_column_values_to_be_between",
            "return_rate_90d",
            "error",
        ),
        (
            "marts.ml_item_features",
            "expect_column_proportion_of_non_null_values_to_be_between",
            "trend_ratio",
            "error",
        ),
        ("marts.dim_users", "expect_column_values_to_be_between", "spend_amount", "error"),
    } == failed(result)
    rate = next(f for f in result.failures if f.column == "return_rate_90d")
    assert rate.observed["examples"] == [1.5]
    assert rate.threshold == {"min_value": 0, "max_value": 1}
    all_null = next(f for f in result.failures if f.column == "trend_ratio")
    assert all_null.observed == 0.0 and all_null.threshold == {"min_value": 0, "strict_min": True}


def test_click_recency_is_set_exactly_where_there_are_clicks(settings: Settings, quality_data) -> None:
    """A shop without clicks yet (no API traffic) passes; clicks without a recency is a broken join."""
    frames = quality_data.mart_frames()
    uif = frames["ml_user_item_features"]
    uif["count_clicks"], uif["last_click_at"] = 0, pd.NaT
    quality_data.write_marts(settings, frames)
    result = validate_marts(settings, run_id=RUN)
    assert result.success and not [f for f in result.failures if "click" in (f.column or "")]

    uif.loc[uif.index[:3], "count_clicks"] = 2
    quality_data.write_marts(settings, frames)
    result, _ = _gate(settings)
    broken = [f for f in result.failures if "click" in (f.column or "")]
    assert [(f.suite, f.expectation, f.column, f.severity) for f in broken] == [
        ("marts.ml_user_item_features", "expect_column_values_to_not_be_null", "last_click_at", "error")
    ]
    assert broken[0].observed["unexpected_count"] == 3


def test_online_marts_may_be_empty_but_not_wrong(settings: Settings, quality_data) -> None:
    """No served traffic yet: empty online marts pass. A CTR above 1 or more clicks than items
    shown is an error."""
    frames = quality_data.mart_frames()
    for table in ("fct_served_items", "fct_feedback", "online_metrics_daily"):
        frames[table] = frames[table].iloc[0:0]
    quality_data.write_marts(settings, frames)
    assert validate_marts(settings, run_id=RUN).success

    frames = quality_data.mart_frames()
    daily = frames["online_metrics_daily"]
    daily["count_clicks"], daily["ctr_rate"] = 7, 7 / 6
    served = frames["fct_served_items"]
    frames["fct_served_items"] = pd.concat([served, served.iloc[[0]]], ignore_index=True)
    quality_data.write_marts(settings, frames)
    result, _ = _gate(settings)
    assert failed(result) == {
        ("marts.online_metrics_daily", "expect_column_values_to_be_between", "ctr_rate", "error"),
        ("marts.online_metrics_daily", "expect_column_pair_values_a_to_be_greater_than_b",
         "count_impressions > count_clicks", "error"),
        ("marts.fct_served_items", "expect_compound_columns_to_be_unique", "request_id, served_rank", "error"),
    }


def test_feature_timestamp_at_or_after_snapshot_is_leakage(settings: Settings, quality_data) -> None:
    frames = quality_data.mart_frames()
    uif = frames["ml_user_item_features"]
    bought = uif.index[uif["last_purchase_at"].notna()][:4]
    uif.loc[bought, "last_purchase_at"] = uif.loc[bought, "event_timestamp"]
    quality_data.write_marts(settings, frames)

    result, _ = _gate(settings)

    leak = [f for f in result.failures if f.suite == "marts.ml_user_item_features"]
    assert [(f.expectation, f.column) for f in leak] == [
        ("expect_column_pair_values_a_to_be_greater_than_b", "event_timestamp > last_purchase_at")
    ]
    assert leak[0].observed["unexpected_count"] == 4


def test_a_future_price_in_the_item_features_fails_the_point_in_time_check(settings: Settings, quality_data) -> None:
    """The timestamp checks cannot see a value computed from later events: a recomputation can.
    Here two item-feature rows carry the price of the item's next sale after the snapshot (what a
    whole-file median or "latest catalogue price" would put there), a third a count that includes
    the snapshot's own future."""
    frames = quality_data.mart_frames()
    fct, itf = frames["fct_interactions"], frames["ml_item_features"]
    leaked = 0
    for row in itf.itertuples():
        later = fct[(fct["item_id"] == row.item_id) & (fct["event_at"] >= row.event_timestamp)]
        if len(later) and leaked < 2 and abs(later["price_amount"].iloc[0] - row.price_amount) > 0.01:
            itf.loc[row.Index, "price_amount"] = later["price_amount"].iloc[0]
            leaked += 1
    assert leaked == 2
    itf.loc[itf.index[-1], "count_purchases_90d"] += 1
    quality_data.write_marts(settings, frames)

    result, _ = _gate(settings)

    integrity = [f for f in result.failures if f.suite == "marts.integrity"]
    assert [(f.column, f.severity) for f in integrity] == [("item_features_not_point_in_time", "error")]
    assert result.statistics["integrity"]["item_features_not_point_in_time"] == 3


def test_missing_mart_is_an_error(settings: Settings, quality_data) -> None:
    frames = quality_data.mart_frames()
    del frames["ml_ltr_labels"]
    quality_data.write_marts(settings, frames)

    result, error = _gate(settings)

    assert ("marts.ml_ltr_labels", "expect_table_to_exist", None, "error") in failed(result)
    assert "main.ml_ltr_labels" in str(error)


def test_empty_mart_is_an_error(settings: Settings, quality_data) -> None:
    frames = quality_data.mart_frames()
    quality_data.write_marts(settings, frames)
    with Warehouse(settings) as wh:
        wh.execute("delete from main.ml_item_features")

    result, _ = _gate(settings)

    empty = [f for f in result.failures if f.expectation == "expect_table_row_count_to_be_between"]
    assert [(f.suite, f.observed) for f in empty] == [("marts.ml_item_features", 0)]


def test_large_marts_are_checked_on_a_recorded_sample(settings: Settings, monkeypatch, quality_data) -> None:
    from recops.quality import mart_checks

    monkeypatch.setattr(mart_checks, "MART_SAMPLE_ABOVE_ROWS", 380)
    monkeypatch.setattr(mart_checks, "MART_SAMPLE_ROWS", 200)
    frames = quality_data.mart_frames(n_events=400)
    assert max(len(f) for t, f in frames.items() if t != "fct_interactions") < 380
    quality_data.write_marts(settings, frames)

    result = validate_marts(settings, run_id=RUN)

    assert result.success
    assert result.statistics["sampled"] == {"fct_interactions": {"rows": 400, "checked": 200}}
    fct = next(
        v for v in result.statistics["validations"] if v["suite"] == "marts.fct_interactions"
    )
    assert fct["rows"] == 200
