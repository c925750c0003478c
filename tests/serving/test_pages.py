"""The demo pages against a real published champion (the session's shared shop home): the
storefront loads without a token and hands out only the web token, which recommends and reports
clicks but may not post purchases nor read the operations data; ``/ops/data`` is admin-only and
says what the registry, the marts and ``/metrics`` say."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADMIN = "admin-token-0123456789"
WEB = "storefront-token-0123456789"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def settings(shop_home):
    return shop_home.settings.model_copy(
        update={"api_tokens": ADMIN, "web_token": WEB, "model_refresh_seconds": 0.0,
                "airflow_ui_url": "http://airflow.test:8080", "mlflow_ui_url": "http://mlflow.test:5000"}
    )


@pytest.fixture(scope="module")
def api(settings) -> Iterator[TestClient]:
    from recops.serving.main import create_app

    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def buyer(shop_home) -> str:
    events = pd.read_parquet(shop_home.shop / "events.parquet")
    return str(events.loc[events.event_type == "purchase", "user_id"].astype(str).value_counts().index[0])


def test_the_storefront_loads_without_a_token_and_carries_only_the_web_token(api) -> None:
    page = api.get("/shop")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert re.search(r'<meta name="recops-web-token" content="([^"]+)">', page.text).group(1) == WEB
    assert ADMIN not in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert page.headers["cache-control"] == "no-store"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith(("/static/", "#", "data:")) for s in sources), sources
    for path in ("/static/common.js", "/static/shop.js", "/static/recops.css"):
        asset = api.get(path)
        assert asset.status_code == 200 and len(asset.text) > 500, path
        assert not re.search(r"https?://", asset.text.replace("http://www.w3.org/2000/svg", "")), path


def test_the_operations_page_loads_without_a_token_and_holds_none(api) -> None:
    page = api.get("/ops")
    assert page.status_code == 200 and 'id="token" type="password"' in page.text
    assert WEB not in page.text and ADMIN not in page.text
    assert "/static/charts.js" in page.text and "/static/ops.js" in page.text
    assert api.get("/static/ops.js").status_code == api.get("/static/charts.js").status_code == 200


def test_the_web_token_recommends_and_reports_clicks_but_nothing_more(api, buyer) -> None:
    body = api.get(f"/recommendations/{buyer}", params={"k": 10}, headers=bearer(WEB)).json()
    assert body["fallback"] is False and len(body["items"]) == 10
    item = body["items"][0]
    purchase = {"user_id": buyer, "item_id": item["item_id"], "event_type": "purchase",
                "request_id": body["request_id"], "rank": 1}
    denied = api.post("/feedback", json={"events": [purchase]}, headers=bearer(WEB))
    assert denied.status_code == 403 and "purchase" in denied.json()["detail"]
    assert api.get("/ops/data", headers=bearer(WEB)).status_code == 403
    assert api.get("/metrics", headers=bearer(WEB)).status_code == 403
    replay = api.get(f"/recommendations/{buyer}", params={"at": "2026-01-01T00:00:00"}, headers=bearer(WEB))
    assert replay.status_code == 403


def test_known_shoppers_are_users_the_champion_knows(api, shop_home) -> None:
    assert api.get("/shop/users").status_code == 401
    listed = api.get("/shop/users", headers=bearer(WEB)).json()
    assert listed["model_version"] == "1" and 1 <= len(listed["users"]) <= 6
    events = pd.read_parquet(shop_home.shop / "events.parquet")
    buys = events[events.event_type == "purchase"].groupby("user_id").size()
    counts = [int(buys[u]) for u in listed["users"]]
    assert counts == sorted(counts, reverse=True)  # the heaviest buyers first
    for user in listed["users"]:
        body = api.get(f"/recommendations/{user}", params={"k": 3}, headers=bearer(WEB)).json()
        assert body["fallback"] is False, user


def test_ops_data_needs_an_admin_token(api) -> None:
    assert api.get("/ops/data").status_code == 401
    assert api.get("/ops/data", headers=bearer("not-a-token-0123456789")).status_code == 401
    assert api.get("/ops/data", headers=bearer(WEB)).status_code == 403
    assert api.get("/ops/data", headers=bearer(ADMIN)).status_code == 200


def test_ops_data_says_what_the_registry_the_marts_and_metrics_say(api, settings, buyer) -> None:
    from recops.core.marts import online_metrics_daily
    from recops.core.registry import client

    api.get(f"/recommendations/{buyer}", headers=bearer(WEB))
    api.get("/recommendations/someone-new-0042", headers=bearer(WEB))
    body = api.get("/ops/data", headers=bearer(ADMIN)).json()
    metrics = api.get("/metrics", headers=bearer(ADMIN)).text

    assert body["served"]["champion"]["version"] == "1" and body["served"]["challenger"] is None
    assert body["runs"]["error"] is None
    run = body["runs"]["data"][0]
    mv = client(settings).get_model_version(settings.model_name, "1")
    assert run["version"] == "1" and run["aliases"] == ["champion"] and run["mlflow_run_id"] == mv.run_id
    assert (run["gate"], run["decision"], run["dbt"]) == ("passed", "promoted", "success")
    assert run["cutoff"] == mv.tags["recops.cutoff"] and run["gate_reason"] == mv.tags["recops.gate_reason"]
    origin = mv.tags["alias.champion.origin"]
    assert origin == f"recops_pipeline/{run['airflow_run_id']}"
    assert run["links"]["airflow_run"] == (
        f"http://airflow.test:8080/dags/recops_pipeline/runs/{quote(run['airflow_run_id'], safe='')}")
    assert run["links"]["model_version"] == "http://mlflow.test:5000/#/models/recops-ranker/versions/1"
    assert run["links"]["run"].endswith(f"/runs/{mv.run_id}")
    assert body["links"]["data_docs"] == settings.data_docs_index.as_uri()
    assert body["links"]["airflow"] == "http://airflow.test:8080/dags/recops_pipeline"

    daily = online_metrics_daily(settings)
    assert body["online"]["error"] is None and len(body["online"]["data"]["daily"]) == len(daily)

    def total(pattern: str) -> float:
        return sum(float(v) for v in re.findall(pattern + r" ([0-9.e+]+)", metrics))

    live = body["live"]
    cold = total(r'recops_recommendation_responses_total\{kind="cold_start",variant="\w+"\}')
    assert live["responses"]["by_kind"]["cold_start"] == cold >= 1
    assert live["responses"]["total"] == total(r"recops_recommendation_responses_total\{[^}]*\}")
    recs = next(r for r in live["latency"] if r["route"] == "/recommendations/{user_id}")
    counted = total(r'http_request_duration_seconds_count\{handler="/recommendations/\{user_id\}",method="GET"\}')
    assert recs["requests"] == counted >= 2
    assert 0 < recs["p50_ms"] <= recs["p90_ms"] <= recs["p99_ms"]


def test_the_storefront_is_off_without_a_web_token(api) -> None:
    service = api.app.state.service
    service.web_token, saved = None, service.web_token
    try:
        page = api.get("/shop")
    finally:
        service.web_token = saved
    assert page.status_code == 503 and "RECOPS_WEB_TOKEN" in page.text
    assert 'name="recops-web-token"' not in page.text


def test_a_second_app_in_the_same_process_counts_its_own_requests(api, settings, buyer) -> None:
    """The instrumentator records nothing when its metrics already exist in its registry: every app
    gets its own, so a worker's ``/metrics`` never goes quiet after an earlier app in the process."""
    from recops.serving.main import create_app

    assert api.get(f"/recommendations/{buyer}", headers=bearer(WEB)).status_code == 200
    with TestClient(create_app(settings)) as second:
        for _ in range(3):
            assert second.get(f"/recommendations/{buyer}", headers=bearer(WEB)).status_code == 200
        metrics = second.get("/metrics", headers=bearer(ADMIN)).text
    counted = re.findall(
        r'http_request_duration_seconds_count\{handler="/recommendations/\{user_id\}",method="GET"\} ([0-9.e+]+)',
        metrics)
    assert [float(c) for c in counted] == [3.0]
