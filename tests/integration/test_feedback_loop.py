"""The loop closed on a real stack: train, serve (``recops serve``), shoppers ask and act through the
API, the next run learns from it, and the online metrics add up exactly.

One home for the module (it changes the registry, so it cannot share ``shop_home``):

1. ``recops run`` on a small synthetic shop: v1 is the champion.
2. Day 1 (the acceptance of the loop issue): 40 users ask for 10 items each and post one click
   (rank 1) and one add-to-cart (rank 2) with the response's request id; one of them also posts
   every other type the API accepts, and a click with a request id nobody served.
   Day 2: ``recops simulate`` (model v1) and its popularity-only twin (anonymous visitors).
3. ``recops run`` again (its interval: the day after the newest data): the served lists and
   feedback are ingested, gated and attributed; ``recops metrics online --json`` shows for v1 on
   day 1: 400 impressions, 40 clicks, 40 add-to-carts, CTR 0.1. The run trains on the feedback.
4. Day 3 is simulated on what it published; ``recops metrics online --refresh``: served log,
   feedback and online metrics agree with what the simulator did, and the later model's
   click-through rate is not worse beyond noise.
"""

from __future__ import annotations

import json
import math
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from recops.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.heavy]

SHOP = {"users": "200", "items": "120", "days": "60", "seed": "5"}
START = date(2026, 1, 1)
DAY1, DAY2, DAY3 = (START + timedelta(days=60 + n) for n in range(3))
UNKNOWN_REQUEST = "f" * 32
# The second run must retrain and serve whatever it learns: this module is about the loop (the gates
# have their own tests). Its training set is small (a few dozen users) and the simulated shoppers
# shift the features on purpose, so the drift gate and the promotion gate are opened wide.
PROMOTE_ANY = {"RECOPS_PROMOTION_MIN_NDCG_GAIN": "-1", "RECOPS_PROMOTION_MAX_REGRESSION_COLD_USERS": "1",
               "RECOPS_PROMOTION_MAX_REGRESSION_HEAVY_BUYERS": "1", "RECOPS_PROMOTION_MAX_REGRESSION_LIGHT_BUYERS": "1",
               "RECOPS_QUALITY_PSI_WARN": "50", "RECOPS_QUALITY_PSI_ERROR": "100"}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _wait_closed(settings: Settings, timeout_s: float = 30) -> None:
    """Wait until the API closed its log files (rotation every second), so a run reads them all."""
    deadline = time.monotonic() + timeout_s
    while any(settings.served_dir.glob("*.part")) or any(settings.feedback_dir.glob("*.part")):
        assert time.monotonic() < deadline, "the API kept its log files open"
        time.sleep(0.5)


def _serving_version(api) -> str:
    with api.client() as client:
        return client.get("/health").json()["model_version"]


