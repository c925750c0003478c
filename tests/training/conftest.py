"""Synthetic shops for the training tests: small, seeded, with a clear taste structure.

Every user belongs to one of a few taste groups (an item's group is visible in its text, e.g.
"red mug ceramic") and has a few staple items they buy again and again; the rest of their
baskets come mostly from their group's items, rarely from anywhere. Built in memory, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from recops.core.constants import (
    EVENT_AT_COL,
    EVENT_TYPE_COL,
    ITEM_COL,
    ORDER_COL,
    PRICE_COL,
    QUANTITY_COL,
    SESSION_COL,
    USER_COL,
)
from recops.core.settings import Settings
from recops.training.train import TrainConfig

COLOURS = ("red", "blue", "green", "gold", "black", "white")
NOUNS = ("mug", "lamp", "cushion", "candle", "vase", "clock", "bowl", "frame", "tray", "jar")
MATERIALS = ("ceramic", "glass", "wood", "metal", "cotton")
START = pd.Timestamp("2024-01-01")


@dataclass(frozen=True)
class Shop:
    interactions: pd.DataFrame
    items: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    user_group: dict[str, int]
    item_group: dict[str, int]


def make_shop(
    n_users: int = 120,
    n_items: int = 60,
    n_groups: int = 4,
    days: int = 140,
    orders_per_user: float = 14.0,
    new_users: int = 15,
    seed: int = 0,
) -> Shop:
    """A seeded synthetic shop (fct_interactions / dim_items shaped frames). The last
    ``new_users`` users only browse (views) from 40 to 22 days before the end and buy in the
    last 20 days: cold users at any cutoff in between."""
    rng = np.random.default_rng(seed)
    item_ids = np.array([f"I{i:04d}" for i in range(n_items)], dtype=object)
    item_group = np.arange(n_items) % n_groups
    items = pd.DataFrame(
        {
            ITEM_COL: item_ids,
            "title": [
                f"{COLOURS[g]} {NOUNS[i // n_groups % len(NOUNS)]} {MATERIALS[i % len(MATERIALS)]}"
                for i, g in enumerate(item_group)
            ],
            "category": [COLOURS[g] for g in item_group],
            "brand": "acme",
            PRICE_COL: np.round(2.0 + 3.0 * item_group + rng.random(n_items), 2),
        }
    )
    items["description"] = items["title"]
    items["item_text"] = items["title"] + " " + items["category"]
    popularity = rng.zipf(1.6, n_items).astype(float)
    rows = []
    user_group = {}
    minutes = days * 24 * 60
    for u in range(n_users + new_users):
        user = f"U{u:04d}"
        group = u % n_groups
        user_group[user] = group
        own = np.flatnonzero(item_group == group)
        staples = rng.choice(own, size=3, replace=False)
        weights = popularity[own] / popularity[own].sum()
        first_minute = 0
        if u >= n_users:
            first_minute = minutes - 20 * 24 * 60
            for _ in range(3):
                at = START + pd.Timedelta(days=days - 40 + 18 * rng.random())
                rows.append((user, item_ids[rng.choice(own)], "view", at, None))
        for order in range(rng.poisson(orders_per_user * (minutes - first_minute) / minutes) + 1):
            at = START + pd.Timedelta(minutes=int(rng.integers(first_minute, minutes)))
            order_id = f"{user}-{order}"
            for _ in range(int(rng.integers(2, 5))):
                draw = rng.random()
                if draw < 0.4:
                    item = rng.choice(staples)
                elif draw < 0.9:
                    item = rng.choice(own, p=weights)
                else:
                    item = rng.integers(0, n_items)
                rows.append((user, item_ids[item], "purchase", at, order_id))
                if rng.random() < 0.5:
                    viewed = rng.choice(own)
                    rows.append(
                        (user, item_ids[viewed], "view", at - pd.Timedelta(minutes=5), None)
                    )
    frame = pd.DataFrame(
        rows, columns=[USER_COL, ITEM_COL, EVENT_TYPE_COL, EVENT_AT_COL, ORDER_COL]
    )
    frame[QUANTITY_COL] = 1
    frame[PRICE_COL] = frame[ITEM_COL].map(items.set_index(ITEM_COL)[PRICE_COL])
    frame[SESSION_COL] = frame[ORDER_COL].fillna(frame[USER_COL])
    frame = frame.sort_values([EVENT_AT_COL, USER_COL, ITEM_COL], ignore_index=True)
    return Shop(
        interactions=frame,
        items=items,
        start=START,
        end=START + pd.Timedelta(days=days),
        user_group=user_group,
        item_group=dict(zip(item_ids, item_group.tolist(), strict=True)),
    )


SMALL = {
    "k": 10,
    "candidates_per_retriever": 20,
    "label_window_days": 28,
    "label_windows": 2,
    "seed": 7,
    "ranker_num_leaves": 7,
    "ranker_min_data_in_leaf": 5,
    "ranker_num_boost_round": 60,
    "ranker_early_stopping_rounds": 15,
    "ranker_learning_rate": 0.1,
    "als_factors": 8,
    "als_iterations": 6,
    "itemcf_neighbours": 30,
}


def small_config(**overrides) -> TrainConfig:
    """A fast configuration for tiny data (few factors, shallow trees); ``overrides`` are
    settings (``label_windows=1``, ``ranker_num_leaves=3``, ...)."""
    return TrainConfig.from_settings(Settings(**(SMALL | overrides)))


def add_feature(entity_df: pd.DataFrame) -> pd.DataFrame:
    """A stand-in for Feast: the entity rows, shuffled, tz-aware, with two computed features."""
    out = entity_df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    out["item_number"] = out[ITEM_COL].str[1:].astype(int) % 7
    out["seen_at"] = out["event_timestamp"] - pd.Timedelta(days=2)
    out["event_timestamp"] = out["event_timestamp"].dt.tz_localize("UTC")
    return out


@pytest.fixture(scope="session")
def shop() -> Shop:
    return make_shop()


@pytest.fixture(scope="session")
def trained(shop: Shop):
    """One end-to-end training run on the synthetic shop, shared by the model tests."""
    from recops.training.train import train_and_evaluate

    cfg = small_config()
    cutoff = shop.end - pd.Timedelta(days=21)
    return cfg, train_and_evaluate(cfg, shop.interactions, shop.items, cutoff, add_feature)


@pytest.fixture(scope="session")
def make_config():
    """``small_config`` as a fixture (test modules do not import conftest)."""
    return small_config


@pytest.fixture(scope="session")
def feature_fetcher():
    """``add_feature`` as a fixture."""
    return add_feature
