"""`dbt build` on the raw fixture (DuckDB): assert on the rows the models produced.

Expected values are computed by hand from the fixture in conftest.py (cutoff 2024-03-01).
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pandas as pd
import pytest

from recops.core.dbt import MART_TABLES, DbtBuildError, mart_row_counts, run_dbt
from recops.core.settings import Settings

pytestmark = [pytest.mark.integration]

SNAPSHOT = datetime(2024, 3, 1)


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts with NaN/NaT turned into None."""
    return df.astype(object).where(df.notna(), None).to_dict("records")


def test_build_succeeds_with_every_node(duckdb_build) -> None:
    result = duckdb_build.result
    assert result.success and result.failures == [] and result.warnings == []
    # 15 models (11 offline, 4 of the served lists and feedback) + unit tests + data tests;
    # nothing skipped or failed
    assert result.status_counts["success"] == 15
    assert set(result.status_counts) == {"success", "pass"}
    assert result.status_counts["pass"] > 100
    # dbt state lives under RECOPS_HOME, not in the repo
    state = duckdb_build.settings.home / "dbt"
    assert (state / "target" / "manifest.json").is_file()
    assert (state / "logs" / "dbt.log").is_file()


def test_mart_row_counts(duckdb_build) -> None:
    counts = mart_row_counts(duckdb_build.settings)
    assert counts == {
        "fct_interactions": 17,
        "dim_items": 5,
        "dim_users": 3,
        "ml_user_features": 30,
        "ml_item_features": 35,
        "ml_user_item_features": 17,
        "ml_ltr_labels": 5,
        # no served lists or feedback in this fixture (test_dbt_online.py has them)
        "fct_served_items": 0,
        "fct_feedback": 0,
        "online_metrics_daily": 0,
    }
    assert tuple(counts) == MART_TABLES


def test_fct_interactions_dedups_and_drops_quarantined_and_anonymous(
    duckdb_build, raw_fixture: SimpleNamespace
) -> None:
    s = duckdb_build.settings
    fct = duckdb_build.query("select * from main.fct_interactions")
    assert list(fct.columns) == [
        "event_id",
        "user_id",
        "item_id",
        "event_type",
        "event_at",
        "session_id",
        "quantity",
        "price_amount",
        "order_id",
        "source",
    ]
    # 21 raw lines - 2 of the quarantined batch - 1 exact duplicate - 1 anonymous
    assert len(fct) == 17
    assert fct["event_id"].is_unique
    # the line loaded twice (batches b1 and b2) is there once
    dup = fct[(fct["order_id"] == "o1") & (fct["item_id"] == "i1")]
    assert len(dup) == 1 and dup.iloc[0]["quantity"] == 2.0
    # nothing of the quarantined batch b3, nothing anonymous
    assert not fct["order_id"].isin(["o13", "o14", "o10"]).any()
    assert fct["user_id"].notna().all()
    # event types are normalised (" Return ", " PURCHASE")
    assert set(fct["event_type"]) == {"purchase", "view", "return", "add_to_cart"}
    assert sorted(fct["order_id"].dropna().unique()) == sorted(
        ["o1", "o2", "o2r", "o3", "o4", "o5", "o6", "o7", "o8", "o9", "o11", "o12"]
    )
    per_user = fct.groupby("user_id").size().to_dict()
    assert per_user == {
        raw_fixture.pseudonym(s, raw_fixture.alice): 10,
        raw_fixture.pseudonym(s, raw_fixture.bob): 5,
        raw_fixture.pseudonym(s, raw_fixture.carol): 2,
    }
    # the anonymous purchase is kept in staging (it counts for item popularity)
    stg = duckdb_build.query("select * from main.stg_raw__events where order_id = 'o10'")
    assert len(stg) == 1 and stg.iloc[0]["user_id"] is None