def _wait_serving(api, version: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while _serving_version(api) != version:
        assert time.monotonic() < deadline, f"the API does not serve v{version}"
        time.sleep(0.5)


def _champion(settings: Settings) -> str:
    from recops.core.registry import alias_version

    return alias_version(settings, "champion")


def _ask_and_act(api, users: list[str], at: datetime) -> list[dict]:
    """Day 1 of the acceptance: each user asks for 10 items, clicks rank 1 and carts rank 2; the
    first also posts every other feedback type and a click on a request nobody served."""
    responses = []
    with api.client() as client:
        for n, user in enumerate(users):
            got = client.get(f"/recommendations/{user}", params={"k": 10, "at": at.isoformat()})
            assert got.status_code == 200, got.text
            body = got.json()
            assert len(body["items"]) == 10 and len(body["request_id"]) == 32
            first, second, third = body["items"][:3]
            moment = at + timedelta(minutes=1)
            events = [
                {"user_id": user, "item_id": first["item_id"], "event_type": "click", "rank": 1,
                 "request_id": body["request_id"], "event_at": moment.isoformat()},
                {"user_id": user, "item_id": second["item_id"], "event_type": "add_to_cart", "rank": 2,
                 "request_id": body["request_id"], "event_at": (moment + timedelta(seconds=30)).isoformat()},
            ]
            if n == 0:
                events += [
                    {"user_id": user, "item_id": third["item_id"], "event_type": kind, "rank": 3,
                     "request_id": body["request_id"], "quantity": 1, "price_amount": 4.5,
                     "event_at": (moment + timedelta(minutes=minute)).isoformat()}
                    for kind, minute in (("impression", 0), ("purchase", 2), ("return", 3))
                ] + [{"user_id": user, "item_id": third["item_id"], "event_type": "click", "rank": 3,
                      "request_id": UNKNOWN_REQUEST, "event_at": moment.isoformat()}]
            posted = client.post("/feedback", json={"events": events})
            assert posted.status_code == 202, posted.text
            responses.append(body)
    return responses


def _simulate(cli, home: Path, api, shop: Path, day: date, policy: str, parse_json) -> dict:
    proc = cli(home, "simulate", "--shop", str(shop), "--start", day.isoformat(), "--days", "1", "--users", "120",
               "--url", api.url, "--policy", policy, "--seed", str(day.toordinal()))
    return parse_json(proc.stdout)


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, cli, parse_json, running_api) -> dict:
    home, shop = tmp_path_factory.mktemp("loop-home"), tmp_path_factory.mktemp("loop-shop")
    settings = Settings(home=home)
    cli(home, "generate", *[a for k, v in SHOP.items() for a in (f"--{k}", v)], "--out", str(shop))
    first = parse_json(cli(home, "run", "--source", "events", "--data", str(shop / "events.parquet"),
                           "--catalog", str(shop / "catalog.parquet")).stdout)
    api = running_api(home, RECOPS_API_LOG_ROTATE_SECONDS="1", RECOPS_MODEL_REFRESH_SECONDS="2")
    v1 = _serving_version(api)
    users = sorted(pd.read_parquet(shop / "events.parquet")["user_id"].unique())[:40]
    day1 = _ask_and_act(api, users, datetime.combine(DAY1, datetime.min.time()).replace(hour=10))
    model_a = _simulate(cli, home, api, shop, DAY2, "model", parse_json)
    popular = _simulate(cli, home, api, shop, DAY2, "popularity", parse_json)
    _wait_closed(settings)

    # the next run: its interval ends at the midnight after the newest data (day 3, 00:00)
    second = parse_json(cli(home, "run", extra_env=PROMOTE_ANY).stdout)
    online = parse_json(cli(home, "metrics", "online", "--json", "--since", DAY1.isoformat(),
                            "--until", DAY1.isoformat()).stdout)
    batches = parse_json(cli(home, "quarantine", "list", "--all", "--json").stdout)["batches"]

    _wait_serving(api, _champion(settings))
    model_b = _simulate(cli, home, api, shop, DAY3, "model", parse_json)
    _wait_closed(settings)
    refreshed = parse_json(cli(home, "metrics", "online", "--refresh", "--json").stdout)
    figures = {
        "versions": {"day1": v1, "day2": next(iter(model_a["by_version"])), "day3": next(iter(model_b["by_version"]))},
        "ctr": {"first_model": model_a["ctr"], "second_model": model_b["ctr"], "popularity": popular["ctr"]},
        "impressions": {"first_model": model_a["impressions"], "second_model": model_b["impressions"],
                        "popularity": popular["impressions"]},
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "feedback-loop.json").write_text(json.dumps(figures, indent=2))
    return {"home": home, "settings": settings, "first": first, "second": second, "v1": v1, "day1": day1,
            "online": online, "batches": batches, "model_a": model_a, "popular": popular, "model_b": model_b,
            "refreshed": refreshed, "figures": figures}


