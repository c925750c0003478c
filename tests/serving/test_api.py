"""The API on a real published champion (the session's shared shop home): tokens and scopes,
recommendations with request ids and reasons, the fallback, item-to-item, exclusions, the cache,
``/metrics``, and the online scores equal to the offline evaluation path on 50 users."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "admin-token-0123456789"
SCOPED = "reader-token-0123456789:recommend"
WEB = "web-token-0123456789ab:feedback:web"


@pytest.fixture(scope="module")
def settings(shop_home):
    return shop_home.settings.model_copy(
        update={"api_tokens": f"{TOKEN},{SCOPED},{WEB}", "model_refresh_seconds": 0.0, "serve_cache_seconds": 60.0}
    )


@pytest.fixture(scope="module")
def api(settings) -> Iterator[TestClient]:
    from recops.serving.main import create_app

    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


@pytest.fixture(scope="module")
def buyers(shop_home) -> list[str]:
    events = pd.read_parquet(shop_home.shop / "events.parquet")
    return events.loc[events.event_type == "purchase", "user_id"].astype(str).value_counts().index.tolist()


def test_data_endpoints_need_a_token_and_say_nothing_else(api, buyers) -> None:
    for path in (f"/recommendations/{buyers[0]}", "/items/x/similar", "/metrics"):
        response = api.get(path, headers={"Authorization": ""})
        assert response.status_code == 401, path
        assert response.json() == {"detail": "a valid bearer token is required"}
    wrong = api.get(f"/recommendations/{buyers[0]}", headers={"Authorization": "Bearer not-a-real-token-xyz"})
    assert wrong.status_code == 401 and "reasons" not in wrong.text
    assert api.get("/health", headers={"Authorization": ""}).status_code == 200


def test_scopes_limit_what_a_token_may_do(api, buyers) -> None:
    reader = {"Authorization": f"Bearer {SCOPED.split(':')[0]}"}
    web = {"Authorization": f"Bearer {WEB.split(':')[0]}"}
    assert api.get(f"/recommendations/{buyers[0]}", headers=reader).status_code == 200
    assert api.get("/metrics", headers=reader).status_code == 403
    assert api.get(f"/recommendations/{buyers[0]}", headers=web).status_code == 403
    click = {"user_id": buyers[0], "item_id": "I0001", "event_type": "click"}
    assert api.post("/feedback", json={"events": [click]}, headers=web).status_code == 202
    purchase = {**click, "event_type": "purchase"}
    denied = api.post("/feedback", json={"events": [purchase]}, headers=web)
    assert denied.status_code == 403 and "purchase" in denied.json()["detail"]


def test_feedback_is_rate_limited_per_token(settings, buyers) -> None:
    import time

    from recops.serving.main import create_app

    limited = settings.model_copy(update={"api_feedback_events_per_minute": 1200})  # 20 per second
    click = {"user_id": buyers[0], "item_id": "I0001", "event_type": "click"}
    web = {"Authorization": f"Bearer {WEB.split(':')[0]}"}
    with TestClient(create_app(limited)) as client:
        assert client.post("/feedback", json={"events": [click] * 1000}, headers=web).status_code == 202
        assert client.post("/feedback", json={"events": [click] * 200}, headers=web).status_code == 202
        refused = client.post("/feedback", json={"events": [click] * 200}, headers=web)  # 10 s of refill
        assert refused.status_code == 429, refused.text
        assert "1200 feedback events per minute" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 10
        admin = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/feedback", json={"events": [click]}, headers=admin).status_code == 202  # own bucket
        time.sleep(0.5)  # refills ~10 events
        assert client.post("/feedback", json={"events": [click] * 5}, headers=web).status_code == 202


def test_token_buckets_refill_at_the_rate_and_cap_at_the_burst() -> None:
    from recops.serving.ratelimit import TokenBuckets

    now = [0.0]
    buckets = TokenBuckets(per_minute=60, burst=10, clock=lambda: now[0])
    assert buckets.take("a", 10) == 0.0
    assert buckets.take("a", 1) == pytest.approx(1.0)  # one per second
    assert buckets.take("b", 10) == 0.0  # another key
    now[0] = 3.0
    assert buckets.take("a", 3) == 0.0 and buckets.take("a", 1) == pytest.approx(1.0)
    now[0] = 1000.0
    assert buckets.take("a", 11) == float("inf")  # never: larger than the burst
    assert buckets.take("a", 10) == 0.0  # capped at the burst, not 1000 saved


def test_a_known_user_gets_a_ranked_explained_list(api, buyers) -> None:
    body = api.get(f"/recommendations/{buyers[0]}", params={"k": 10}).json()
    assert body["fallback"] is False and body["variant"] == "champion" and body["model_version"] == "1"
    assert len(body["request_id"]) == 32
    ids = [r["item_id"] for r in body["items"]]
    assert len(ids) == 10 == len(set(ids))
    assert all(r["reasons"] for r in body["items"]) and all(r["title"] for r in body["items"])
    scores = [r["score"] for r in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert api.get(f"/recommendations/{buyers[0]}", params={"k": 0}).status_code == 422
    bad = api.get("/recommendations/bad id!", params={"k": 5})
    assert bad.status_code == 422 and "user_id" in bad.json()["detail"]


def test_exclusions_and_the_cache(api, buyers) -> None:
    user = buyers[1]
    first = api.get(f"/recommendations/{user}", params={"k": 10}).json()
    again = api.get(f"/recommendations/{user}", params={"k": 10}).json()
    assert again["items"] == first["items"] and again["request_id"] != first["request_id"]
    cart = [r["item_id"] for r in first["items"][:2]]
    without = api.get(f"/recommendations/{user}", params={"k": 10, "exclude": cart}).json()
    ids = [r["item_id"] for r in without["items"]]
    assert not set(cart) & set(ids) and ids[:8] == [r["item_id"] for r in first["items"][2:]]


def test_unknown_visitors_get_popular_items_and_the_viewed_items_neighbours(api) -> None:
    cold = api.get("/recommendations/someone-new", params={"k": 5}).json()
    assert cold["fallback"] is True and cold["degraded"] is False and len(cold["items"]) == 5
    assert all(r["reasons"] == ["popular now"] for r in cold["items"])
    viewed = api.get("/recommendations/someone-new", params={"k": 8, "item_id": cold["items"][0]["item_id"]}).json()
    assert any("similar to the item you are viewing" in r["reasons"] for r in viewed["items"])


def test_item_to_item(api, buyers) -> None:
    top = api.get(f"/recommendations/{buyers[0]}", params={"k": 1}).json()["items"][0]["item_id"]
    body = api.get(f"/items/{top}/similar", params={"k": 6}).json()
    ids = [r["item_id"] for r in body["items"]]
    assert len(ids) == 6 and top not in ids and len(body["request_id"]) == 32
    assert {r for item in body["items"] for r in item["reasons"]} <= {
        "customers who bought this also bought", "similar description"}
    assert api.get("/items/no-such-item/similar").status_code == 404


def test_reasons_can_be_switched_off(settings, buyers) -> None:
    from recops.serving.main import create_app

    with TestClient(create_app(settings.model_copy(update={"api_reasons": False}))) as client:
        body = client.get(f"/recommendations/{buyers[0]}", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert body["items"] and all(r["reasons"] is None for r in body["items"])


def test_online_scores_equal_the_offline_evaluation_path(api, shop_home, buyers) -> None:
    """For 50 users: the API's top-10 and scores against the bundle's candidates, the online
    store's features and the registered booster scored by LightGBM itself (the evaluation path)."""
    import tempfile
    from pathlib import Path

    from recops.core.constants import CHAMPION_ALIAS
    from recops.core.feature_store import get_store, online_features_bulk
    from recops.core.privacy import pseudonymise
    from recops.core.registry import load_booster
    from recops.training.dataset import attach_store_features, candidate_frame
    from recops.training.publish import load_bundle
    from recops.training.train import rank_candidates

    settings = shop_home.settings
    booster = load_booster(settings, CHAMPION_ALIAS)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(settings, "1", Path(tmp))
    users = [u for u in buyers if bundle.is_known(pseudonymise(u, settings.user_salt))][:50]
    keys = [pseudonymise(u, settings.user_salt) for u in users]
    store = get_store(settings)
    frame = candidate_frame(bundle.retrievers, bundle.stats, keys, bundle.n_candidates)
    frame = attach_store_features(frame, lambda rows: online_features_bulk(store, rows))
    offline = rank_candidates(booster, booster.feature_name(), frame)
    assert len(users) == 50
    for user, key in zip(users, keys, strict=True):
        body = api.get(f"/recommendations/{user}", params={"k": 10}).json()
        expected = offline[offline["user_id"] == key].head(10)
        assert [r["item_id"] for r in body["items"]] == expected["item_id"].tolist(), user
        np.testing.assert_allclose([r["score"] for r in body["items"]], expected["score"], rtol=0, atol=1e-6)