def test_user_ids_are_pseudonymised_everywhere(duckdb_build, raw_fixture) -> None:
    s = duckdb_build.settings
    users = duckdb_build.query("select user_id from main.dim_users")
    assert set(users["user_id"]) == {
        raw_fixture.pseudonym(s, u) for u in (raw_fixture.alice, raw_fixture.bob, raw_fixture.carol)
    }
    # the API's pseudonymisation (recops.core.privacy) gives the warehouse key, messy ids included
    from recops.core.privacy import pseudonymise

    assert pseudonymise(raw_fixture.carol, s.user_salt) in set(users["user_id"])
    # no original id (any case) in any text column of any relation dbt built
    relations = duckdb_build.query(
        "select table_name from information_schema.tables where table_schema = 'main'"
    )["table_name"]
    assert set(MART_TABLES) | {"stg_raw__events", "stg_raw__items"} <= set(relations)
    for relation in relations:
        df = duckdb_build.query(f"select * from main.{relation}")
        for col in df.columns:
            if df[col].dtype != object:
                continue
            values = df[col].dropna().astype(str).str.lower()
            for original in raw_fixture.original_user_ids:
                assert not values.str.contains(original.lower(), regex=False).any(), (
                    f"original id {original!r} found in {relation}.{col}"
                )


def test_snapshot_spine(duckdb_build) -> None:
    spine = duckdb_build.query("select event_timestamp from main.int_feature_snapshots order by 1")[
        "event_timestamp"
    ]
    # cutoff 2024-03-01 - k weeks while after the first event day (2023-11-01), plus the day
    # after the newest event (2024-03-05); 2024-03-08 is past newest day + 1
    weekly = list(pd.date_range("2023-11-03", "2024-03-01", freq="7D"))
    assert list(spine) == weekly + [pd.Timestamp("2024-03-06")]


def test_user_features_of_alice_at_the_cutoff(duckdb_build, raw_fixture) -> None:
    alice = raw_fixture.pseudonym(duckdb_build.settings, raw_fixture.alice)
    rows = duckdb_build.query(
        "select * from main.ml_user_features where user_id = ? and event_timestamp = ?",
        [alice, SNAPSHOT],
    )
    assert _records(rows) == [
        {
            "user_id": alice,
            "event_timestamp": pd.Timestamp(SNAPSHOT),
            # 02-29 (i1 x2 qty, i2) in 7d; + 02-20 in 30d; + 01-15 in 90d; 2023-11-01 is out;
            # the purchase at 2024-03-01 08:00 is on the snapshot day and must not count
            "count_purchases_7d": 2,
            "count_purchases_30d": 3,
            "count_purchases_90d": 4,
            "count_orders_90d": 3,  # o1, o2, o3
            "spend_amount_7d": 13.0,  # 2 x 5 + 1 x 3
            "spend_amount_30d": 18.0,  # + 5
            "spend_amount_90d": 28.0,  # + 10
            "count_distinct_items_90d": 3,  # i1, i2, i3
            "count_views_30d": 1,  # 02-25; the 01-10 view is 51 days old
            "count_returns_90d": 1,
            "days_since_last_purchase": 1,
        }
    ]


def test_user_features_after_the_newest_day_include_the_snapshot_day_event(
    duckdb_build, raw_fixture
) -> None:
    alice = raw_fixture.pseudonym(duckdb_build.settings, raw_fixture.alice)
    row = duckdb_build.query(
        "select count_purchases_7d, spend_amount_7d, days_since_last_purchase "
        "from main.ml_user_features where user_id = ? and event_timestamp = ?",
        [alice, datetime(2024, 3, 6)],
    )
    # 7d = [02-28, 03-06): 02-29 x2 + 03-01 08:00
    assert _records(row) == [
        {"count_purchases_7d": 3, "spend_amount_7d": 16.0, "days_since_last_purchase": 5}
    ]
    # carol's only events are in January: no row once she is inactive for 90 days
    carol = raw_fixture.pseudonym(duckdb_build.settings, raw_fixture.carol)
    snapshots = duckdb_build.query(
        "select event_timestamp from main.ml_user_features where user_id = ? order by 1", [carol]
    )["event_timestamp"]
    assert snapshots.min() == pd.Timestamp("2024-01-26")
    assert snapshots.max() == pd.Timestamp("2024-03-06")


