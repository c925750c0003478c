"""The synthetic shop: determinism, shape, and the personal signal a recommender must find."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from recops.ingestion import generate_shop, write_shop

START = date(2026, 1, 1)


@pytest.fixture(scope="module")
def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_shop(users=1500, items=300, days=60, seed=5, start=START)


def test_same_seed_same_shop_other_seed_other_shop():
    a_cat, a_ev = generate_shop(200, 100, 30, seed=1)
    b_cat, b_ev = generate_shop(200, 100, 30, seed=1)
    pd.testing.assert_frame_equal(a_cat, b_cat)
    pd.testing.assert_frame_equal(a_ev, b_ev)
    _, c_ev = generate_shop(200, 100, 30, seed=2)
    assert not a_ev.head(len(c_ev)).reset_index(drop=True).equals(c_ev.head(len(a_ev)))


def test_schema_span_and_size(shop):
    catalog, events = shop
    assert list(catalog.columns) == [
        "item_id",
        "title",
        "description",
        "category",
        "brand",
        "price",
    ]
    assert list(events.columns) == [
        "user_id",
        "item_id",
        "event_type",
        "event_at",
        "session_id",
        "price",
        "quantity",
    ]
    assert catalog["item_id"].is_unique and (catalog["price"] > 0).all()
    assert 10 <= catalog["category"].nunique() <= 20
    assert set(events["event_type"]) == {"view", "add_to_cart", "purchase"}
    assert str(events["event_at"].dt.tz) == "UTC"
    assert events["event_at"].is_monotonic_increasing
    assert events["event_at"].min() >= pd.Timestamp(START, tz="UTC")
    assert events["event_at"].max() < pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=60)
    assert set(events["item_id"]) <= set(catalog["item_id"])
    assert (events["quantity"] >= 1).all()
    prices = catalog.set_index("item_id")["price"]
    assert np.allclose(events["price"], prices.loc[events["item_id"]].to_numpy())
    expected = 0.5 * 1500 * 60  # documented: about 0.5 events per user-day
    assert 0.85 * expected < len(events) < 1.15 * expected


def test_every_purchase_follows_a_cart_of_the_same_item_in_its_session(shop):
    _, events = shop
    key = ["session_id", "item_id"]
    carts = events.loc[events["event_type"] == "add_to_cart"].groupby(key)["event_at"].min()
    buys = events.loc[events["event_type"] == "purchase"].groupby(key)["event_at"].min()
    assert buys.index.isin(carts.index).all()
    assert (buys >= carts.reindex(buys.index)).all()
    assert events.groupby("session_id")["user_id"].nunique().eq(1).all()


def test_tastes_are_concentrated(shop):
    catalog, events = shop
    cats = events["item_id"].map(catalog.set_index("item_id")["category"])
    per_user = pd.crosstab(events["user_id"], cats)
    top_share = per_user.max(axis=1) / per_user.sum(axis=1)
    busy = per_user.sum(axis=1) >= 20
    assert top_share[busy].median() > 4 / catalog["category"].nunique()  # uniform would be 1/16


def test_personal_signal_beats_popularity(shop):
    """A user-category x item-popularity scorer must beat global popularity on a time split."""
    catalog, events = shop
    cutoff = events["event_at"].max() - pd.Timedelta(days=14)
    history, future = events[events["event_at"] < cutoff], events[events["event_at"] >= cutoff]
    truth = future.loc[future["event_type"] == "purchase"].groupby("user_id")["item_id"].agg(set)
    users = truth.index.intersection(history["user_id"].unique())
    assert len(users) > 200

    counts = history["item_id"].value_counts()
    popular = set(counts.index[:10])
    category = catalog.set_index("item_id")["category"].reindex(counts.index).to_numpy()
    within = (counts / counts.groupby(category).transform("sum")).to_numpy()
    affinity = pd.crosstab(
        history["user_id"],
        history["item_id"].map(catalog.set_index("item_id")["category"]),
        normalize="index",
    )
    hit_pop, hit_personal = [], []
    for user in users:
        scores = affinity.loc[user].reindex(category).fillna(0).to_numpy() * within
        top = set(counts.index[np.argsort(-scores)[:10]])
        hit_pop.append(bool(truth[user] & popular))
        hit_personal.append(bool(truth[user] & top))
    assert np.mean(hit_personal) > np.mean(hit_pop) + 0.15


def test_repeat_buyers_repurchase(shop):
    _, events = shop
    buys = events.loc[events["event_type"] == "purchase"].groupby(["user_id", "item_id"]).size()
    share = (buys.groupby(level=0).max() > 1).mean()
    assert share > 0.25  # ~30% planted repeat buyers, plus chance repeats


def test_item_text_carries_category_and_brand(shop):
    catalog, _ = shop
    for row in catalog.itertuples():
        assert row.brand in row.title and row.brand in row.description
        assert row.category in row.description


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_shop_files_and_manifest(tmp_path, fmt):
    manifest = write_shop(tmp_path, users=50, items=40, days=10, seed=3, fmt=fmt)
    catalog, events = generate_shop(50, 40, 10, 3)
    assert manifest["events"] == str(tmp_path / f"events.{fmt}")
    assert manifest["event_rows"] == len(events) and manifest["catalog_rows"] == 40
    assert sum(manifest["event_types"].values()) == len(events)
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    back = read(manifest["events"])
    assert back["session_id"].tolist() == events["session_id"].tolist()
    stamps = pd.to_datetime(back["event_at"], utc=True)
    assert (stamps.to_numpy() == events["event_at"].to_numpy()).all()
    assert read(manifest["catalog"])["title"].tolist() == catalog["title"].tolist()