def test_publishing_reads_only_mart_pairs_and_gets_the_same_features(shop_home, buyers) -> None:
    """Publishing reads the user-item view only for the pairs its mart holds (most candidates were
    never touched by their user): the same features as reading every candidate pair."""
    import tempfile
    from pathlib import Path

    from recops.core.feature_store import get_store, online_features_bulk, pair_keys
    from recops.core.privacy import pseudonymise
    from recops.training.dataset import attach_store_features, candidate_frame
    from recops.training.publish import load_bundle

    settings = shop_home.settings
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(settings, "1", Path(tmp))
    keys = [pseudonymise(u, settings.user_salt) for u in buyers[:40]]
    frame = candidate_frame(bundle.retrievers, bundle.stats, keys, bundle.n_candidates)
    store, pairs = get_store(settings), pair_keys(settings)
    candidates = frame[["user_id", "item_id"]].astype(str).drop_duplicates()
    in_mart = candidates.merge(pairs, on=["user_id", "item_id"])
    assert 0 < len(in_mart) < len(candidates) / 2  # what publishing skips
    every = attach_store_features(frame, lambda rows: online_features_bulk(store, rows))
    limited = attach_store_features(frame, lambda rows: online_features_bulk(store, rows, pairs=pairs))
    pd.testing.assert_frame_equal(limited, every)
    pair_cols = [c for c in every.columns if c.startswith("user_item_features__")]
    assert pair_cols and every["user_item_features__count_purchases"].notna().sum() == len(in_mart)


def test_metrics_in_prometheus_text_format(api, buyers) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    api.get(f"/recommendations/{buyers[2]}")
    api.get(f"/recommendations/{buyers[2]}")  # a cache hit
    api.get("/recommendations/someone-else")
    families = {f.name: f for f in text_string_to_metric_families(api.get("/metrics").text)}
    for name in ("http_request_duration_seconds", "http_requests", "recops_recommendation_responses",
                 "recops_cache_lookups", "recops_candidates_scored", "recops_model_version_info"):
        assert name in families, sorted(families)
    kinds = {s.labels["kind"] for s in families["recops_recommendation_responses"].samples}
    assert {"personal", "cold_start"} <= kinds
    served = [s for s in families["recops_model_version_info"].samples if s.value == 1]
    assert [(s.labels["alias"], s.labels["version"]) for s in served] == [("champion", "1")]
    hits = [s for s in families["recops_cache_lookups"].samples if s.labels.get("result") == "hit"]
    assert hits and hits[0].value >= 1


def test_health_names_the_model_and_the_stores(api) -> None:
    body = api.get("/health").json()
    assert body["status"] == "ok" and body["model_version"] == "1"
    assert body["registry"] is True and body["online_store"] is True and body["scorer"] == "lleaves"