def test_item_features_count_anonymous_purchases(duckdb_build) -> None:
    rows = duckdb_build.query(
        "select * from main.ml_item_features where item_id = 'i1' and event_timestamp = ?",
        [SNAPSHOT],
    )
    (row,) = _records(rows)
    trend = row.pop("trend_ratio")
    assert row == {
        "item_id": "i1",
        "event_timestamp": pd.Timestamp(SNAPSHOT),
        # 7d: alice 02-29 + the anonymous line of 02-28
        "count_purchases_7d": 2,
        # + bob's four purchases and alice 02-20; alice 2023-11-01 is out of 90d
        "count_purchases_30d": 7,
        "count_purchases_90d": 7,
        "count_buyers_30d": 2,  # alice, bob (anonymous lines are no buyer)
        "count_buyers_90d": 2,
        "count_views_30d": 0,
        # point in time: the median paid in the 90 days before the snapshot, not the
        # catalogue's 5.5 (loaded 2024-03-06, after the snapshot)
        "price_amount": 5.0,
        "count_returns_90d": 1,
        "return_rate_90d": pytest.approx(1 / 7),
    }
    assert trend == pytest.approx((2 / 7 + 0.1) / (7 / 30 + 0.1))
    # i5 is not in the catalogue: median observed price of the 90 days (7, 9)
    i5 = duckdb_build.query(
        "select price_amount from main.ml_item_features "
        "where item_id = 'i5' and event_timestamp = ?",
        [SNAPSHOT],
    )
    assert i5["price_amount"].tolist() == [8.0]


# The snapshot feature models by their definition: every event joined to every snapshot within
# the 90 days after it (what the models computed before they reduced events per day first).
_WINDOW_JOIN = """
    from main.int_feature_snapshots s
    join {events} e
      on s.event_timestamp > e.event_at and s.event_timestamp - interval '90 days' <= e.event_at
    group by 1, 2
"""
_NAIVE_ITEM_FEATURES = """
    select e.item_id, s.event_timestamp,
      count(case when e.event_type = 'purchase' and e.event_at >= s.event_timestamp - interval '7 days' then 1 end) as count_purchases_7d,
      count(case when e.event_type = 'purchase' and e.event_at >= s.event_timestamp - interval '30 days' then 1 end) as count_purchases_30d,
      count(case when e.event_type = 'purchase' then 1 end) as count_purchases_90d,
      count(distinct case when e.event_type = 'purchase' and e.event_at >= s.event_timestamp - interval '30 days' then e.user_id end) as count_buyers_30d,
      count(distinct case when e.event_type = 'purchase' then e.user_id end) as count_buyers_90d,
      count(case when e.event_type = 'view' and e.event_at >= s.event_timestamp - interval '30 days' then 1 end) as count_views_30d,
      count(case when e.event_type = 'return' then 1 end) as count_returns_90d,
      percentile_cont(0.5) within group (order by case when e.price_amount > 0 then e.price_amount end) as median_price
""" + _WINDOW_JOIN.format(events="main.stg_raw__events")
_NAIVE_USER_FEATURES = """
    select e.user_id, s.event_timestamp,
      count(case when e.event_type = 'purchase' and e.event_at >= s.event_timestamp - interval '7 days' then 1 end) as count_purchases_7d,
      count(case when e.event_type = 'purchase' and e.event_at >= s.event_timestamp - interval '30 days' then 1 end) as count_purchases_30d,
      count(case when e.event_type = 'purchase' then 1 end) as count_purchases_90d,
      count(distinct case when e.event_type = 'purchase' then coalesce(e.order_id, e.event_id) end) as count_orders_90d,
      coalesce(sum(case when e.event_at >= s.event_timestamp - interval '7 days' then e.amount end), 0) as spend_amount_7d,
      coalesce(sum(case when e.event_at >= s.event_timestamp - interval '30 days' then e.amount end), 0) as spend_amount_30d,
      coalesce(sum(e.amount), 0) as spend_amount_90d,
      count(distinct case when e.event_type = 'purchase' then e.item_id end) as count_distinct_items_90d,
      count(case when e.event_type = 'view' and e.event_at >= s.event_timestamp - interval '30 days' then 1 end) as count_views_30d,
      count(case when e.event_type = 'return' then 1 end) as count_returns_90d
""" + _WINDOW_JOIN.format(
    events="(select *, case when event_type = 'purchase' then coalesce(quantity, 1) * "
    "coalesce(price_amount, 0) end as amount from main.fct_interactions)"
)


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, ignore_index=True)


