"""``recops simulate``: the synthetic shop's own shoppers use the running API.

Each simulated day, a share of the shop's users visits once: asks ``GET /recommendations`` (as of
that day, ``at=``: an admin token's replay right), looks at the list and clicks, adds to the cart
and buys according to the same latent preferences that generated the shop
(:func:`recops.ingestion.synthetic.user_preferences`), posting every event to ``POST /feedback``
with the response's request id and the item's rank, exactly as a shop's front end and order
system would. The served-list log and the feedback the next pipeline run ingests come from
there. ``policy="popularity"`` asks as an anonymous visitor instead (the popularity fallback),
to measure what the same shoppers do with popular items alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import httpx
import numpy as np

CLICK_SCALE = 0.9  # click probability of the user's favourite item at rank 1
CART_AFTER_CLICK = 0.35
BUY_AFTER_CART = 0.5


@dataclass
class Tally:
    """What the simulated shoppers were shown and did, in all and per served model version."""

    requests: int = 0
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    purchases: int = 0
    by_version: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, version: str, shown: int, clicks: int, carts: int, buys: int) -> None:
        self.requests += 1
        self.impressions += shown
        self.clicks += clicks
        self.add_to_carts += carts
        self.purchases += buys
        row = self.by_version.setdefault(version, {"requests": 0, "impressions": 0, "clicks": 0})
        row["requests"] += 1
        row["impressions"] += shown
        row["clicks"] += clicks

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0


def load_preferences(shop: Path) -> tuple[list[str], dict[str, int], np.ndarray, dict[str, float]]:
    """(user ids, item id -> column, preferences, prices) of a shop ``recops generate`` wrote."""
    from recops.ingestion.shop_files import MANIFEST
    from recops.ingestion.synthetic import user_preferences

    manifest = json.loads((Path(shop) / MANIFEST).read_text())
    users, items, prefs = user_preferences(manifest["users"], manifest["items"], manifest["seed"])
    import pandas as pd

    catalog = pd.read_parquet(manifest["catalog"]) if manifest["catalog"].endswith(".parquet") else pd.read_csv(manifest["catalog"])
    prices = dict(zip(catalog["item_id"].astype(str), catalog["price"].astype(float), strict=True))
    return users, {item: j for j, item in enumerate(items)}, prefs, prices


def click_probability(preference: float, favourite: float, rank: int) -> float:
    """How likely a shopper clicks an item shown at ``rank``: its share of their favourite's
    preference, damped by position (1 / log2(rank + 1))."""
    return min(0.95, CLICK_SCALE * preference / max(favourite, 1e-12) / math.log2(rank + 1))


def visit(client: httpx.Client, user: str, row: np.ndarray, columns: dict[str, int], prices: dict[str, float],
          at: datetime, rng: np.random.Generator, *, policy: str, k: int, tally: Tally) -> None:
    """One shopper's visit: ask, look, click, cart, buy; post what they did."""
    asked = user if policy == "model" else f"visitor-{user}"
    response = client.get(f"/recommendations/{asked}", params={"k": k, "at": at.isoformat()})
    response.raise_for_status()
    body = response.json()
    favourite = float(row.max())
    events, clicks, carts, buys = [], 0, 0, 0
    for item in body["items"]:
        column = columns.get(item["item_id"])
        preference = float(row[column]) if column is not None else 0.0
        if rng.random() >= click_probability(preference, favourite, item["rank"]):
            continue
        moment = at + timedelta(seconds=30 * item["rank"])
        base = {"user_id": user, "item_id": item["item_id"], "request_id": body["request_id"], "rank": item["rank"]}
        events.append({**base, "event_type": "click", "event_at": moment.isoformat()})
        clicks += 1
        if rng.random() < CART_AFTER_CLICK:
            events.append({**base, "event_type": "add_to_cart", "event_at": (moment + timedelta(seconds=20)).isoformat()})
            carts += 1
            if rng.random() < BUY_AFTER_CART:
                events.append({**base, "event_type": "purchase", "quantity": 1,
                               "price_amount": prices.get(item["item_id"], 0.0),
                               "event_at": (moment + timedelta(seconds=90)).isoformat()})
                buys += 1
    if events:
        client.post("/feedback", json={"events": events}).raise_for_status()
    tally.add(body["model_version"], len(body["items"]), clicks, carts, buys)


def simulate(url: str, token: str, shop: Path, *, start: date, days: int, users: int = 100,
             policy: str = "model", k: int = 10, seed: int = 7) -> dict:
    """Simulate ``days`` days from ``start``, ``users`` of the shop's users (drawn anew each day)
    visiting once a day; returns the tally (JSON-able)."""
    user_ids, columns, prefs, prices = load_preferences(shop)
    rng = np.random.default_rng(seed)
    tally = Tally()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for offset in range(days):
            day = start + timedelta(days=offset)
            visitors = np.sort(rng.choice(len(user_ids), size=min(users, len(user_ids)), replace=False))
            for index in visitors:
                at = datetime.combine(day, time(9), tzinfo=UTC) + timedelta(seconds=int(rng.integers(0, 12 * 3600)))
                visit(client, user_ids[index], prefs[index], columns, prices, at, rng, policy=policy, k=k, tally=tally)
    return {**asdict(tally), "ctr": round(tally.ctr, 6), "policy": policy, "start": start.isoformat(), "days": days,
            "users_per_day": min(users, len(user_ids))}
