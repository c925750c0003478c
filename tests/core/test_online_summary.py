"""Online metrics summed per model version and variant over a span of days."""

from __future__ import annotations

from datetime import date

import pandas as pd

from recops.core.marts import ONLINE_COUNTS, online_summary


def _day(day: str, version: str, variant: str, impressions: int, clicks: int, purchases: int, revenue: float) -> dict:
    row = dict.fromkeys(ONLINE_COUNTS, 0)
    row.update(served_date=pd.Timestamp(day), model_version=version, variant=variant, count_requests=impressions // 10,
               count_impressions=impressions, count_clicks=clicks, count_purchases=purchases,
               count_fallback_requests=1, revenue_amount=revenue, coverage_rate=0.5)
    return row


DAILY = pd.DataFrame([
    _day("2026-03-01", "1", "champion", 100, 10, 1, 20.0),
    _day("2026-03-02", "1", "champion", 300, 15, 3, 60.0),
    _day("2026-03-02", "2", "challenger", 50, 10, 0, 0.0),
    _day("2026-03-03", "2", "champion", 200, 30, 2, 10.0),
])


def test_rates_come_from_the_summed_counts_not_the_mean_of_daily_rates() -> None:
    by = {(v["model_version"], v["variant"]): v for v in online_summary(DAILY)}
    champion = by[("1", "champion")]
    assert (champion["impressions"], champion["clicks"], champion["days"]) == (400, 25, 2)
    assert champion["ctr"] == 25 / 400  # not (0.10 + 0.05) / 2
    assert champion["conversion"] == 4 / 400 and champion["revenue_per_1000"] == 1000 * 80 / 400
    assert (champion["first_day"], champion["last_day"]) == ("2026-03-01", "2026-03-02")
    assert set(by) == {("1", "champion"), ("2", "challenger"), ("2", "champion")}


def test_since_and_until_bound_the_days_both_included() -> None:
    one_day = online_summary(DAILY, since=date(2026, 3, 2), until=date(2026, 3, 2))
    assert {(v["model_version"], v["variant"], v["impressions"]) for v in one_day} == {
        ("1", "champion", 300), ("2", "challenger", 50)}
    assert online_summary(DAILY, since=date(2026, 3, 4)) == []
    assert [v["impressions"] for v in online_summary(DAILY, until=date(2026, 3, 1))] == [100]