def test_snapshot_features_equal_their_event_by_event_definition(duckdb_build) -> None:
    item_keys, user_keys = ["item_id", "event_timestamp"], ["user_id", "event_timestamp"]
    naive = _sorted(duckdb_build.query(_NAIVE_ITEM_FEATURES), item_keys)
    built = _sorted(duckdb_build.query("select * from main.ml_item_features"), item_keys)
    assert len(built) > 10 and (built["count_buyers_90d"] > 1).any()
    counts = [c for c in naive.columns if c.startswith("count_")]
    pd.testing.assert_frame_equal(built[item_keys + counts], naive[item_keys + counts], check_dtype=False)
    observed = naive["median_price"].notna()  # else the catalogue's price, when loaded in time
    assert observed.sum() > 10 and naive["median_price"].nunique() > 3
    assert built.loc[observed, "price_amount"].to_numpy() == pytest.approx(
        naive.loc[observed, "median_price"].to_numpy(), rel=1e-12
    )

    naive = _sorted(duckdb_build.query(_NAIVE_USER_FEATURES), user_keys)
    built = _sorted(duckdb_build.query("select * from main.ml_user_features"), user_keys)
    assert len(built) > 5 and (built["count_orders_90d"] > 1).any()
    pd.testing.assert_frame_equal(
        built[list(naive.columns)], naive, check_dtype=False, rtol=1e-12
    )


def test_dim_items(duckdb_build) -> None:
    items = duckdb_build.query("select * from main.dim_items order by item_id")
    by_id = {r["item_id"]: r for r in _records(items)}
    assert sorted(by_id) == ["i1", "i2", "i3", "i4", "i5"]  # i9 was quarantined
    i1 = by_id["i1"]
    assert i1["title"] == "Red Mug" and i1["description"] == "Ceramic mug"
    assert i1["item_text"] == "red mug ceramic mug kitchen acme"
    assert i1["price_amount"] == 5.5
    # all-time, incl. the anonymous line and the 2023 purchase; the return is no purchase
    assert (i1["count_purchases"], i1["count_buyers"]) == (8, 2)
    assert i1["first_seen_at"] == pd.Timestamp("2023-11-01 08:00")
    assert by_id["i2"]["item_text"] == "blue plate kitchen"
    assert (by_id["i4"]["count_purchases"], by_id["i4"]["price_amount"]) == (0, 2.0)
    assert by_id["i5"]["price_amount"] == 8.0 and by_id["i5"]["item_text"] == ""


def test_dim_users(duckdb_build, raw_fixture) -> None:
    alice = raw_fixture.pseudonym(duckdb_build.settings, raw_fixture.alice)
    rows = duckdb_build.query("select * from main.dim_users where user_id = ?", [alice])
    assert _records(rows) == [
        {
            "user_id": alice,
            "first_event_at": pd.Timestamp("2023-11-01 08:00"),
            "last_event_at": pd.Timestamp("2024-03-01 08:00"),
            "count_purchases": 6,
            "count_orders": 5,  # o1, o2, o3, o4, o9
            "spend_amount": 36.0,  # 10 + 3 + 5 + 10 + 5 + 3
        }
    ]


