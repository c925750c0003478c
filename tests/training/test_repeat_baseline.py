"""`repeat` is the strongest simple version of its method: on every data set here it at least
matches the plain repeat-purchase baseline (score = distinct orders that contained the item, ties
broken by the item's purchases in the last 30 days), on the same users with the same protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recops.core.constants import EVENT_AT_COL, EVENT_TYPE_COL, ITEM_COL, ORDER_COL, USER_COL
from recops.core.settings import Settings
from recops.training.evaluation import Split, evaluate, protocol_split
from recops.training.retriever_config import RetrieverConfig

K = 10
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def record(name: str, ours: float, baseline: float, users: int) -> None:
    """The figures, in test-artifacts/repeat-baseline.json (the README quotes them)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "repeat-baseline.json"
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[name] = {"repeat_ndcg@10": round(ours, 4), "orders_baseline_ndcg@10": round(baseline, 4), "users": users}
    path.write_text(json.dumps(figures, indent=2, sort_keys=True))


def orders_baseline(split: Split) -> pd.DataFrame:
    """The baseline, written here independently of the retriever: per evaluated user, the items
    they bought, by distinct orders desc, then the item's purchase lines of the 30 days before the
    cutoff desc, then item id."""
    bought = split.history[split.history[EVENT_TYPE_COL] == "purchase"]
    recent = bought[bought[EVENT_AT_COL] >= split.cutoff - pd.Timedelta(days=30)][ITEM_COL].value_counts()
    mine = bought[bought[USER_COL].isin(split.users)]
    table = mine.groupby([USER_COL, ITEM_COL])[ORDER_COL].nunique().rename("orders").reset_index()
    table["recent"] = table[ITEM_COL].map(recent).fillna(0)
    table = table.sort_values([USER_COL, "orders", "recent", ITEM_COL], ascending=[True, False, False, True])
    top = table.groupby(USER_COL).head(K).copy()
    top["score"] = -top.groupby(USER_COL).cumcount().astype(float)  # its own order
    return top[[USER_COL, ITEM_COL, "score"]]


def repeat_alone(split: Split, items: pd.DataFrame | None) -> pd.DataFrame:
    (repeat,) = RetrieverConfig.from_settings(Settings(retrievers=("repeat",))).build(seed=0)
    return repeat.fit(split.history, items, split.cutoff).recommend(split.users, K)


def compare(split: Split, items: pd.DataFrame | None) -> tuple[float, float]:
    return evaluate(repeat_alone(split, items), split, K)["ndcg@10"], evaluate(orders_baseline(split), split, K)["ndcg@10"]


def test_repeat_matches_the_orders_baseline_on_the_synthetic_shop(shop):
    cutoff = shop.end - pd.Timedelta(days=21)
    interactions = shop.interactions.assign(**{ORDER_COL: shop.interactions[EVENT_AT_COL].astype(str)})
    split = protocol_split(interactions, cutoff, 21)
    ours, baseline = compare(split, shop.items)
    record("synthetic shop", ours, baseline, len(split.users))
    assert len(split.users) > 50
    assert ours >= baseline, (ours, baseline)


def online_retail_events(path) -> pd.DataFrame:
    """Protocol v1's purchases of UCI Online Retail (DESIGN.md), read straight from the file: a
    customer id, quantity > 0, price > 0, an invoice not starting with C, a five-digit stock code."""
    lines = pd.read_parquet(path, columns=["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "Customer ID"])
    lines = lines[
        lines["Customer ID"].notna()
        & (lines["Quantity"] > 0)
        & (lines["Price"] > 0)
        & ~lines["Invoice"].astype(str).str.startswith("C")
        & lines["StockCode"].astype(str).str.match(r"^\d{5}")
    ]
    return pd.DataFrame(
        {
            USER_COL: lines["Customer ID"].astype(int).astype(str),
            ITEM_COL: lines["StockCode"].astype(str).str.strip(),
            EVENT_TYPE_COL: "purchase",
            EVENT_AT_COL: pd.to_datetime(lines["InvoiceDate"]),
            ORDER_COL: lines["Invoice"].astype(str),
        }
    )


@pytest.mark.parametrize("cutoff", ["2010-09-20", "2010-10-04"])
def test_repeat_matches_the_orders_baseline_on_online_retail(dataset, cutoff):
    """On the closed folds before the 2010-11-01 holdout (28-day windows, ending by 2010-11-01)."""
    path = dataset("online_retail_ii_2009_2010/online_retail_ii_2009_2010.parquet")
    split = protocol_split(online_retail_events(path), cutoff, 28)
    ours, baseline = compare(split, None)
    record(f"online retail II, {cutoff} + 28 days", ours, baseline, len(split.users))
    assert len(split.users) > 900
    assert ours >= baseline, (ours, baseline)
