"""Online metrics in dbt: served lists joined with the feedback that followed them.

The hand-checkable served lists and feedback are in conftest.py (``write_online_fixture``).
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration]


def test_served_items_are_the_impressions_counted_once(online_build, raw_fixture) -> None:
    R1, R2, R3 = raw_fixture.requests
    served = online_build.query("select * from main.fct_served_items order by request_id, served_rank")
    assert len(served) == 9  # 3 responses x 3 items; the re-ingested line counts once
    assert served.groupby("request_id")["served_rank"].apply(list).to_dict() == {R1: [1, 2, 3], R2: [1, 2, 3], R3: [1, 2, 3]}
    assert served.loc[served["request_id"] == R2, "user_id"].isna().all()  # anonymous visitor


def test_feedback_is_attributed_within_the_window_and_unknown_requests_are_kept(online_build, raw_fixture) -> None:
    R1, UNKNOWN = raw_fixture.requests[0], raw_fixture.unknown_request
    fb = online_build.query("select * from main.fct_feedback")
    assert len(fb) == len(raw_fixture.feedback)  # nothing dropped, the unknown request id included
    late = fb[(fb["request_id"] == R1) & (fb["item_id"] == "i3")]
    assert late["is_attributed"].tolist() == [False]
    unknown = fb[fb["request_id"] == UNKNOWN]
    assert unknown["is_attributed"].tolist() == [False] and unknown["model_version"].isna().all()
    bought = fb[fb["event_type"] == "purchase"]
    assert bought[["model_version", "variant", "revenue_amount"]].values.tolist() == [["1", "champion", 6.0]]
    # user ids are pseudonymised like every mart
    assert set(fb.loc[fb["event_type"] == "purchase", "user_id"]) == {raw_fixture.pseudonym(online_build.settings, "cust-alice")}


def test_online_metrics_per_day_version_and_variant(online_build) -> None:
    daily = online_build.query("select * from main.online_metrics_daily order by model_version")
    champion, challenger = (daily.iloc[i].to_dict() for i in range(2))
    assert (champion["model_version"], champion["variant"]) == ("1", "champion")
    assert str(champion["served_date"])[:10] == "2024-03-10"
    assert {k: champion[k] for k in (
        "count_requests", "count_impressions", "count_fallback_requests", "count_seen", "count_clicks",
        "count_add_to_carts", "count_purchases")} == {
        "count_requests": 2, "count_impressions": 6, "count_fallback_requests": 1, "count_seen": 1,
        "count_clicks": 2, "count_add_to_carts": 1, "count_purchases": 1}
    assert champion["ctr_rate"] == pytest.approx(2 / 6)
    assert champion["add_to_cart_rate"] == pytest.approx(1 / 6)
    assert champion["conversion_rate"] == pytest.approx(1 / 6)
    assert champion["revenue_per_mille_amount"] == pytest.approx(1000 * 6.0 / 6)
    assert champion["fallback_share_rate"] == pytest.approx(0.5)
    catalogue = int(online_build.query("select count(*) as n from main.dim_items")["n"].iloc[0])
    assert champion["coverage_rate"] == pytest.approx(4 / catalogue)  # i1..i4 shown
    assert (challenger["model_version"], challenger["variant"], challenger["count_impressions"],
            challenger["count_clicks"], challenger["count_purchases"]) == ("2", "challenger", 3, 1, 0)