def test_user_item_features_are_cumulative_and_point_in_time(duckdb_build, raw_fixture) -> None:
    alice = raw_fixture.pseudonym(duckdb_build.settings, raw_fixture.alice)
    rows = duckdb_build.query(
        "select event_timestamp, count_purchases, count_views, count_carts, "
        "first_purchase_at, last_purchase_at from main.ml_user_item_features "
        "where user_id = ? and item_id = 'i2' order by event_timestamp",
        [alice],
    )
    ts = pd.Timestamp
    assert _records(rows) == [
        {"event_timestamp": ts("2024-02-26"), "count_purchases": 0, "count_views": 1,
         "count_carts": 0, "first_purchase_at": None, "last_purchase_at": None},
        {"event_timestamp": ts("2024-02-29"), "count_purchases": 0, "count_views": 1,
         "count_carts": 1, "first_purchase_at": None, "last_purchase_at": None},
        {"event_timestamp": ts("2024-03-01"), "count_purchases": 1, "count_views": 1,
         "count_carts": 1, "first_purchase_at": ts("2024-02-29 10:00"),
         "last_purchase_at": ts("2024-02-29 10:00")},
        {"event_timestamp": ts("2024-03-02"), "count_purchases": 2, "count_views": 1,
         "count_carts": 1, "first_purchase_at": ts("2024-02-29 10:00"),
         "last_purchase_at": ts("2024-03-01 08:00")},
    ]  # fmt: skip


def test_ltr_labels(duckdb_build, raw_fixture) -> None:
    s = duckdb_build.settings
    alice, bob, carol = (
        raw_fixture.pseudonym(s, u) for u in (raw_fixture.alice, raw_fixture.bob, raw_fixture.carol)
    )
    labels = duckdb_build.query("select * from main.ml_ltr_labels")
    got = {
        (r["user_id"], r["item_id"], r["event_timestamp"]): (r["count_purchases"], r["relevance"])
        for r in _records(labels)
    }
    window0, window1 = pd.Timestamp("2024-02-02"), pd.Timestamp("2024-01-05")
    assert got == {
        (alice, "i1", window0): (2, 2),  # 02-20, 02-29 (the duplicate line counts once)
        (alice, "i2", window0): (1, 1),  # 02-29; 03-01 is at/after the cutoff
        (alice, "i3", window1): (1, 1),  # 01-15
        (bob, "i1", window0): (4, 3),
        (carol, "i5", window1): (2, 2),
    }


def test_default_cutoff_and_failures(tmp_path, raw_fixture) -> None:
    """Without a cutoff var the split is newest day + 1 - 28 days; broken input raises."""
    settings = Settings(home=tmp_path, profile="embedded")
    # no raw schema yet: the staging view cannot be created
    with pytest.raises(DbtBuildError, match="model.recops.stg_raw__events") as info:
        run_dbt(settings, "run", select="stg_raw__events")
    assert [f.node for f in info.value.result.failures] == ["model.recops.stg_raw__events"]
    raw_fixture.write(settings)
    result = run_dbt(settings, "run", select="+int_event_calendar")
    assert result.success and result.status_counts == {"success": 2}
    calendar = raw_fixture.built(settings, result).query("select * from main.int_event_calendar")
    # newest event 2024-03-05: (2024-03-06) - 28 days
    assert pd.to_datetime(calendar["cutoff_date"]).tolist() == [pd.Timestamp("2024-02-07")]


def test_bad_vars_fail_before_dbt(tmp_path) -> None:
    settings = Settings(home=tmp_path, profile="embedded")
    with pytest.raises(ValueError, match="cutoff"):
        run_dbt(settings, vars={"cutoff": "2024-13-01"})
    with pytest.raises(ValueError, match="label_windows"):
        run_dbt(settings, vars={"label_windows": 0})
    assert not (tmp_path / "dbt").exists()


def test_unit_tests_hold_for_any_run_interval(duckdb_build) -> None:
    """A run passes its interval end as ``as_of``; the models' unit tests must not depend on it
    (the Online Retail run of 2010 once hid the 2024 fixture rows of a unit test)."""
    result = run_dbt(
        duckdb_build.settings, "test", vars={"cutoff": "2024-03-01", "as_of": "2001-01-01 00:00:00"},
        select="test_type:unit",
    )
    assert result.success and result.status_counts == {"pass": result.status_counts["pass"]}
    assert result.status_counts["pass"] >= 15
