"""The online monitor (``recops_monitor``): the champion's click-through rate of a day against
its trailing seven days; a drop beyond ``RECOPS_MONITOR_CTR_DROP`` alerts (the quality alerts'
channels)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd

from recops.core.alerts import ERROR, Alert, FailedExpectation, send_alert
from recops.core.constants import CHAMPION_ALIAS
from recops.core.marts import online_metrics_daily
from recops.core.settings import Settings

TRAILING_DAYS = 7
MIN_IMPRESSIONS = 100
"""Days with fewer champion impressions are reported, not judged (a CTR of 3 clicks is noise)."""


def ctr_check(daily: pd.DataFrame, day: date, *, max_drop: float) -> dict[str, Any]:
    """The champion variant's CTR on ``day`` against its impression-weighted CTR over the seven
    days before; ``alert`` when it fell by more than ``max_drop`` (a share) with enough traffic."""
    frame = daily[daily["variant"] == CHAMPION_ALIAS].assign(day=pd.to_datetime(daily["served_date"]).dt.date)
    today = frame[frame["day"] == day]
    trailing = frame[(frame["day"] < day) & (frame["day"] >= day - timedelta(days=TRAILING_DAYS))]
    shown, clicks = int(today["count_impressions"].sum()), int(today["count_clicks"].sum())
    base_shown, base_clicks = int(trailing["count_impressions"].sum()), int(trailing["count_clicks"].sum())
    ctr = clicks / shown if shown else None
    base = base_clicks / base_shown if base_shown else None
    judged = shown >= MIN_IMPRESSIONS and base_shown >= MIN_IMPRESSIONS and base is not None and base > 0
    drop = None if not judged else 1.0 - ctr / base
    return {
        "day": day.isoformat(), "impressions": shown, "clicks": clicks, "ctr": ctr,
        "trailing_impressions": base_shown, "trailing_ctr": base, "drop": drop, "max_drop": max_drop,
        "judged": judged, "alert": bool(judged and drop > max_drop),
    }


def monitor_online(settings: Settings, *, day: date | None = None, run_id: str = "monitor") -> dict[str, Any]:
    """Check the newest served day (or ``day``); alert on a CTR drop. Returns the check."""
    daily = online_metrics_daily(settings)
    if daily.empty:
        return {"judged": False, "alert": False, "reason": "no served lists yet"}
    day = day or max(pd.to_datetime(daily["served_date"]).dt.date)
    check = ctr_check(daily, day, max_drop=settings.monitor_ctr_drop)
    if check["alert"]:
        send_alert(settings, Alert(
            kind="online_metrics", severity=ERROR, run_id=run_id, stage="recops_monitor", suite="online_metrics",
            title=f"Champion CTR dropped {check['drop']:.0%} on {check['day']} against its trailing 7 days",
            failures=[FailedExpectation(
                expectation="ctr_drop_within", column="ctr_rate", severity=ERROR,
                observed={"ctr": check["ctr"], "trailing_ctr": check["trailing_ctr"], "impressions": check["impressions"]},
                threshold={"max_drop": check["max_drop"]}, suite="online_metrics",
                description="CTR of the champion against its trailing seven days",
            )],
        ))
    return check