def _marts(settings: Settings, sql: str) -> pd.DataFrame:
    from recops.core.warehouse import Warehouse

    with Warehouse(settings, read_only=True) as wh:
        return wh.query_df(sql)


def test_forty_users_one_click_and_one_cart_each(loop: dict) -> None:
    """The acceptance: 400 impressions, 40 clicks, 40 add-to-carts, CTR 0.1 for the served version."""
    assert loop["first"]["state"] == "success" and loop["second"]["state"] == "success"
    [v1] = [v for v in loop["online"]["versions"] if v["model_version"] == loop["v1"]]
    assert (v1["variant"], v1["impressions"], v1["clicks"], v1["add_to_carts"], v1["ctr"]) == (
        "champion", 400, 40, 40, 0.1)
    assert v1["seen"] == 1 and v1["purchases"] == 1 and v1["requests"] == 40


def test_no_feedback_or_served_batch_is_quarantined(loop: dict) -> None:
    api_batches = [b for b in loop["batches"] if b["source"] in ("feedback", "served")]
    assert {b["source"] for b in api_batches} == {"feedback", "served"}
    assert all(b["status"] == "loaded" and b["gate_status"] == "passed" for b in api_batches), api_batches
    assert sum(b["rows_quarantined"] for b in api_batches) == 0


def test_every_type_the_api_accepts_reaches_the_marts(loop: dict) -> None:
    fb = _marts(loop["settings"], f"select * from {loop['settings'].mart_schema}.fct_feedback")
    day1 = fb[pd.to_datetime(fb["event_at"]).dt.date == DAY1]
    assert set(day1["event_type"]) == {"impression", "click", "add_to_cart", "purchase", "return"}
    unknown = day1[day1["request_id"] == UNKNOWN_REQUEST]
    assert len(unknown) == 1 and not unknown["is_attributed"].iloc[0]  # kept and flagged, not dropped
    served = {r["request_id"] for r in loop["day1"]}
    assert set(day1.loc[day1["is_attributed"], "request_id"]) == served


def test_served_log_feedback_and_metrics_add_up_to_what_the_shoppers_did(loop: dict) -> None:
    daily = pd.DataFrame(loop["refreshed"]["daily"])
    for day, tallies in ((DAY2, [loop["model_a"], loop["popular"]]), (DAY3, [loop["model_b"]])):
        rows = daily[daily["served_date"].str[:10] == day.isoformat()]
        for ours, theirs in (("count_requests", "requests"), ("count_impressions", "impressions"),
                             ("count_clicks", "clicks"), ("count_add_to_carts", "add_to_carts"),
                             ("count_purchases", "purchases")):
            assert int(rows[ours].sum()) == sum(t[theirs] for t in tallies), (day, ours)
    # the popularity twin asked as anonymous visitors: fallback responses only
    day2 = daily[daily["served_date"].str[:10] == DAY2.isoformat()]
    assert int(day2["count_fallback_requests"].sum()) >= loop["popular"]["requests"]


def test_the_next_run_learns_from_the_feedback(loop: dict) -> None:
    """The second run trained on what shoppers did (their clicks are user-item features); the
    model it published is not worse with the simulated shoppers beyond noise."""
    assert loop["figures"]["versions"]["day3"] != loop["v1"]  # the retrained model serves day 3
    uif = _marts(loop["settings"], f"select sum(count_clicks) as n from {loop['settings'].mart_schema}.ml_user_item_features")
    assert int(uif["n"].iloc[0]) > 0
    a, b = loop["model_a"], loop["model_b"]
    p = (a["clicks"] + b["clicks"]) / (a["impressions"] + b["impressions"])
    noise = 3 * math.sqrt(p * (1 - p) * (1 / a["impressions"] + 1 / b["impressions"]))
    assert b["ctr"] >= a["ctr"] - noise, loop["figures"]
    # personal recommendations beat popular items alone for these shoppers
    assert a["ctr"] > loop["popular"]["ctr"], loop["figures"]
