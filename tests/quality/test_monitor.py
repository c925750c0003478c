"""The online monitor: the champion's CTR of a day against its trailing seven days, alerting on a
drop through the quality alerts' channels (JSON lines, a real webhook receiver, a real SMTP server)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from recops.core.warehouse import Warehouse
from recops.quality.monitor import MIN_IMPRESSIONS, ctr_check, monitor_online

DAY = date(2026, 3, 10)


def _daily(ctr_by_day: dict[date, float], *, impressions: int = 1000, variant: str = "champion") -> pd.DataFrame:
    return pd.DataFrame([
        {"served_date": pd.Timestamp(day), "model_version": "4", "variant": variant,
         "count_impressions": impressions, "count_clicks": round(ctr * impressions)}
        for day, ctr in ctr_by_day.items()
    ])


def _week_then(today_ctr: float, *, week_ctr: float = 0.10) -> dict[date, float]:
    return {**{DAY - timedelta(days=n): week_ctr for n in range(1, 8)}, DAY: today_ctr}


def test_a_drop_beyond_the_limit_alerts_and_a_smaller_one_does_not() -> None:
    fell = ctr_check(_daily(_week_then(0.06)), DAY, max_drop=0.3)
    assert fell["judged"] and fell["alert"] and round(fell["drop"], 6) == 0.4
    assert (fell["impressions"], fell["clicks"], fell["trailing_impressions"]) == (1000, 60, 7000)
    dipped = ctr_check(_daily(_week_then(0.08)), DAY, max_drop=0.3)
    assert dipped["judged"] and not dipped["alert"] and round(dipped["drop"], 6) == 0.2


def test_thin_traffic_and_other_variants_are_not_judged() -> None:
    thin = ctr_check(_daily(_week_then(0.0), impressions=MIN_IMPRESSIONS - 1), DAY, max_drop=0.3)
    assert not thin["judged"] and not thin["alert"]
    challenger_only = ctr_check(_daily(_week_then(0.0), variant="challenger"), DAY, max_drop=0.3)
    assert challenger_only["impressions"] == 0 and not challenger_only["alert"]
    # the week before is weighted by impressions: one busy bad day is not drowned by quiet good days
    week = pd.concat([_daily({DAY - timedelta(days=1): 0.02}, impressions=9000),
                      _daily({DAY - timedelta(days=2): 0.20}, impressions=1000),
                      _daily({DAY: 0.036})])
    assert round(ctr_check(week, DAY, max_drop=0.3)["trailing_ctr"], 6) == 0.038


def test_monitor_alerts_through_every_channel(alerting_settings, webhook, smtp, read_alerts, quality_data) -> None:
    settings = alerting_settings.model_copy(update={"monitor_ctr_drop": 0.25})
    with Warehouse(settings) as wh:
        quality_data.create_table(wh, f"{settings.mart_schema}.online_metrics_daily", _daily(_week_then(0.05)))

    check = monitor_online(settings, run_id="scheduled__2026-03-11")

    assert check["alert"] and check["day"] == DAY.isoformat()
    [alert] = read_alerts(settings)
    assert alert["stage"] == "recops_monitor" and alert["run_id"] == "scheduled__2026-03-11"
    assert "dropped 50%" in alert["title"]
    assert alert["failures"][0]["observed"]["ctr"] == 0.05
    assert len(webhook.bodies) == 1 and "dropped 50%" in webhook.bodies[0]["text"]
    assert len(smtp.messages) == 1 and "recops_monitor" in smtp.messages[0].get_body().get_content()
